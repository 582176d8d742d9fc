"""The health tests' viper loop (MicroPython) agrees with the portable one sample for sample."""

import sys

from ovpnkx import health
from ovpnkx.entropy import DeterministicEntropy, EntropyError
from ovpnkx.health import HealthTests

MP = sys.implementation.name == "micropython"


def _run(samples, chunk, *config):
    t = HealthTests(*config)
    try:
        for k in range(0, len(samples), chunk):
            t.feed(samples[k:k + chunk], "x")
    except EntropyError:
        pass
    return t.failure, t.samples_tested


def test_backend_per_runtime():
    assert health.backend() == ("viper" if MP else "portable")
    if MP:
        from ovpnkx import _health_viper

        from ovpnkx.health_portable import selftest

        assert selftest(_health_viper.feed)
        assert health.backend() == "viper"  # the self-test leaves the choice as it was


def test_the_viper_loop_is_checked_once_per_boot():
    """A board loads ``health`` and the viper loop again for each reseed: the loop's check (a
    6 KB buffer, 30000 samples through both loops) runs at the first import only, its verdict
    kept on the package, which stays loaded."""
    if not MP:
        return
    import ovpnkx
    from ovpnkx import _health_viper
    from ovpnkx._compat import unload

    assert ovpnkx.health_viper_verdict is True
    try:
        ovpnkx.health_viper_verdict = False  # as if the check had refused the loop: taken, not redone
        unload("health")  # as a board's parked entropy source does after a reseed
        unload("_health_viper")
        from ovpnkx import health as again

        assert again is not health and again.backend() == "portable"
        assert sys.modules["ovpnkx._health_viper"] is not _health_viper  # loaded again, not checked again
    finally:
        ovpnkx.health_viper_verdict = True
        sys.modules["ovpnkx.health"] = health
        ovpnkx.health = health


def test_native_and_portable_agree_across_chunkings():
    native = health._native
    raw = DeterministicEntropy(b"health").random_bytes(6000)
    bits = bytes(b & 1 for b in raw)
    sticky = bytes((raw[i] & 1) if raw[i] > 30 else 1 for i in range(6000))  # long runs of ones
    cases = ((bits, (1.0, True, 12, None, 128)), (sticky, (0.5, True, None, None, None)),
             (raw, (7.0, False, None, None, None)), (bytes(b % 3 for b in raw), (1.0, False, 16, 200, 512)))
    for samples, config in cases:
        for chunk in (1, 7, 512, 6000):
            got = []
            for impl in (None, native):
                health._native = impl
                try:
                    got.append(_run(samples, chunk, *config))
                finally:
                    health._native = native
            assert got[0] == got[1], (config, chunk, got)


def test_the_viper_loops_check_runs_at_the_cutoffs_health_cutoff_computes():
    """The check carries its cases' cutoffs as constants (a board has no ``health_cutoff``):
    where a case once left them to be computed, they are what is computed."""
    from ovpnkx.health_cutoff import apt_cutoff, rct_cutoff
    from ovpnkx.health_portable import SELFTEST_CASES

    computed = []
    for h, binary, rct, apt, window in SELFTEST_CASES:
        computed.append((rct_cutoff(h), apt_cutoff(h, window or (1024 if binary else 512))))
    got = [(c[2], c[3]) for c in SELFTEST_CASES]
    assert [got[0], got[3]] == [computed[0], computed[3]]  # both computed
    assert [got[1][1], got[4][1]] == [computed[1][1], computed[4][1]]  # the APT cutoff computed


def test_without_health_cutoff_a_source_must_carry_its_cutoffs():
    """On a board ``health_cutoff`` is not flashed: a source without constant cutoffs is
    refused with a message that says what to give, not with an ImportError."""
    from ovpnkx.errors import LocalProtocolError

    from _support import raises

    saved = sys.modules.get("ovpnkx.health_cutoff")
    sys.modules["ovpnkx.health_cutoff"] = object()  # a module without the names: as if absent
    try:
        msg = str(raises(LocalProtocolError, HealthTests, 0.5, True))
        assert "RCT and APT cutoffs" in msg
        assert HealthTests(0.5, True, 41, 793).apt_cutoff == 793  # with them, nothing is computed
    finally:
        if saved is None:
            sys.modules.pop("ovpnkx.health_cutoff")
        else:
            sys.modules["ovpnkx.health_cutoff"] = saved
