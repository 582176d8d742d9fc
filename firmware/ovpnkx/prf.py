"""The TLS 1.0 PRF, OpenVPN's key expansion and the key2 split (ssl.c, crypto.h).

OpenVPN derives data-channel keys with the TLS 1.0 PRF (RFC 2246 section 5)
unless both peers negotiate tls-ekm, in which case the 256 bytes come from the
TLS exporter (label ``EKM_LABEL``) and only ``key2_split`` applies. The
microcontroller TLS stacks have no exporter, so the board always uses the PRF.
"""

from ._compat import TYPE_CHECKING, const
from .digest import Hmac
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Any

EKM_LABEL = b"EXPORTER-OpenVPN-datakeys"
KEY2_LEN = 256

_MAX_CIPHER_KEY_LENGTH = const(64)  # struct key: cipher[MAX_CIPHER_KEY_LENGTH]
_MAX_HMAC_KEY_LENGTH = const(64)  # struct key: hmac[MAX_HMAC_KEY_LENGTH]
_IMPLICIT_IV_LEN = const(8)  # AEAD: IV = packet-id(4) || implicit IV(8)
_PRE_MASTER_LEN = const(48)
_RANDOM_LEN = const(32)
_SID_LEN = const(8)
_MASTER_LEN = const(48)

_MASTER_LABEL = b"OpenVPN master secret"
_EXPANSION_LABEL = b"OpenVPN key expansion"


def _p_hash(name: str, secret: bytes, seed: bytes, n: int) -> bytearray:
    """P_<hash>(secret, seed) of RFC 2246 section 5, ``n`` bytes."""
    h = Hmac(name, secret)  # one object per key: the key pads are computed once
    out = bytearray()
    a = seed  # A(0)
    while len(out) < n:
        a = h.digest(a)  # A(i) = HMAC(secret, A(i-1))
        out.extend(h.digest(a, seed))
    return out


def tls1_prf(secret: bytes, seed: bytes, n: int) -> bytes:
    """TLS 1.0 PRF: P_MD5(S1, seed) XOR P_SHA1(S2, seed), ``n`` bytes.

    S1 is the first and S2 the last ceil(len(secret)/2) bytes of ``secret``;
    for an odd length they share the middle byte. As in OpenVPN's
    ``ssl_tls1_PRF`` the label is already part of ``seed``.
    """
    if not isinstance(n, int) or n < 0:
        raise LocalProtocolError("tls1_prf: output length must be a non-negative int")
    secret = bytes(secret)
    seed = bytes(seed)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("MD5", secret[:half], seed, n)
    sha1 = _p_hash("SHA1", secret[len(secret) - half:], seed, n)
    for i in range(n):
        md5[i] ^= sha1[i]
    return bytes(md5[:n])


def _check_len(what: str, value: bytes, n: int) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != n:
        raise LocalProtocolError("%s must be %d bytes" % (what, n))
    return bytes(value)


def openvpn_key_expansion(pre_master: bytes, client_random1: bytes, client_random2: bytes,
                          server_random1: bytes, server_random2: bytes,
                          client_session_id: bytes, server_session_id: bytes) -> bytes:
    """The 256-byte key2 of OpenVPN's PRF key derivation (ssl.c generate_key_expansion).

    master = PRF(pre_master, "OpenVPN master secret" || c.random1 || s.random1, 48)
    key2   = PRF(master, "OpenVPN key expansion" || c.random2 || s.random2 || c.sid || s.sid, 256)
    """
    pm = _check_len("pre_master", pre_master, _PRE_MASTER_LEN)
    cr1 = _check_len("client random1", client_random1, _RANDOM_LEN)
    cr2 = _check_len("client random2", client_random2, _RANDOM_LEN)
    sr1 = _check_len("server random1", server_random1, _RANDOM_LEN)
    sr2 = _check_len("server random2", server_random2, _RANDOM_LEN)
    csid = _check_len("client session id", client_session_id, _SID_LEN)
    ssid = _check_len("server session id", server_session_id, _SID_LEN)
    master = tls1_prf(pm, _MASTER_LABEL + cr1 + sr1, _MASTER_LEN)
    return tls1_prf(master, _EXPANSION_LABEL + cr2 + sr2 + csid + ssid, KEY2_LEN)


class KeyDirection:
    """One direction's keys, OpenVPN's ``struct key``: ``cipher`` and ``hmac``, 64 bytes each."""

    def __init__(self, cipher: bytes, hmac: bytes) -> None:
        self.cipher = _check_len("key cipher part", cipher, _MAX_CIPHER_KEY_LENGTH)
        self.hmac = _check_len("key hmac part", hmac, _MAX_HMAC_KEY_LENGTH)

    def cipher_key(self, n: int) -> bytes:
        """The cipher key: the first ``n`` bytes of ``.cipher`` (n = the cipher's key length)."""
        if not 0 <= n <= _MAX_CIPHER_KEY_LENGTH:
            raise LocalProtocolError("cipher key length %d is out of range" % n)
        return self.cipher[:n]

    def hmac_key(self, n: int) -> bytes:
        """The HMAC key: the first ``n`` bytes of ``.hmac`` (n = the digest size)."""
        if not 0 <= n <= _MAX_HMAC_KEY_LENGTH:
            raise LocalProtocolError("hmac key length %d is out of range" % n)
        return self.hmac[:n]

    def implicit_iv(self) -> bytes:
        """The AEAD implicit IV: the first 8 bytes of ``.hmac``."""
        return self.hmac[:_IMPLICIT_IV_LEN]

    def __repr__(self) -> str:
        return "<KeyDirection (key material not shown)>"


def key2_split(key2: bytes, is_server: bool) -> tuple:
    """Split key2 into ``(encrypt, decrypt)`` KeyDirections for our role.

    keys[0] = bytes 0..127 and keys[1] = 128..255, each {cipher 64, hmac 64};
    the client encrypts with keys[0] and decrypts with keys[1], the server the
    reverse (OpenVPN's key_direction_state for KEY_DIRECTION_BIDIRECTIONAL).
    """
    k = _check_len("key2", key2, KEY2_LEN)
    keys0 = KeyDirection(k[0:64], k[64:128])
    keys1 = KeyDirection(k[128:192], k[192:256])
    if is_server:
        return (keys1, keys0)
    return (keys0, keys1)


def session_key2(session: "Any", channel: "Any") -> tuple:
    """(key2, method, encrypt keys, decrypt keys) of ``session``'s key_state ``channel``
    once its key method 2 exchange is complete: exported by TLS when both sides negotiated
    tls-ekm, else expanded from both sides' key sources (ssl.c generate_key_expansion).
    Here rather than in ``ovpnkx.session`` so that a board loads this code when keys are due,
    not through the TLS handshake."""
    is_server = session.is_server
    if session.negotiation.tls_ekm:
        key2 = channel.tls.export_keying_material(EKM_LABEL, KEY2_LEN)
        method = "tls-ekm"
    else:
        ours, theirs = session.multi.key_sources[channel.key_id], channel.peer_km2.key_source
        client, server = (theirs, ours) if is_server else (ours, theirs)
        remote = session.remote_session_id or b""  # set by the peer's reset, before any key
        client_sid, server_sid = (remote, session.session_id) if is_server else (session.session_id, remote)
        key2 = openvpn_key_expansion(client.pre_master, client.random1, client.random2,
                                     server.random1, server.random2, client_sid, server_sid)
        method = "prf"
    encrypt, decrypt = key2_split(key2, is_server)
    return key2, method, encrypt, decrypt
