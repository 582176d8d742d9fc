"""The board's stock firmware, enforced on the simulated board (installed by _simboot).

The unix port has every module and a 64-bit clock; a board's stock firmware does
not. ``install()`` replaces ``builtins.__import__`` so that for the code on the board:

- a module the profile lists as absent (``stock_firmware.modules.absent``: ``tls``
  and ``ssl`` on a plain Pico) raises ImportError as on the board;
- ``hashlib`` offers only the profile's algorithms;
- ``time`` is ``_simtime`` (ticks wrap with the board's period, clock from the RTC);
- ``tls`` is ``_simtls`` where the port puts mbedTLS in the GC heap (rp2), and
  ``gc.collect()`` then also gives back what mbedTLS freed;
- with ``--code-at-chip-scale``, a module loaded from a ``.mpy`` holds its file size again.
"""

import builtins
import gc as _gc
import hashlib as _hashlib
import os
import sys

import simboard


class _Namespace:
    pass


def _hashlib_for(algos):
    ns = _Namespace()
    for name in algos:
        if hasattr(_hashlib, name):
            setattr(ns, name, getattr(_hashlib, name))
    ns.__name__ = "hashlib"
    return ns


def _gc_for(tls_module):
    ns = _Namespace()
    for name in ("enable", "disable", "isenabled", "mem_free", "mem_alloc", "threshold"):
        if hasattr(_gc, name):
            setattr(ns, name, getattr(_gc, name))

    def collect():
        n = _gc.collect()
        tls_module.resync()
        return n

    ns.collect = collect
    ns.__name__ = "gc"
    return ns


def _charge_code(charge):
    # --code-at-chip-scale: a .mpy's bytecode and strings are bytes, which take twice the words
    # on a 32-bit board that they take on this 64-bit host. Each module loaded from the flash
    # carries the difference (its file size: an upper estimate, as names already interned cost
    # nothing again) in its globals, held exactly as long as the module's code
    for mod in sys.modules.values():
        path = getattr(mod, "__file__", "")
        if path.endswith(".mpy") and "__chip_bytes__" not in mod.__dict__:
            try:
                size = os.stat(path)[6]
            except OSError:
                continue
            setattr(mod, "__chip_bytes__", bytearray(int(size * charge)))


def install():
    fw = simboard.stock_firmware()
    modules = fw.get("modules", {})
    absent = set(modules.get("absent", ()))
    subst = {}
    algos = modules.get("hashlib", {}).get("value")
    if algos is not None:
        subst["hashlib"] = _hashlib_for(algos)
    import _simtime

    subst["time"] = _simtime
    if "tls" not in absent and simboard.mbedtls_charged():
        import _simtls

        subst["tls"] = _simtls
        subst["gc"] = _gc_for(_simtls)
    real = builtins.__import__
    charge = simboard.config().get("code_charge", 0)

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            if name in absent:
                raise ImportError("no module named '%s'" % name)
            mod = subst.get(name)
            if mod is not None:
                return mod
        if not charge:
            return real(name, globals, locals, fromlist, level)
        before = len(sys.modules)
        mod = real(name, globals, locals, fromlist, level)
        if len(sys.modules) > before:
            _charge_code(charge)
        return mod

    builtins.__import__ = _import
