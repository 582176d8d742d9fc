"""SP 800-90B §4.4 continuous health tests on raw noise samples.

The Repetition Count Test (RCT, §4.4.1) catches a source stuck on one value;
the Adaptive Proportion Test (APT, §4.4.2) catches a large loss of entropy
(one value too common in a window). Both have false-alarm probability
α = 2^-20 for a source that really delivers the claimed min-entropy ``h`` per
sample. A failure is final: ``HealthTests`` refuses every later sample.

Samples are small ints (one per byte of what the noise source returns).
"""

import math

from ._compat import MICROPYTHON, TYPE_CHECKING, const
from .errors import EntropyError, LocalProtocolError

if TYPE_CHECKING:
    from typing import Any

ALPHA_LOG2 = const(20)  # α = 2^-20, SP 800-90B's recommended false-alarm rate
WINDOW_BINARY = const(1024)
WINDOW_NON_BINARY = const(512)
STARTUP_SAMPLES = const(1024)  # §4.3 item 9: start-up tests over at least 1024 samples


def _check_h(h: float) -> None:
    if not (h > 0.0 and h <= 32.0):
        raise LocalProtocolError("claimed min-entropy per sample must be in (0, 32] bits")


def rct_cutoff(h: float, alpha_log2: int = ALPHA_LOG2) -> int:
    """RCT cutoff C = 1 + ⌈−log2(α) / h⌉ (SP 800-90B §4.4.1).

    A run of C identical samples fails the test; for a source with min-entropy
    h per sample such a run has probability at most α.
    """
    _check_h(h)
    # the tiny slack keeps 20 / 0.2 (= 100.00000000000001 in floats) at 100
    return 1 + math.ceil(alpha_log2 / h - 1e-9)


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log(1.0 + math.exp(b - a))


def apt_cutoff(h: float, window: int, alpha_log2: int = ALPHA_LOG2, corrected: bool = False) -> int:
    """APT cutoff for window W and claimed min-entropy h (SP 800-90B §4.4.2).

    The standard's formula: C = 1 + CRITBINOM(W, 2^-h, 1 - α), i.e. the
    smallest C with P(X >= C) <= α for X ~ Binomial(W, 2^-h); this is what
    the standard's cutoff table lists. ``corrected=True`` gives the cutoff
    for what the test actually counts (the first sample plus matches among
    the other W-1: C = 1 + smallest c with P(Y >= c) <= α, Y ~ Bin(W-1, p)),
    as in the public comments on 90B and jitterentropy; it is 0 or 1 higher.

    Computed in log space (no big factorials, no underflow), so it also runs
    on MicroPython with double floats. Boards with single-precision floats
    should carry precomputed constants instead.
    """
    _check_h(h)
    if window < 2:
        raise LocalProtocolError("APT window must be at least 2 samples")
    n = window - 1 if corrected else window
    p = 2.0 ** -h
    if p >= 1.0:
        return window
    log_alpha = -alpha_log2 * math.log(2.0)
    log_odds_down = math.log((1.0 - p) / p)
    # walk k = n, n-1, ... summing P(X = k) in log space until the tail exceeds α
    log_pmf = n * math.log(p)
    tail = -math.inf
    k = n
    while k >= 0:
        tail = _logaddexp(tail, log_pmf)
        if tail > log_alpha:
            break
        # P(X = k-1) = P(X = k) * k / (n - k + 1) * (1 - p) / p
        if k > 0:
            log_pmf += math.log(k / (n - k + 1)) + log_odds_down
        k -= 1
    c = k + 1  # smallest c with P(X >= c) <= α
    if corrected:
        c += 1  # the count includes the window's first sample
    # a cutoff above W could never fire (FIPS 140 IG: it must be able to), and
    # one below 2 means nothing: the count is checked only after a match
    return max(2, min(c, window))


class HealthTests:
    """RCT and APT running over every sample of one noise source.

    ``feed(samples)`` raises ``EntropyError`` on the first failure and on
    every call after it; ``failure`` holds the message.
    """

    def __init__(self, h: float, binary: bool, rct: "int | None" = None, apt: "int | None" = None,
                 window: "int | None" = None) -> None:
        _check_h(h)
        self.h = h
        self.window = window or (WINDOW_BINARY if binary else WINDOW_NON_BINARY)
        self.rct_cutoff = rct if rct is not None else rct_cutoff(h)
        self.apt_cutoff = apt if apt is not None else apt_cutoff(h, self.window)
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
            self._feed_portable(samples, phase)

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

    def _feed_portable(self, samples: bytes, phase: str) -> None:
        rv = self._rct_value
        rc = self._rct_count
        av = self._apt_value
        ac = self._apt_count
        ai = self._apt_index
        rcut = self.rct_cutoff
        acut = self.apt_cutoff
        window = self.window
        done = 0
        for s in samples:
            done += 1
            if s == rv:
                rc += 1
                if rc >= rcut:
                    self._fail(phase, self._rct_message(rc), done)
            else:
                rv = s
                rc = 1
            if ai == 0:
                av = s
                ac = 1
            elif s == av:
                ac += 1
                if ac >= acut:
                    self._fail(phase, self._apt_message(ac), done)
            ai += 1
            if ai == window:
                ai = 0
        self._rct_value = rv
        self._rct_count = rc
        self._apt_value = av
        self._apt_count = ac
        self._apt_index = ai
        self.samples_tested += done

    def _fail(self, phase: str, what: str, done: int) -> None:
        self.samples_tested += done
        prefix = "entropy source failed: "
        if phase:
            prefix += phase + ": "
        self.failure = prefix + what + " after %d samples" % self.samples_tested
        raise EntropyError(self.failure)


def _selftest(native) -> bool:
    """True when ``native`` fails and passes exactly where the portable loop does."""
    global _native
    before = _native
    seq = bytearray(6000)
    x = 12345
    for i in range(6000):  # runs of every length up to 63, some long ones
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        seq[i] = (x >> 16) & 1 if i % 1000 < 900 else 1
    outcomes = []
    for impl in (None, native):
        _native = impl
        got = []
        for h, binary, rct, apt, window in ((0.2, True, None, None, None), (1.0, True, 8, None, 64),
                                            (0.5, True, 60, 40, 64), (2.0, False, None, None, None),
                                            (0.2, True, 200, None, None)):  # the last one passes
            t = HealthTests(h, binary, rct, apt, window)
            try:
                for k in range(0, len(seq), 700):
                    t.feed(bytes(seq[k:k + 700]), "p")
            except EntropyError:
                pass
            state = None if t.failure else (t._rct_value, t._rct_count, t._apt_value, t._apt_count, t._apt_index)
            got.append((t.failure, t.samples_tested, state))
        outcomes.append(got)
    _native = before
    return outcomes[0] == outcomes[1]


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
            _verdict = _selftest(_health_viper.feed)
            setattr(ovpnkx, "health_viper_verdict", _verdict)
        if _verdict:
            _native = _health_viper.feed
    except Exception:  # no viper on this port: keep the portable loop
        _native = None


def backend() -> str:
    """Which loop the health tests run: "viper" or "portable"."""
    return "portable" if _native is None else "viper"
