"""The clock of the benchmarks that run on both runtimes: microseconds, and their difference.

MicroPython's ``ticks_us`` wraps, so a difference goes through ``ticks_diff``;
CPython's ``perf_counter`` does not.
"""

import sys
import time

if sys.implementation.name == "micropython":

    def now():
        """A point in time, in the runtime's own microsecond ticks."""
        return time.ticks_us()

    def us(t0, t1):
        """Microseconds from ``t0`` to ``t1``."""
        return time.ticks_diff(t1, t0)

else:

    def now():
        """A point in time, in microseconds."""
        return time.perf_counter() * 1e6

    def us(t0, t1):
        """Microseconds from ``t0`` to ``t1``."""
        return t1 - t0
