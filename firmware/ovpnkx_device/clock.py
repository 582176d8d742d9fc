"""Milliseconds since start, on either runtime, across the ticks wrap."""

import time

from ovpnkx._compat import MICROPYTHON


class Clock:
    """A monotonic millisecond clock starting at 0.

    On MicroPython ``ticks_ms`` wraps every 2^30 ms (12.4 days) on a 32-bit port and
    ``ticks_diff`` is only valid within 2^29 ms, so the clock adds up the differences
    between successive readings instead of measuring from its start: it keeps
    counting for as long as ``now_ms`` is called at least once every 2^29 ms (6.2
    days). ``ticks_ms``/``ticks_diff`` can be given (tests).
    """

    def __init__(self, ticks_ms: "object" = None, ticks_diff: "object" = None) -> None:
        if ticks_ms is None and MICROPYTHON:
            ticks_ms, ticks_diff = time.ticks_ms, time.ticks_diff  # type: ignore[attr-defined]
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._total = 0
        if ticks_ms is None:
            self._start = time.monotonic_ns() // 1000000  # type: ignore[attr-defined]
        else:
            self._last = ticks_ms()  # type: ignore[operator]

    def now_ms(self) -> int:
        """Milliseconds since this clock was made."""
        if self._ticks is None:
            return time.monotonic_ns() // 1000000 - self._start  # type: ignore[attr-defined]
        raw = self._ticks()  # type: ignore[operator]
        self._total += self._diff(raw, self._last)  # type: ignore[operator]
        self._last = raw
        return self._total
