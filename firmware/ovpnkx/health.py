"""SP 800-90B §4.4 continuous health tests on raw noise samples.

The Repetition Count Test (RCT, §4.4.1) catches a source stuck on one value;
the Adaptive Proportion Test (APT, §4.4.2) catches a large loss of entropy
(one value too common in a window). Both have false-alarm probability
α = 2^-20 for a source that really delivers the claimed min-entropy ``h`` per
sample. A failure is final: ``HealthTests`` refuses every later sample.

Samples are small ints (one per byte of what the noise source returns).

A board loads this module for every reseed, so it holds only what a reseed runs: the
cutoffs' maths are in ``health_cutoff`` (host-only: a board's source carries its cutoffs as
constants), the portable loop and the viper loop's check in ``health_portable``.
"""

from ._compat import MICROPYTHON, TYPE_CHECKING, const
from .errors import EntropyError, LocalProtocolError

if TYPE_CHECKING:
    from typing import Any

WINDOW_BINARY = const(1024)
WINDOW_NON_BINARY = const(512)
STARTUP_SAMPLES = const(1024)  # §4.3 item 9: start-up tests over at least 1024 samples


class HealthTests:
    """RCT and APT running over every sample of one noise source.

    ``feed(samples)`` raises ``EntropyError`` on the first failure and on
    every call after it; ``failure`` holds the message.
    """

    def __init__(self, h: float, binary: bool, rct: "int | None" = None, apt: "int | None" = None,
                 window: "int | None" = None) -> None:
        if not (h > 0.0 and h <= 32.0):
            raise LocalProtocolError("claimed min-entropy per sample must be in (0, 32] bits")
        self.h = h
        self.window = window or (WINDOW_BINARY if binary else WINDOW_NON_BINARY)
        if rct is None or apt is None:
            try:
                from .health_cutoff import apt_cutoff, rct_cutoff
            except ImportError:  # host-only (tools/flash.py): a board's noise.py carries constants
                raise LocalProtocolError("no health test cutoffs: give the noise source's RCT and APT "
                                         "cutoffs (ovpnkx.health_cutoff computes them on the host only)")

            rct = rct if rct is not None else rct_cutoff(h)
            apt = apt if apt is not None else apt_cutoff(h, self.window)
        self.rct_cutoff = rct
        self.apt_cutoff = apt
        if self.rct_cutoff < 2 or not 2 <= self.apt_cutoff <= self.window:
            raise LocalProtocolError("health test cutoffs out of range")
        self.failure = None  # type: str | None
        self.samples_tested = 0
        self._rct_value = -1
        self._rct_count = 0
        self._apt_value = -1
        self._apt_count = 0
        self._apt_index = 0

    def feed(self, samples: bytes, phase: str = "") -> None:
        """Run both tests over ``samples`` (a bytes-like of sample values)."""
        if self.failure is not None:
            raise EntropyError(self.failure)
        if _native is not None and isinstance(samples, (bytes, bytearray, memoryview)):
            self._feed_native(samples, phase)
        else:
            from .health_portable import feed

            feed(self, samples, phase)

    def _rct_message(self, count: int) -> str:
        return ("repetition count test (RCT): %d identical samples in a row (cutoff %d for %s bits/sample)"
                % (count, self.rct_cutoff, self.h))

    def _apt_message(self, count: int) -> str:
        return ("adaptive proportion test (APT): first sample of a %d-sample window seen %d times "
                "(cutoff %d for %s bits/sample)" % (self.window, count, self.apt_cutoff, self.h))

    def _feed_native(self, samples: bytes, phase: str) -> None:
        from array import array

        rv = self._rct_value
        av = self._apt_value
        st = array("I", (rv if rv >= 0 else 256, self._rct_count, av if av >= 0 else 256, self._apt_count,
                         self._apt_index, self.rct_cutoff, self.apt_cutoff, self.window))
        assert _native is not None
        result = _native(samples, len(samples), st)
        self._rct_value = st[0] if st[0] < 256 else -1
        self._rct_count = st[1]
        self._apt_value = st[2] if st[2] < 256 else -1
        self._apt_count = st[3]
        self._apt_index = st[4]
        if result:
            what = self._apt_message(st[3]) if result & 1 else self._rct_message(st[1])
            self._fail(phase, what, result >> 1)
        self.samples_tested += len(samples)

    def _fail(self, phase: str, what: str, done: int) -> None:
        self.samples_tested += done
        prefix = "entropy source failed: "
        if phase:
            prefix += phase + ": "
        self.failure = prefix + what + " after %d samples" % self.samples_tested
        raise EntropyError(self.failure)


_native = None  # type: Any  # the viper loop, used once checked (MicroPython with the native emitter)
if MICROPYTHON:
    try:
        import ovpnkx

        from . import _health_viper

        # checked once per boot: a board loads this module and the viper loop again for each
        # reseed (both leave the heap with the noise side), and the check takes a 6 KB buffer
        # and a while, so its verdict is kept where it stays, on the package
        _verdict = getattr(ovpnkx, "health_viper_verdict", None)
        if _verdict is None:
            from .health_portable import selftest

            _verdict = selftest(_health_viper.feed)
            setattr(ovpnkx, "health_viper_verdict", _verdict)
        if _verdict:
            _native = _health_viper.feed
    except Exception:  # no viper on this port: keep the portable loop
        _native = None


def backend() -> str:
    """Which loop the health tests run: "viper" or "portable"."""
    return "portable" if _native is None else "viper"
