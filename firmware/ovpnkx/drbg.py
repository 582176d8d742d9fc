"""HMAC_DRBG with SHA-256, as NIST SP 800-90A Rev. 1 §10.1.2 defines it.

No prediction resistance and no derivation function (HMAC_DRBG has none).
Security strength 256 bits: entropy input at least 32 bytes, nonce at least
16 bytes. The DRBG keeps only (Key, V, reseed_counter); everything that feeds
it comes in from the caller (see ``ovpnkx.entropy``).
"""

from ._compat import const
from .digest import Hmac
from .errors import LocalProtocolError

_OUTLEN = const(32)
_MIN_ENTROPY = const(32)  # security strength 256 bits
_MIN_NONCE = const(16)  # half the security strength
_MAX_REQUEST = const(65536)  # 2^19 bits per generate call (SP 800-90A Table 2)
MAX_RESEED_INTERVAL = 1 << 48  # SP 800-90A Table 2 for HMAC_DRBG


class ReseedRequired(LocalProtocolError):
    """The DRBG has answered ``reseed_interval`` requests since its last seed.

    SP 800-90A §9.3.1 step 7: generation stops until fresh entropy comes in.
    """


class HmacDrbg:
    """HMAC_DRBG (SHA-256), instantiated from ``entropy_input || nonce || personalization``.

    ``generate(n)`` returns n bytes; after ``reseed_interval`` calls it raises
    ``ReseedRequired`` until ``reseed()`` is called.
    """

    def __init__(self, entropy_input: bytes, nonce: bytes, personalization: bytes = b"",
                 reseed_interval: int = MAX_RESEED_INTERVAL) -> None:
        if len(entropy_input) < _MIN_ENTROPY:
            raise LocalProtocolError("HMAC_DRBG entropy input must be at least %d bytes" % _MIN_ENTROPY)
        if len(nonce) < _MIN_NONCE:
            raise LocalProtocolError("HMAC_DRBG nonce must be at least %d bytes" % _MIN_NONCE)
        if not 1 <= reseed_interval <= MAX_RESEED_INTERVAL:
            raise LocalProtocolError("HMAC_DRBG reseed interval out of range")
        self.reseed_interval = reseed_interval
        self._key = bytes(_OUTLEN)  # type: bytes | None
        self._v = b"\x01" * _OUTLEN  # type: bytes | None
        self._update(bytes(entropy_input) + bytes(nonce) + bytes(personalization))
        self.reseed_counter = 1

    def _update(self, provided: bytes) -> tuple:
        # SP 800-90A §10.1.2.2: the second round only when data was provided.
        old_key = self._key
        old_v = self._v
        if old_key is None or old_v is None:
            raise LocalProtocolError("HMAC_DRBG was cleared")
        key = Hmac("SHA256", old_key).digest(old_v, b"\x00", provided)
        v = Hmac("SHA256", key).digest(old_v)
        if provided:
            key = Hmac("SHA256", key).digest(v, b"\x01", provided)
            v = Hmac("SHA256", key).digest(v)
        self._key = key
        self._v = v
        return key, v

    @property
    def reseed_required(self) -> bool:
        """True when the next ``generate`` would raise ``ReseedRequired``."""
        return self.reseed_counter > self.reseed_interval

    def reseed(self, entropy_input: bytes, additional_input: bytes = b"") -> None:
        """Mix in fresh entropy (§10.1.2.4) and reset the reseed counter."""
        if self._key is None:
            raise LocalProtocolError("HMAC_DRBG was cleared")
        if len(entropy_input) < _MIN_ENTROPY:
            raise LocalProtocolError("HMAC_DRBG entropy input must be at least %d bytes" % _MIN_ENTROPY)
        self._update(bytes(entropy_input) + bytes(additional_input))
        self.reseed_counter = 1

    def generate(self, n: int, additional_input: bytes = b"") -> bytes:
        """Return ``n`` pseudorandom bytes (§10.1.2.5)."""
        key = self._key
        v = self._v
        if key is None or v is None:
            raise LocalProtocolError("HMAC_DRBG was cleared")
        if not isinstance(n, int) or n < 0 or n > _MAX_REQUEST:
            raise LocalProtocolError("HMAC_DRBG request must be 0..%d bytes" % _MAX_REQUEST)
        if self.reseed_counter > self.reseed_interval:
            raise ReseedRequired("HMAC_DRBG reseed required after %d requests" % self.reseed_interval)
        additional_input = bytes(additional_input)
        if additional_input:
            key, v = self._update(additional_input)
        mac = Hmac("SHA256", key)
        out = bytearray()
        while len(out) < n:
            v = mac.digest(v)
            out.extend(v)
        self._v = v
        self._update(additional_input)
        self.reseed_counter += 1
        return bytes(out[:n])

    def clear(self) -> None:
        """Forget the internal state (uninstantiate, §9.4)."""
        self._key = None
        self._v = None

    def snapshot(self) -> tuple:
        """The internal state as plain values, for ``restore``."""
        return self._key, self._v, self.reseed_counter, self.reseed_interval


def restore(snapshot: tuple) -> HmacDrbg:
    """The DRBG whose state ``HmacDrbg.snapshot`` returned: it goes on where that one stopped
    (a board keeps the state alone between draws, so that this code can leave its heap)."""
    drbg = object.__new__(HmacDrbg)  # not instantiated again: the state is the whole DRBG
    drbg._key, drbg._v, drbg.reseed_counter, drbg.reseed_interval = snapshot
    return drbg
