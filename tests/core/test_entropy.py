"""The entropy objects the core draws from: host, tests-only, and the TRNG chain."""

from ovpnkx._compat import MICROPYTHON
from ovpnkx.entropy import DeterministicEntropy, EntropyError, HostEntropy, TrngEntropy, restore
from ovpnkx.errors import LocalProtocolError
from ovpnkx.noise import HostNoise, SimTrng

from _support import raises

# a long healthy run: 200k samples on CPython, fewer on MicroPython
HEALTHY_SAMPLES = 30000 if MICROPYTHON else 200000


def _sim(fault=None, seed=b"sim-1", **kw):
    return SimTrng(fault=fault, source=DeterministicEntropy(seed).random_bytes, **kw)


def test_entropy_error_is_a_local_protocol_error():
    assert issubclass(EntropyError, LocalProtocolError)


def test_host_entropy():
    e = HostEntropy()
    a = e.random_bytes(32)
    assert len(a) == 32 and isinstance(a, bytes) and a != e.random_bytes(32)
    assert e.random_bytes(0) == b""
    assert (e.state, e.error) == ("ok", None)
    e.reseed()
    e.reseed()
    assert e.reseed_count == 2
    raises(LocalProtocolError, e.random_bytes, -1)


def test_deterministic_entropy_is_reproducible_and_marked():
    a, b = DeterministicEntropy(b"seed"), DeterministicEntropy(b"seed")
    assert DeterministicEntropy.TESTS_ONLY is True
    assert a.random_bytes(48) == b.random_bytes(48)
    assert a.random_bytes(10000) == b.random_bytes(10000)
    assert DeterministicEntropy(b"other").random_bytes(48) != DeterministicEntropy(b"seed").random_bytes(48)
    x, y = a.random_bytes(16), DeterministicEntropy(b"seed")
    for n in (48, 10000, 16):  # the same calls: each generate call moves the state
        y.random_bytes(n)
    a.reseed()
    y.reseed()
    assert a.reseed_count == 1 and a.random_bytes(16) == y.random_bytes(16) != x
    raises(LocalProtocolError, a.random_bytes, "8")


def test_trng_chain_output_and_sample_accounting():
    e = TrngEntropy(_sim(), 0.5)
    assert e.health.rct_cutoff == 41 and e.health.apt_cutoff == 793 and e.health.window == 1024
    out = e.random_bytes(48)
    assert len(out) == 48 and e.state == "ok" and e.error is None
    # start-up 1024 + seed 2*256/0.5 + nonce 2*128/0.5 samples, all tested
    assert e.health.samples_tested == 1024 + 1024 + 512
    assert e.random_bytes(48) != out
    assert e.random_bytes(0) == b"" and len(e.random_bytes(10000)) == 10000


def test_trng_chain_is_deterministic_for_a_deterministic_source():
    assert TrngEntropy(_sim(), 0.5).random_bytes(32) == TrngEntropy(_sim(), 0.5).random_bytes(32)
    assert TrngEntropy(_sim(), 0.5).random_bytes(32) != TrngEntropy(_sim(seed=b"sim-2"), 0.5).random_bytes(32)
    assert TrngEntropy(_sim(), 0.5, b"p").random_bytes(32) != TrngEntropy(_sim(), 0.5).random_bytes(32)


def test_reseed_per_key_state_draws_fresh_tested_noise():
    e = TrngEntropy(_sim(), 0.5)
    e.random_bytes(1)
    before = e.health.samples_tested
    ref = TrngEntropy(_sim(), 0.5)
    ref.random_bytes(1)
    for i in range(3):
        e.reseed()
    assert e.reseed_count == 3
    assert e.health.samples_tested == before + 3 * 1024
    assert e.random_bytes(16) != ref.random_bytes(16)


def test_reseed_before_first_use_instantiates():
    e = TrngEntropy(_sim(), 0.5)
    e.reseed()
    assert e.reseed_count == 1 and e.health.samples_tested == 2560
    e.startup()  # already seeded: no more samples
    assert e.health.samples_tested == 2560


def test_reseed_interval_pulls_from_the_noise_source():
    e = TrngEntropy(_sim(), 0.5, reseed_interval=2)
    e.random_bytes(8)
    e.random_bytes(8)
    n = e.health.samples_tested
    e.random_bytes(8)
    assert e.health.samples_tested == n + 1024
    assert e.reseed_count == 0  # interval reseeds are not key_state reseeds


def test_healthy_source_raises_no_alarm_over_a_long_run():
    e = TrngEntropy(_sim(seed=b"long run"), SimTrng.MIN_ENTROPY_CLAIM)
    e.random_bytes(32)
    while e.health.samples_tested < HEALTHY_SAMPLES:
        e.reseed()
        assert len(e.random_bytes(32)) == 32
    assert e.state == "ok" and e.health.failure is None


def _caught_before_output(fault, test_name, seed=b"sim-1"):
    src = _sim(fault, seed)
    e = TrngEntropy(src, 0.5)
    exc = raises(EntropyError, e.random_bytes, 16)
    msg = str(exc)
    assert msg.startswith("entropy source failed: ") and test_name in msg, (fault, msg)
    assert e.state == "error" and e.error == msg
    # failed while gathering the start-up samples or the first seed: the DRBG never ran
    assert src.samples <= 1024 + 1024 + 512, (fault, src.samples)
    return msg


def test_stuck_source_is_caught_by_the_startup_rct():
    for fault in ("stuck", "stuck=1"):
        msg = _caught_before_output(fault, "repetition count test (RCT)")
        assert "start-up test" in msg


def test_biased_source_is_caught_by_the_apt():
    for seed in (b"sim-1", b"sim-2", b"sim-3"):
        for fault in ("bias=0.8", "bias=0.2"):
            _caught_before_output(fault, "adaptive proportion test (APT)", seed)


def test_repeating_and_correlated_sources_are_caught_by_the_rct():
    _caught_before_output("repeat=41", "repetition count test (RCT)")
    _caught_before_output("repeat=8", "repetition count test (RCT)")
    _caught_before_output("correlated=0.9", "repetition count test (RCT)")


def test_error_state_is_sticky_until_reset():
    src = _sim("stuck", fault_after=5000)
    e = TrngEntropy(src, 0.5)
    e.random_bytes(16)
    first = raises(EntropyError, lambda: [e.reseed() for _ in range(10)])
    assert "repetition count test (RCT)" in str(first) and "start-up" not in str(first)
    assert e.state == "error"
    for call in (lambda: e.random_bytes(1), e.reseed, e.startup):
        assert str(raises(EntropyError, call)) == str(first) == e.error
    src._fault = None  # repaired: still no output until reset
    raises(EntropyError, e.random_bytes, 1)
    e.reset()
    assert e.state == "ok" and e.error is None
    assert len(e.random_bytes(16)) == 16
    assert e.health.samples_tested == 2560  # a new start-up test ran


def test_a_snapshot_restores_the_source_where_it_stopped():
    e = TrngEntropy(_sim(), 0.5)
    e.reseed()
    e.random_bytes(40)
    snapshot = e.snapshot()
    expected = e.random_bytes(64)
    again = restore(snapshot)
    assert type(again) is TrngEntropy and again.random_bytes(64) == expected
    assert again.state == "ok" and again.reseed_count == 1
    again.reseed()  # its noise side came along: the reseed reads it
    assert again.reseed_count == 2 and again.random_bytes(64) != e.random_bytes(64)
    stuck = TrngEntropy(_sim("stuck"), 0.5)
    err = raises(EntropyError, stuck.startup)
    failed = restore(stuck.snapshot())  # a failed source restores failed
    assert failed.state == "error" and str(raises(EntropyError, failed.random_bytes, 1)) == str(err)


def test_non_binary_source_uses_the_512_window():
    e = TrngEntropy(HostNoise(), 7.0)
    assert e.health.window == 512 and e.health.rct_cutoff == 4
    assert len(e.random_bytes(64)) == 64
    e.reseed()
    assert e.state == "ok"


class _ShortSource:
    binary = True

    def read_samples(self, n):
        return b"\x00\x01" * (n // 4)


class _RefusingSource:
    binary = False

    def read_samples(self, n):
        raise EntropyError("entropy source failed: refused for the test")


class _BrokenSource:
    binary = True

    def read_samples(self, n):
        raise OSError(5)


def test_misbehaving_sources_put_the_object_in_error():
    e = TrngEntropy(_BrokenSource(), 0.5)
    assert str(raises(EntropyError, e.random_bytes, 1)) == "entropy source failed: noise source raised OSError"
    assert e.state == "error"
    e = TrngEntropy(_ShortSource(), 0.5)
    assert "returned" in str(raises(EntropyError, e.random_bytes, 1))
    e = TrngEntropy(_RefusingSource(), 2.0)
    assert str(raises(EntropyError, e.startup)) == "entropy source failed: refused for the test"
    assert e.state == "error"


def test_claim_cannot_exceed_the_sample_width():
    raises(LocalProtocolError, TrngEntropy, _sim(), 1.5)
    raises(LocalProtocolError, TrngEntropy, HostNoise(), 8.5)


class _Loader:
    """A parked source's loader: counts the drivers it makes and the releases."""

    def __init__(self, make):
        self.make = make
        self.loads = 0
        self.releases = 0
        self.sources = []

    def load(self):
        self.loads += 1
        src = self.make()
        self.sources.append(src)
        return src

    def release(self):
        self.releases += 1


def test_parked_source_keeps_only_the_drbg_and_reloads_the_noise_side_for_a_reseed():
    first = _sim()
    e = TrngEntropy(first, 0.5)
    e.startup()
    loader = _Loader(lambda: _sim(seed=b"sim-2"))
    e.reseed_ahead()
    e.park(loader)
    assert (loader.loads, loader.releases) == (0, 1)
    assert e._noise is None and e.health is None  # the driver and the health tests are let go
    read = first.samples
    e.reseed()  # the first key_state takes the reseed done ahead: no noise is read
    assert e.reseed_count == 1 and first.samples == read and loader.loads == 0
    out = e.random_bytes(64)  # the DRBG alone
    assert len(out) == 64 and loader.loads == 0
    e.reseed()  # the next key_state: a new driver, its start-up test, then the seed
    assert (loader.loads, loader.releases) == (1, 2) and e.reseed_count == 2
    assert loader.sources[0].samples == 1024 + 1024  # start-up test + 2 * 256 bits at 0.5 bits a sample
    assert e._noise is None and e.random_bytes(64) != out


def test_parked_source_that_fails_on_reload_gives_nothing():
    e = TrngEntropy(_sim(), 0.5)
    e.reseed_ahead()
    e.park(_Loader(lambda: _sim("stuck")))
    e.reseed()  # taken from the reseed ahead
    e.random_bytes(16)
    err = raises(EntropyError, e.reseed)
    assert "start-up" in str(err) and e.state == "error" and e._noise is None
    raises(EntropyError, e.random_bytes, 1)
    raises(EntropyError, e.reseed)  # sticky: the reseed ahead is not taken either


def test_parked_source_whose_driver_will_not_start_gives_nothing():
    def broken():
        raise OSError("no such register")

    e = TrngEntropy(_sim(), 0.5)
    e.startup()
    e.park(_Loader(broken))
    e.random_bytes(8)
    err = raises(EntropyError, e.reseed)
    assert "cannot restart the noise source: OSError" in str(err) and e.state == "error"


def test_a_parked_source_out_of_heap_at_a_reseed_is_no_failed_source():
    """A board whose heap cannot take the noise side back for a reseed (a renegotiation at
    its peak) is out of memory, not out of entropy: the MemoryError goes up as it is (the
    device reports it and starts again) and the source is not left in its sticky error
    state; the next reseed, with room, works."""
    room = []

    def driver():
        if not room:
            raise MemoryError("memory allocation failed, allocating 1024 bytes")
        return _sim(seed=b"sim-2")

    class Tight:  # a driver that loads but whose samples' buffer does not fit
        binary = True

        def read_samples(self, n):
            raise MemoryError("memory allocation failed, allocating %d bytes" % n)

    e = TrngEntropy(_sim(), 0.5)
    e.startup()
    e.park(_Loader(driver))
    e.random_bytes(8)
    raises(MemoryError, e.reseed)
    assert e.state == "ok" and e._noise is None
    e.park(_Loader(Tight))
    raises(MemoryError, e.reseed)
    assert e.state == "ok" and e._noise is None
    room.append(1)
    e.park(_Loader(driver))
    e.reseed()
    assert e.state == "ok" and len(e.random_bytes(16)) == 16
