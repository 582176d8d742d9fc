"""The one seam between MicroPython and CPython.

Everything that differs between the runtimes is decided here, once, so that the
other modules are the same text on both.
"""

import sys

MICROPYTHON = sys.implementation.name == "micropython"

# For `if TYPE_CHECKING:` imports of names used only in annotations. MicroPython has
# no `typing`; mypy knows the name, and CPython's typeshed makes it Final, hence the
# ignore (a module-local copy of this try/except needs the same ignore).
try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython
    TYPE_CHECKING = False  # type: ignore[misc]

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:  # type: ignore[misc]
        """CPython stand-in for MicroPython's compile-time constant marker."""
        return value


def unload(name: str) -> None:
    """On MicroPython, forget the submodule ``ovpnkx.<name>`` that was needed once, so that
    the GC can take its code back (a board's heap is small); nothing on CPython."""
    if MICROPYTHON:
        sys.modules.pop("ovpnkx." + name, None)
        pkg = sys.modules.get("ovpnkx")
        if pkg is not None and name in pkg.__dict__:
            delattr(pkg, name)
