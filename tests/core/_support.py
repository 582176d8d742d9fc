"""Helpers for core tests that run unchanged on CPython (pytest) and MicroPython.

Core tests are plain ``test_*`` functions without arguments that use ``assert``
and these helpers only, so that ``tests/mp_runner.py`` can run them on the
MicroPython unix port exactly as pytest runs them on CPython.
"""

import json

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
DATA_DIR = _HERE.rsplit("/", 1)[0] + "/data" if "/" in _HERE else "../data"


def raises(exc_type, func, *args, **kwargs):
    """Call ``func`` and return the exception it raised, which must be ``exc_type``."""
    try:
        func(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("%s did not raise %s" % (getattr(func, "__name__", func), exc_type.__name__))


def load_json(name):
    """Load ``tests/data/<name>``."""
    with open(DATA_DIR + "/" + name) as f:
        return json.load(f)


def unhex(text):
    """Hex string (spaces allowed) to bytes."""
    return bytes.fromhex(text.replace(" ", ""))


def crypto_backend():
    """The crypto backend of the running runtime: cryptolib on MicroPython, cryptography on CPython."""
    import sys

    if sys.implementation.name == "micropython":
        from ovpnkx.crypto_mp import MicroPythonCrypto

        return MicroPythonCrypto()
    from ovpnkx_host.crypto_host import HostCrypto

    return HostCrypto()


def replay_state(channel):
    """(highest packet-id accepted, bitmap: bit d when id - d was seen) of a DataChannel (white box)."""
    rec = channel._rec
    bits = 0
    for d in range(rec._count):
        if rec._slot(d):
            bits |= 1 << d
    return rec.id, bits
