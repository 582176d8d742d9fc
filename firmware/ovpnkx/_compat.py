"""The one seam between MicroPython and CPython.

Everything that differs between the runtimes is decided here, once, so that the
other modules are the same text on both.
"""

import sys

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:  # type: ignore[misc]
        """CPython stand-in for MicroPython's compile-time constant marker."""
        return value
