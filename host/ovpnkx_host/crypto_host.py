"""The CPython crypto backend of the core, on ``cryptography`` (OpenSSL).

Same interface as ``ovpnkx.crypto_mp.MicroPythonCrypto``; chosen explicitly by
the caller, never as a fall-back.
"""

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

# cipher name -> key length
_AEAD = {"AES-128-GCM": 16, "AES-192-GCM": 24, "AES-256-GCM": 32, "CHACHA20-POLY1305": 32}
_CBC = {"AES-128-CBC": 16, "AES-192-CBC": 24, "AES-256-CBC": 32}


def _check_key(table: dict, cipher: str, key: bytes) -> None:
    if cipher not in table:
        raise LocalProtocolError("cipher %s is not supported by this backend" % cipher)
    if len(key) != table[cipher]:
        raise LocalProtocolError("%s needs a %d-byte key" % (cipher, table[cipher]))


class _Aead:
    def __init__(self, impl) -> None:
        self._impl = impl

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """ciphertext || tag(16)."""
        return self._impl.encrypt(bytes(nonce), bytes(plaintext), bytes(aad))

    def open(self, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        """Plaintext of ciphertext || tag(16); RemoteProtocolError on a bad tag."""
        if len(data) < 16:
            raise RemoteProtocolError("AEAD input shorter than its tag")
        try:
            return self._impl.decrypt(bytes(nonce), bytes(data), bytes(aad))
        except InvalidTag:
            raise RemoteProtocolError("AEAD tag mismatch")


class HostCrypto:
    """AES-GCM, ChaCha20-Poly1305, AES-CBC, AES-CTR and AES-ECB from ``cryptography``."""

    name = "cryptography"

    def supports(self, cipher: str) -> bool:
        """True when ``cipher`` (an OpenVPN cipher name) is available."""
        return cipher in _AEAD or cipher in _CBC

    def aead(self, cipher: str, key: bytes) -> _Aead:
        """An AEAD object with ``seal(nonce, pt, aad)`` and ``open(nonce, ct_tag, aad)``."""
        _check_key(_AEAD, cipher, key)
        impl = ChaCha20Poly1305(bytes(key)) if cipher == "CHACHA20-POLY1305" else AESGCM(bytes(key))
        return _Aead(impl)

    def cbc_encrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes:
        """AES-CBC without padding; ``data`` is a multiple of 16 bytes."""
        if len(data) % 16 or len(iv) != 16:
            raise LocalProtocolError("CBC needs whole blocks and a 16-byte IV")
        enc = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv))).encryptor()
        return enc.update(bytes(data)) + enc.finalize()

    def cbc_decrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes:
        """AES-CBC decryption without padding removal."""
        if len(data) % 16 or len(iv) != 16:
            raise LocalProtocolError("CBC needs whole blocks and a 16-byte IV")
        dec = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv))).decryptor()
        return dec.update(bytes(data)) + dec.finalize()

    def ecb_encryptor(self, key: bytes):
        """A function encrypting whole 16-byte blocks in ECB mode under ``key``."""
        enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

        def ecb(data: bytes) -> bytes:
            return enc.update(bytes(data))

        return ecb

    def ctr_encryptor(self, key: bytes):
        """A function ``(iv, data) -> data XOR the AES-CTR key stream`` under ``key``."""
        if len(key) not in (16, 24, 32):
            raise LocalProtocolError("AES key must be 16, 24 or 32 bytes")
        algo = algorithms.AES(bytes(key))

        def ctr(iv: bytes, data: bytes) -> bytes:
            if len(iv) != 16:
                raise LocalProtocolError("AES-CTR needs a 16-byte IV")
            enc = Cipher(algo, modes.CTR(bytes(iv))).encryptor()
            return enc.update(bytes(data)) + enc.finalize()

        return ctr
