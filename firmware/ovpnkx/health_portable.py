"""The health tests' loop in Python (``ovpnkx.health.HealthTests.feed`` where no viper
loop runs) and the check that a viper loop agrees with it.

Out of ``ovpnkx.health``, which a board loads for every reseed: a board with the native
emitter runs the viper loop, and checks it once per boot.
"""

from . import health
from ._compat import TYPE_CHECKING
from .errors import EntropyError

if TYPE_CHECKING:
    from typing import Any

    from .health import HealthTests


def feed(t: "HealthTests", samples: "Any", phase: str) -> None:
    """``t.feed(samples, phase)`` in Python: any iterable of sample values, on any port."""
    rv = t._rct_value
    rc = t._rct_count
    av = t._apt_value
    ac = t._apt_count
    ai = t._apt_index
    rcut = t.rct_cutoff
    acut = t.apt_cutoff
    window = t.window
    done = 0
    for s in samples:
        done += 1
        if s == rv:
            rc += 1
            if rc >= rcut:
                t._fail(phase, t._rct_message(rc), done)
        else:
            rv = s
            rc = 1
        if ai == 0:
            av = s
            ac = 1
        elif s == av:
            ac += 1
            if ac >= acut:
                t._fail(phase, t._apt_message(ac), done)
        ai += 1
        if ai == window:
            ai = 0
    t._rct_value = rv
    t._rct_count = rc
    t._apt_value = av
    t._apt_count = ac
    t._apt_index = ai
    t.samples_tested += done


# (h, binary, RCT cutoff, APT cutoff, window): the cutoffs health_cutoff computes for h
# (tests/core/test_entropy_health_native.py checks them), or tighter; the last one passes
SELFTEST_CASES = ((0.2, True, 101, 941, None), (1.0, True, 8, 51, 64), (0.5, True, 60, 40, 64),
                  (2.0, False, 11, 177, None), (0.2, True, 200, 941, None))


def selftest(native: "Any") -> bool:
    """True when ``native`` fails and passes exactly where the portable loop does."""
    before = health._native
    seq = bytearray(6000)
    x = 12345
    for i in range(6000):  # runs of every length up to 63, some long ones
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        seq[i] = (x >> 16) & 1 if i % 1000 < 900 else 1
    outcomes = []
    for impl in (None, native):
        health._native = impl
        got = []
        for h, binary, rct, apt, window in SELFTEST_CASES:
            t = health.HealthTests(h, binary, rct, apt, window)
            try:
                for k in range(0, len(seq), 700):
                    t.feed(bytes(seq[k:k + 700]), "p")
            except EntropyError:
                pass
            state = None if t.failure else (t._rct_value, t._rct_count, t._apt_value, t._apt_count, t._apt_index)
            got.append((t.failure, t.samples_tested, state))
        outcomes.append(got)
    health._native = before
    return outcomes[0] == outcomes[1]
