"""Message digests and HMAC on both runtimes.

OpenVPN uses HMAC with MD5 and SHA1 (the TLS 1.0 PRF), SHA1/SHA256/SHA384/SHA512
(``--auth`` for tls-auth and CBC data packets). MicroPython's ``hashlib`` has
md5, sha1 and sha256 but no ``hmac`` module and no ``copy()``, so HMAC is
written here over the bare hash constructors; CPython uses its C ``hmac``.
Where ``hashlib`` lacks SHA-384/512 (the boards' stock firmware), the pure-Python
``ovpnkx.sha512`` stands in; it is imported only then.
"""

import hashlib

from ._compat import MICROPYTHON, TYPE_CHECKING
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from circuitpython_typing import ReadableBuffer

# name -> (digest size, block size)
_SIZES = {
    "MD5": (16, 64),
    "SHA1": (20, 64),
    "SHA256": (32, 64),
    "SHA384": (48, 128),
    "SHA512": (64, 128),
}
NAMES = ("MD5", "SHA1", "SHA256", "SHA384", "SHA512")


def _constructor(name: str):
    if name not in _SIZES:
        raise LocalProtocolError("digest %s is not available on this runtime" % name)
    ctor = getattr(hashlib, name.lower(), None)
    if ctor is None and name in ("SHA384", "SHA512"):
        from . import sha512

        ctor = getattr(sha512, name.lower())
    if ctor is None:
        raise LocalProtocolError("digest %s is not available on this runtime" % name)
    return ctor


def native(name: str) -> bool:
    """True when ``hashlib`` itself has digest ``name`` (no pure-Python stand-in)."""
    return getattr(hashlib, name.lower(), None) is not None


def digest_size(name: str) -> int:
    """Output size in bytes of digest ``name`` (one of ``NAMES``)."""
    _constructor(name)
    return _SIZES[name][0]


def hash_digest(name: str, data: "ReadableBuffer") -> bytes:
    """Plain hash of ``data``."""
    return _constructor(name)(data).digest()


class Hmac:
    """HMAC with a fixed key, for computing many MACs under one key.

    ``Hmac("SHA1", key).digest(part1, part2, ...)`` is HMAC over the parts
    concatenated (without building the concatenation).
    """

    def __init__(self, name: str, key: bytes) -> None:
        self._ctor = _constructor(name)
        self.name = name
        self.size = _SIZES[name][0]
        if not MICROPYTHON:
            import hmac as _hmac

            self._template = _hmac.new(key, digestmod=name.lower())
            return
        block = _SIZES[name][1]
        if len(key) > block:
            key = self._ctor(key).digest()
        key = key + bytes(block - len(key))
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)
        # the pure-Python SHA-384/512 can copy: hash the padded keys once, not per MAC
        self._keyed = None  # type: tuple | None
        if hasattr(self._ctor, "copy"):
            self._keyed = (self._ctor(self._ipad), self._ctor(self._opad))

    def digest(self, *parts: "ReadableBuffer") -> bytes:
        """HMAC over ``parts`` joined."""
        if not MICROPYTHON:
            h = self._template.copy()
            for p in parts:
                h.update(p)
            return h.digest()
        if self._keyed is not None:
            inner = self._keyed[0].copy()
            for p in parts:
                inner.update(p)
            outer = self._keyed[1].copy()
            outer.update(inner.digest())
            return outer.digest()
        inner = self._ctor(self._ipad)
        for p in parts:
            inner.update(p)
        outer = self._ctor(self._opad)
        outer.update(inner.digest())
        return outer.digest()


def hmac_digest(name: str, key: bytes, *parts: "ReadableBuffer") -> bytes:
    """One-shot HMAC-``name`` of ``parts`` joined, under ``key``."""
    return Hmac(name, key).digest(*parts)


def compare_digest(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two MACs."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
