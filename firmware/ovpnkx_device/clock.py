"""Milliseconds since start, on either runtime."""

import time

from ovpnkx._compat import MICROPYTHON


class Clock:
    """A monotonic millisecond clock starting at 0 (ticks_ms on MicroPython)."""

    def __init__(self) -> None:
        self._start = self._raw()

    @staticmethod
    def _raw() -> int:
        if MICROPYTHON:
            return int(time.ticks_ms())  # type: ignore
        return time.monotonic_ns() // 1000000  # type: ignore

    def now_ms(self) -> int:
        """Milliseconds since this clock was made."""
        if MICROPYTHON:
            return int(time.ticks_diff(self._raw(), self._start))  # type: ignore
        return self._raw() - self._start
