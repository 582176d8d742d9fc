"""AES-CTR (NIST SP 800-38A) over a bare AES-ECB block function, for tls-crypt.

tls-crypt encrypts control packets with AES-256-CTR, the IV being the first 16
bytes of the packet's HMAC tag and the whole 128-bit block the counter (as
OpenSSL's and mbedTLS's CTR count). MicroPython's ``cryptolib`` has CTR only
where the firmware was built with ``MICROPY_PY_CRYPTOLIB_CTR``, which the stock
rp2 and unix builds are not; this module makes the key stream from ECB, in the
manner of ``gcm``: the counter blocks of up to ``_BATCH`` blocks are one big-int
addition and one ECB call, and the XOR with the data is one big-int XOR.
"""

from ._compat import TYPE_CHECKING, const
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Callable

_BATCH = const(16)  # counter blocks per ECB call (a 1250-byte control packet takes 5)
_MODE_ECB = const(1)  # cryptolib's modes
_MODE_CTR = const(6)
_WRAP = 1 << 128

# _INC >> 128 * (_BATCH - n) = counters 0..n-1, one per 128-bit block
_INC = 0
for _i in range(_BATCH):
    _INC = (_INC << 128) | _i


def ctr_crypt(ecb: "Callable[[bytes], bytes]", iv: bytes, data: bytes) -> bytes:
    """``data`` XOR the AES-CTR key stream that starts at counter block ``iv``.

    ``ecb`` encrypts any multiple of 16 bytes in ECB mode under the key (for
    example ``cryptolib.aes(key, 1).encrypt``). Encryption and decryption are
    the same operation.
    """
    if len(iv) != 16:
        raise LocalProtocolError("AES-CTR needs a 16-byte IV")
    n = len(data)
    if not n:
        return b""
    blocks = (n + 15) // 16
    ctr = int.from_bytes(bytes(iv), "big")
    out = []
    while blocks:
        k = blocks if blocks < _BATCH else _BATCH
        if ctr + k <= _WRAP:
            first = ctr.to_bytes(16, "big")
            ctrs = int.from_bytes(first * k, "big") + (_INC if k == _BATCH else _INC >> 128 * (_BATCH - k))
            out.append(ecb(ctrs.to_bytes(16 * k, "big")))
        else:  # the 128-bit counter wraps inside this batch
            parts = []
            for i in range(k):
                parts.append(((ctr + i) % _WRAP).to_bytes(16, "big"))
            out.append(ecb(b"".join(parts)))
        ctr = (ctr + k) % _WRAP
        blocks -= k
    stream = b"".join(out)
    return (int.from_bytes(bytes(data), "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(n, "big")


def cryptolib_ctr(key: bytes, native: "bool | None") -> tuple:
    """(a function ``(iv, data) -> data XOR the AES-CTR key stream`` under ``key``, whether
    it is the firmware's CTR) over MicroPython's ``cryptolib``: the firmware's CTR where it
    has one (a fresh object per call: a cryptolib CTR object keeps its counter), else
    ``ctr_crypt`` over one ECB object. ``native``: whether the firmware's CTR works, None
    to find out (``native_ctr``)."""
    import cryptolib  # type: ignore[import-not-found,unused-ignore]

    if native is None:
        native = native_ctr()
    if native:
        def native_stream(iv: bytes, data: bytes) -> bytes:
            if len(iv) != 16:
                raise LocalProtocolError("AES-CTR needs a 16-byte IV")
            return cryptolib.aes(key, _MODE_CTR, bytes(iv)).encrypt(bytes(data)) if len(data) else b""

        return native_stream, True
    ecb = cryptolib.aes(key, _MODE_ECB).encrypt

    def portable(iv: bytes, data: bytes) -> bytes:
        return ctr_crypt(ecb, iv, data)

    return portable, False


def native_ctr() -> bool:
    """True when this firmware's ``cryptolib`` has a CTR mode (MICROPY_PY_CRYPTOLIB_CTR)
    that agrees with ``ctr_crypt`` on a block boundary and a partial block."""
    import cryptolib  # type: ignore[import-not-found,unused-ignore]

    key, iv, data = bytes(range(32)), b"\xff" * 15 + b"\xfe", bytes(range(40))
    try:
        got = cryptolib.aes(key, _MODE_CTR, iv).encrypt(data)
    except (ValueError, OSError):  # "mode": built without CTR
        return False
    return got == ctr_crypt(cryptolib.aes(key, _MODE_ECB).encrypt, iv, data)
