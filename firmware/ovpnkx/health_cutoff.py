"""SP 800-90B §4.4 cutoffs of the continuous health tests (``ovpnkx.health``) for a
claimed min-entropy per sample, at the false-alarm rate α = 2^-20.

A board's noise source carries its cutoffs as constants (boards/*/noise.py; the ESP32's
floats are single precision), so this module is not flashed (tools/flash.py HOST_ONLY): the
host uses it to make and check them.
"""

import math

from ._compat import const
from .errors import LocalProtocolError

ALPHA_LOG2 = const(20)  # α = 2^-20, SP 800-90B's recommended false-alarm rate


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
