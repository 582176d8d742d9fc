"""The MicroPython crypto backend of the core: ``cryptolib`` AES plus ``gcm``.

``cryptolib.aes`` gives AES-128/256 in ECB (mode 1) and CBC (mode 2); CTR (mode 6)
only where the firmware was built with ``MICROPY_PY_CRYPTOLIB_CTR`` (not the stock
rp2 or unix builds). AES-GCM is built over ECB in ``ovpnkx.gcm``, and AES-CTR (for
tls-crypt) over ECB in ``ovpnkx.ctr`` where the firmware has no CTR.
ChaCha20-Poly1305 is not offered here.
Same interface as ``ovpnkx_host.crypto_host.HostCrypto``.
"""

import cryptolib  # type: ignore[import-not-found,unused-ignore]

from ._compat import TYPE_CHECKING
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from .gcm import AesGcm

_MODE_ECB = 1
_MODE_CBC = 2

# cipher name -> key length (cryptolib refuses 24-byte keys)
_AEAD = {"AES-128-GCM": 16, "AES-256-GCM": 32}
_CBC = {"AES-128-CBC": 16, "AES-256-CBC": 32}


def _check_key(table: dict, cipher: str, key: bytes) -> None:
    if cipher not in table:
        raise LocalProtocolError("cipher %s is not supported by this backend" % cipher)
    if len(key) != table[cipher]:
        raise LocalProtocolError("%s needs a %d-byte key" % (cipher, table[cipher]))


def _check_cbc(key: bytes, iv: bytes, data: bytes) -> None:
    if len(key) not in (16, 32):
        raise LocalProtocolError("AES key must be 16 or 32 bytes")
    if len(data) % 16 or len(iv) != 16:
        raise LocalProtocolError("CBC needs whole blocks and a 16-byte IV")


class MicroPythonCrypto:
    """AES-GCM and AES-CTR (Python over cryptolib ECB), AES-CBC and AES-ECB from ``cryptolib``.

    ``compact_gcm=True`` uses the small GHASH table (about 0.6 KB per key instead
    of 8 KB; slower), for boards whose heap is tight.
    """

    name = "micropython-cryptolib"

    def __init__(self, compact_gcm: bool = False) -> None:
        self.compact_gcm = compact_gcm
        self.ctr_native = None  # type: bool | None  # decided at the first ctr_encryptor

    def supports(self, cipher: str) -> bool:
        """True when ``cipher`` (an OpenVPN cipher name) is available."""
        return cipher in _AEAD or cipher in _CBC

    def aead(self, cipher: str, key: bytes) -> "AesGcm":
        """An AEAD object with ``seal(nonce, pt, aad)`` and ``open(nonce, ct_tag, aad)``."""
        _check_key(_AEAD, cipher, key)
        # loaded with the first data key, not before: off a board's heap during the TLS handshake
        from .gcm import AesGcm

        return AesGcm(cryptolib.aes(bytes(key), _MODE_ECB).encrypt, self.compact_gcm)

    def cbc_encrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes:
        """AES-CBC without padding; ``data`` is a multiple of 16 bytes."""
        _check_cbc(key, iv, data)
        # a cryptolib CBC object chains across calls: one object per message
        return cryptolib.aes(bytes(key), _MODE_CBC, bytes(iv)).encrypt(bytes(data))

    def cbc_decrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes:
        """AES-CBC decryption without padding removal."""
        _check_cbc(key, iv, data)
        return cryptolib.aes(bytes(key), _MODE_CBC, bytes(iv)).decrypt(bytes(data))

    def ecb_encryptor(self, key: bytes):
        """A function encrypting whole 16-byte blocks in ECB mode under ``key``."""
        if len(key) not in (16, 32):
            raise LocalProtocolError("AES key must be 16 or 32 bytes")
        return cryptolib.aes(bytes(key), _MODE_ECB).encrypt

    def ctr_encryptor(self, key: bytes):
        """A function ``(iv, data) -> data XOR the AES-CTR key stream`` under ``key``
        (tls-crypt): ``ovpnkx.ctr.cryptolib_ctr``, loaded for tls-crypt only."""
        if len(key) not in (16, 32):
            raise LocalProtocolError("AES key must be 16 or 32 bytes")
        from .ctr import cryptolib_ctr

        func, self.ctr_native = cryptolib_ctr(bytes(key), self.ctr_native)
        return func
