"""Milliseconds since start, on either runtime."""

import time

try:
    _ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
    _ticks_diff = time.ticks_diff  # type: ignore[attr-defined]
except AttributeError:  # CPython
    _ticks_ms = None


class Clock:
    """A monotonic millisecond clock starting at 0."""

    def __init__(self) -> None:
        if _ticks_ms is not None:
            self._start = _ticks_ms()
        else:
            self._start = time.monotonic_ns() // 1000000

    def now_ms(self) -> int:
        """Milliseconds since this clock was made."""
        if _ticks_ms is not None:
            return _ticks_diff(_ticks_ms(), self._start)
        return time.monotonic_ns() // 1000000 - self._start
