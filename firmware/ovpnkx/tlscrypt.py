"""tls-crypt and tls-crypt-v2 protection of control packets (OpenVPN's tls_crypt.c).

tls-crypt authenticates *and* encrypts every control packet, SIV-like::

    header = op|key_id (1) | session_id (8) | packet-id (4) | time (4)
    tag    = HMAC-SHA256(Ka, header || rest)      rest = the plain packet after the session_id
    wire   = header | tag (32) | AES-256-CTR(Ke, IV = tag[:16], rest)

The key (``openvpn --genkey secret``) holds two {cipher[64], hmac[64]} halves.
The server sends with half 0 and receives with half 1, the client the reverse
(tls-crypt has no key-direction); Ke and Ka are the first 32 bytes of a half's
cipher and hmac parts. Received packet-ids pass tls-auth's replay window.

tls-crypt-v2 gives every client its own such key Kc. The client's key file holds
Kc (256 bytes) and WKc, Kc wrapped with the server key (128 bytes: Ke = its first
32 bytes, Ka = bytes 64..95)::

    WKc = T (32) | AES-256-CTR(Ke, IV = T[:16], Kc || metadata) | len (u16: all of WKc)
    T   = HMAC-SHA256(Ka, len || Kc || metadata)

metadata is a type byte (0 user data, 1 a 64-bit creation time) and its value.
The client appends WKc to its P_CONTROL_HARD_RESET_CLIENT_V3, and to the
P_CONTROL_WKC_V1 that a 2.6 server's stateless reply asks for; the server reads
WKc's length from the packet's last two bytes, unwraps it, checks T and then
unwraps the packet with Kc. A v2 client starts its packet-ids at EARLY_NEG_START:
that tells a 2.6 server it can resend WKc, so the server may answer statelessly.

Same interface as ``tlswrap.TlsAuth``: ``wrap(plain, now_ms)``, ``unwrap(wire,
now_ms)``, ``overhead``. Failures raise RemoteProtocolError (the session drops
and counts the packet) and leave the replay state as it was. The server side of
tls-crypt-v2 (server key, WKc unwrapping) is in ``tlscrypt_server``.
"""

import binascii
import struct

from . import packet as pk
from ._compat import TYPE_CHECKING, const
from .digest import Hmac, compare_digest
from .errors import LocalProtocolError, RemoteProtocolError
from .tlswrap import PacketIdRec, refuse_v2

if TYPE_CHECKING:
    from typing import Any

_OP_SID = const(9)  # op|key_id + session_id
_OFF_TAG = const(17)  # + packet-id + time
_OFF_CT = const(49)  # + tag
_TAG_LEN = const(32)
_PACKET_ID_MAX = const(0xFFFFFFFF)
OVERHEAD = const(40)  # packet-id, time and tag
KEY_LEN = const(256)
CLIENT_KEY_LEN = const(256)  # Kc
SERVER_KEY_LEN = const(128)
WKC_MAX = const(1024)  # TLS_CRYPT_V2_MAX_WKC_LEN
_WKC_MIN = const(34 + 256)  # tag + Kc + length
METADATA_MAX = WKC_MAX - CLIENT_KEY_LEN - _TAG_LEN - 2
METADATA_TYPE_USER = const(0)
METADATA_TYPE_TIMESTAMP = const(1)

CLIENT_PEM = "OpenVPN tls-crypt-v2 client key"
SERVER_PEM = "OpenVPN tls-crypt-v2 server key"
_MAKE = {CLIENT_PEM: "a client key is made by: openvpn --tls-crypt-v2 SERVER_KEY --genkey tls-crypt-v2-client FILE",
         SERVER_PEM: "a server key is made by: openvpn --genkey tls-crypt-v2-server FILE"}
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def pem_decode(text: "str | bytes", label: str, other: str, what: str) -> bytes:
    """The bytes between ``-----BEGIN label-----`` and ``-----END label-----`` (``other``:
    the label of the key a user may have given instead; ``what`` names it in errors)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise LocalProtocolError("%s: not text" % what)
    lines = [ln.strip() for ln in text.split("\n")]
    begin, end = "-----BEGIN %s-----" % label, "-----END %s-----" % label
    if begin not in lines:
        if "-----BEGIN %s-----" % other in lines:
            raise LocalProtocolError("%s: this is an %s (%s)" % (what, other, _MAKE[label]))
        raise LocalProtocolError("%s: missing '%s' line" % (what, begin))
    start = lines.index(begin) + 1
    if end not in lines[start:]:
        raise LocalProtocolError("%s: missing '%s' line" % (what, end))
    b64 = "".join(lines[start:lines.index(end, start)]).encode()
    for c in b64:
        if c not in _B64:
            raise LocalProtocolError("%s: invalid base64 character %r" % (what, chr(c)))
    try:
        return binascii.a2b_base64(b64)
    except ValueError:
        raise LocalProtocolError("%s: invalid base64" % what)


def parse_v2_client_key(text: "str | bytes") -> tuple:
    """(Kc, WKc) of an ``openvpn --genkey tls-crypt-v2-client`` key file."""
    what = "tls-crypt-v2 client key"
    raw = pem_decode(text, CLIENT_PEM, SERVER_PEM, what)
    kc, wkc = raw[:CLIENT_KEY_LEN], raw[CLIENT_KEY_LEN:]
    if len(wkc) < _WKC_MIN or len(wkc) > WKC_MAX:
        raise LocalProtocolError("%s: %d bytes, expected %d..%d (key and wrapped key)"
                                 % (what, len(raw), CLIENT_KEY_LEN + _WKC_MIN, CLIENT_KEY_LEN + WKC_MAX))
    if struct.unpack(">H", wkc[-2:])[0] != len(wkc):
        raise LocalProtocolError("%s: the wrapped key's length field says %d bytes, it has %d"
                                 % (what, struct.unpack(">H", wkc[-2:])[0], len(wkc)))
    return kc, wkc


class TlsCrypt:
    """tls-crypt with one 256-byte key (the static key, or a tls-crypt-v2 client key Kc).

    ``is_server`` picks the halves (server: send 0, receive 1). On a tls-crypt-v2
    client, ``wkc`` is the wrapped key that rides on V3 resets and WKC_V1 packets,
    and packet-ids start after EARLY_NEG_START. ``crypto`` is the runtime's
    backend (its ``ctr_encryptor``). ``overhead`` is what ``wrap`` adds (WKc aside).
    """

    overhead = OVERHEAD

    def __init__(self, key: bytes, is_server: bool, crypto: "Any", replay_window: int = 64,
                 replay_time: int = 15, wkc: "bytes | None" = None) -> None:
        if len(key) != KEY_LEN:
            raise LocalProtocolError("tls-crypt key must be %d bytes, got %d" % (KEY_LEN, len(key)))
        out = 0 if is_server else 1
        inn = 1 - out
        self._enc = crypto.ctr_encryptor(key[out * 128:out * 128 + 32])
        self._enc_mac = Hmac("SHA256", key[out * 128 + 64:out * 128 + 96])
        self._dec = crypto.ctr_encryptor(key[inn * 128:inn * 128 + 32])
        self._dec_mac = Hmac("SHA256", key[inn * 128 + 64:inn * 128 + 96])
        self.wkc = wkc
        self.name = "tls-crypt-v2" if wkc is not None else "tls-crypt"
        self._send_id = pk.EARLY_NEG_START if wkc is not None else 0
        self._send_time = 0
        self._rec = PacketIdRec(replay_window, replay_time)

    def _next_pid(self, now_ms: int) -> bytes:
        if self._send_time == 0:
            self._send_time = (now_ms // 1000) & 0xFFFFFFFF
        if self._send_id == _PACKET_ID_MAX:
            # long form may roll over only once time has moved on (packet_id_send_update)
            now_s = (now_ms // 1000) & 0xFFFFFFFF
            if now_s <= self._send_time:
                raise LocalProtocolError("tls-crypt packet-id exhausted")
            self._send_time = now_s
            self._send_id = 0
        self._send_id += 1
        return struct.pack(">II", self._send_id, self._send_time)

    def wrap(self, plain: bytes, now_ms: int) -> bytes:
        """Encrypt and authenticate ``plain``; append WKc to a v2 client's V3 and WKC_V1."""
        if len(plain) < _OP_SID:
            raise LocalProtocolError("control packet shorter than op + session_id")
        header = bytes(plain[:_OP_SID]) + self._next_pid(now_ms)
        rest = bytes(plain[_OP_SID:])
        tag = self._enc_mac.digest(header, rest)
        wire = header + tag + self._enc(tag[:16], rest)
        op = plain[0] >> 3
        if op == pk.P_CONTROL_HARD_RESET_CLIENT_V3 or op == pk.P_CONTROL_WKC_V1:
            if self.wkc is None:
                raise LocalProtocolError("%s needs a tls-crypt-v2 client key" % pk.OPCODE_NAMES[op])
            wire += self.wkc
        return wire

    def unwrap(self, wire: bytes, now_ms: int) -> bytes:
        """Decrypt, authenticate and replay-check; return the plain packet.

        Raises RemoteProtocolError (replay state unchanged) if the packet is
        short, fails authentication, is a replay, or carries a WKc (only a
        tls-crypt-v2 server reads those).
        """
        refuse_v2(wire)
        return self.unwrap_plain(wire, now_ms)

    def unwrap_plain(self, wire: bytes, now_ms: int) -> bytes:
        """``unwrap`` of a packet whose WKc (if any) is already cut off."""
        if len(wire) < _OFF_CT:
            raise RemoteProtocolError("TLS Error: tls-crypt unwrapping failed: packet too short (%d bytes)"
                                      % len(wire))
        mv = memoryview(wire)
        tag = bytes(mv[_OFF_TAG:_OFF_CT])
        rest = self._dec(tag[:16], bytes(mv[_OFF_CT:]))
        if not compare_digest(tag, self._dec_mac.digest(mv[:_OFF_TAG], rest)):
            raise RemoteProtocolError("TLS Error: tls-crypt unwrapping failed: packet authentication failed")
        packet_id, ptime = struct.unpack(">II", bytes(mv[_OP_SID:_OFF_TAG]))
        now_s = now_ms // 1000
        if not self._rec.test(packet_id, ptime, now_s):
            raise RemoteProtocolError("TLS Error: tls-crypt unwrapping failed: packet replay (#%d / time %d)"
                                      % (packet_id, ptime))
        self._rec.add(packet_id, ptime, now_s)
        return bytes(mv[:_OP_SID]) + rest


def make_wrap_factory(cfg: "Any", is_server: bool, crypto: "Any", replay_window: int = 64,
                      replay_time: int = 15) -> "Any":
    """A function returning a fresh tls-crypt(-v2) wrapper for ``cfg`` (keys parsed once).

    ``cfg.tls_crypt``: static key text; ``cfg.tls_crypt_v2``: the client key text
    on a client, the server key text on a server. LocalProtocolError for a bad key.
    """
    if getattr(cfg, "tls_crypt_v2", None):
        if is_server:
            from .tlscrypt_server import TlsCryptV2Server, TlsCryptV2ServerKey, parse_v2_server_key

            server_key = TlsCryptV2ServerKey(parse_v2_server_key(cfg.tls_crypt_v2), crypto)
            return lambda: TlsCryptV2Server(server_key, replay_window, replay_time)
        kc, wkc = parse_v2_client_key(cfg.tls_crypt_v2)
        return lambda: TlsCrypt(kc, False, crypto, replay_window, replay_time, wkc)
    from .wrapconfig import parse_static_key  # here: a board unloads wrapconfig once set up

    key = parse_static_key(cfg.tls_crypt)
    return lambda: TlsCrypt(key, is_server, crypto, replay_window, replay_time)
