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

if TYPE_CHECKING:
    from typing import Any

try:
    from micropython import const
except ImportError:  # CPython

    def const(value: int) -> int:  # type: ignore[misc]
        """CPython stand-in for MicroPython's compile-time constant marker."""
        return value


def is_decimal(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits. CPython's ``str.isdigit()`` and
    ``int()`` also take other scripts' digits (and ``int()`` underscores), MicroPython's
    do not: numbers from a config or a peer are read the same on both."""
    return bool(text) and all("0" <= c <= "9" for c in text)


def collect() -> None:
    """On MicroPython, a collection now (a board's heap): what was freed is whole again
    before the next big allocation, instead of left between live blocks; nothing on CPython."""
    if MICROPYTHON:
        import gc

        gc.collect()


def unload(name: str) -> None:
    """On MicroPython, forget the module ``ovpnkx.<name>`` (or ``name`` itself when it is
    dotted, e.g. ``ovpnkx_device.wallclock``) that was needed once, so that the GC can take
    its code back (a board's heap is small); nothing on CPython."""
    if MICROPYTHON:
        full = name if "." in name else "ovpnkx." + name
        sys.modules.pop(full, None)
        parent, _, attr = full.rpartition(".")
        pkg = sys.modules.get(parent)
        if pkg is not None and attr in pkg.__dict__:
            delattr(pkg, attr)


def partial(func: "Any", *args: "Any") -> "Any":
    """``func`` with ``args`` bound, like functools.partial (which MicroPython lacks).
    Made here, it keeps no other module's globals alive: a board can unload the module
    that made it (``unload``)."""
    return lambda: func(*args)
