"""The board's stock firmware, enforced on the simulated board (installed by _simboot).

The unix port has every module and a 64-bit clock; a board's stock firmware does
not. ``install()`` replaces ``builtins.__import__`` so that for the code on the board:

- a module the profile lists as absent (``stock_firmware.modules.absent``: ``tls``
  and ``ssl`` on a plain Pico) raises ImportError as on the board;
- ``hashlib`` offers only the profile's algorithms;
- ``time`` is ``_simtime`` (ticks wrap with the board's period, clock from the RTC);
- ``tls`` is ``_simtls`` where the port puts mbedTLS in the GC heap (rp2), and
  ``gc.collect()`` then also gives back what mbedTLS freed.
"""

import builtins
import gc as _gc
import hashlib as _hashlib

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

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            if name in absent:
                raise ImportError("no module named '%s'" % name)
            mod = subst.get(name)
            if mod is not None:
                return mod
        return real(name, globals, locals, fromlist, level)

    builtins.__import__ = _import
