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

        assert health._selftest(_health_viper.feed)
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
