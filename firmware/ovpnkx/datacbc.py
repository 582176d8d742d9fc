"""CBC + HMAC data-channel packets (OpenVPN 2.6 crypto.c, openvpn_encrypt_v1): the
half of ``ovpnkx.datachannel`` that only a CBC cipher needs.

``hdr | HMAC | IV(16) | CBC(PKCS#7(packet-id(4) || payload))``; the HMAC covers
IV || ciphertext, not the header. Loaded by a ``DataChannel`` with a CBC cipher
only: an AEAD (GCM) session never has this code, nor ``ovpnkx.digest`` for it, in
a board's heap.

IVs: OpenVPN draws them at random. This core draws no randomness, so the IV is the
block cipher under the same key applied to a unique nonce (the packet-id), the IV
construction recommended by NIST SP 800-38A appendix C; it is unpredictable without
the key, and the receiver treats it as any IV.
"""

from . import digest
from ._compat import TYPE_CHECKING, const
from .datachannel import _key_bytes
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any

_BLOCK = const(16)
_IV_NONCE = b"ovpnkx-cbc-"  # 11 bytes + 0x00 + packet-id(4) = one block
_ERR = "Authenticate/Decrypt packet error: "


class CbcHmac:
    """One DataChannel's CBC cipher and HMAC-``auth`` (both directions)."""

    def __init__(self, dc: "Any", crypto: "Any", auth: str, encrypt_key: "Any", decrypt_key: "Any",
                 key_len: int) -> None:
        size = digest.digest_size(auth)
        self._dc = dc  # its header and its replay window
        self._crypto = crypto
        self._hmac_len = size
        self._enc_key = _key_bytes(encrypt_key, "cipher", key_len)
        self._dec_key = _key_bytes(decrypt_key, "cipher", key_len)
        self._iv_ecb = crypto.ecb_encryptor(self._enc_key)
        self._enc_mac = digest.Hmac(auth, _key_bytes(encrypt_key, "hmac", size))
        self._dec_mac = digest.Hmac(auth, _key_bytes(decrypt_key, "hmac", size))

    def seal(self, pid: bytes, payload: bytes) -> bytes:
        """The whole packet carrying ``payload`` with packet-id ``pid`` (4 bytes)."""
        plain = pid + bytes(payload)
        pad = _BLOCK - len(plain) % _BLOCK
        iv = self._iv_ecb(_IV_NONCE + b"\x00" + pid)
        ct = self._crypto.cbc_encrypt(self._enc_key, iv, plain + bytes((pad,)) * pad)
        return b"".join((self._dc._hdr, self._enc_mac.digest(iv, ct), iv, ct))

    def open(self, packet: bytes, hlen: int) -> tuple:
        """(payload, packet-id) of a packet whose header is ``hlen`` bytes; RemoteProtocolError
        (OpenVPN's wording) if it is refused, a replay included."""
        mlen = self._hmac_len
        if len(packet) - hlen < mlen:
            raise RemoteProtocolError(_ERR + "missing authentication info (short packet)")
        start = hlen + mlen
        body = packet[start:]
        if not digest.compare_digest(self._dec_mac.digest(body), packet[hlen:start]):
            raise RemoteProtocolError(_ERR + "packet HMAC authentication failed")
        if len(body) < _BLOCK:
            raise RemoteProtocolError(_ERR + "missing IV info (short packet)")
        ct = body[_BLOCK:]
        if not ct:
            raise RemoteProtocolError(_ERR + "missing payload (short packet)")
        if len(ct) % _BLOCK:
            raise RemoteProtocolError(_ERR + "cipher final failed (not whole blocks)")
        plain = self._crypto.cbc_decrypt(self._dec_key, body[:_BLOCK], ct)
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes((pad,)) * pad:
            raise RemoteProtocolError(_ERR + "cipher final failed (bad padding)")
        plain = plain[:-pad]
        if len(plain) < 4:
            raise RemoteProtocolError(_ERR + "error reading CBC packet-id")
        pid = int.from_bytes(plain[:4], "big")
        self._dc._replay_test(pid, _ERR)
        return plain[4:], pid
