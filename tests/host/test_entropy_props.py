"""Properties of the entropy layer (CPython, hypothesis)."""

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx.entropy import DeterministicEntropy, HmacDrbg, TrngEntropy
from ovpnkx.health_cutoff import apt_cutoff, rct_cutoff
from ovpnkx.noise import SimTrng

entropy_inputs = st.binary(min_size=32, max_size=64)
nonces = st.binary(min_size=16, max_size=32)
extras = st.binary(max_size=64)


@settings(max_examples=200, deadline=None)
@given(entropy_inputs, nonces, extras, st.lists(st.tuples(st.integers(0, 2000), extras), max_size=5))
def test_drbg_output_length_and_determinism(entropy, nonce, pers, requests):
    a = HmacDrbg(entropy, nonce, pers)
    b = HmacDrbg(entropy, nonce, pers)
    for n, extra in requests:
        out = a.generate(n, extra)
        assert len(out) == n
        assert b.generate(n, extra) == out


@settings(max_examples=200, deadline=None)
@given(entropy_inputs, nonces, st.integers(1, 500))
def test_drbg_prefix_property_within_one_call(entropy, nonce, n):
    # one call's output is V-block concatenation: a shorter request is a prefix
    assert HmacDrbg(entropy, nonce).generate(n) == HmacDrbg(entropy, nonce).generate(n + 40)[:n]


@settings(max_examples=200, deadline=None)
@given(entropy_inputs, nonces, entropy_inputs, extras)
def test_drbg_reseed_changes_the_stream(entropy, nonce, fresh, extra):
    a = HmacDrbg(entropy, nonce)
    b = HmacDrbg(entropy, nonce)
    b.reseed(fresh, extra)
    assert a.generate(32) != b.generate(32)


def _exact_apt(h_int, window, corrected=False):
    p = Fraction(1, 2 ** h_int)
    n = window - 1 if corrected else window
    alpha = Fraction(1, 2 ** 20)
    tail = Fraction(0)
    for k in range(n, -1, -1):
        tail += math.comb(n, k) * p ** k * (1 - p) ** (n - k)
        if tail > alpha:
            return max(2, min(k + 1 + (1 if corrected else 0), window))
    return 2


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(16, 1024), st.booleans())
def test_apt_cutoff_matches_exact_rational_binomial(h, window, corrected):
    assert apt_cutoff(h, window, corrected=corrected) == _exact_apt(h, window, corrected)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.05, 8.0))
def test_rct_cutoff_is_one_plus_ceil(h):
    exact = Fraction(20) / Fraction(h)
    if abs(exact - round(exact)) > Fraction(1, 10 ** 6):  # away from the float slack
        assert rct_cutoff(h) == 1 + math.ceil(exact)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=16), st.integers(0, 3000))
def test_deterministic_entropy_length_and_repeatability(seed, n):
    out = DeterministicEntropy(seed).random_bytes(n)
    assert len(out) == n and out == DeterministicEntropy(seed).random_bytes(n)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=16))
def test_healthy_sim_never_alarms(seed):
    e = TrngEntropy(SimTrng(source=DeterministicEntropy(seed).random_bytes), SimTrng.MIN_ENTROPY_CLAIM)
    e.random_bytes(32)
    for _ in range(5):
        e.reseed()
    assert e.state == "ok"


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=16), st.sampled_from(["stuck", "stuck=1", "bias=0.9", "bias=0.1",
                                                             "repeat=41", "correlated=0.95"]))
def test_gross_faults_never_reach_the_drbg(seed, fault):
    src = SimTrng(fault, source=DeterministicEntropy(seed).random_bytes)
    e = TrngEntropy(src, SimTrng.MIN_ENTROPY_CLAIM)
    try:
        e.random_bytes(16)
    except Exception as exc:
        assert "test (RCT)" in str(exc) or "test (APT)" in str(exc)
    else:
        raise AssertionError("fault %s produced output" % fault)
    assert e.state == "error" and src.samples <= 2560
