"""The 2.6 UDP server's stateless reset reply (HMAC session-id cookie).

A UDP server must not create state for every packet claiming to be a client's
reset (spoofed sources would exhaust it). So it answers the reset without
remembering it: its session_id is an HMAC over a time bucket, the client's
address and the client's session_id. Only the client's next packet — key_id 0,
acking msg packet-id 0, naming that session_id as its peer, msg packet-id 1 —
proves the address, and only then does the server create the session (which
starts with ``Session(..., cookie=(server_sid, client_sid))``).

tls-crypt-v2: a 2.6 client's P_CONTROL_HARD_RESET_CLIENT_V3 (its packet-id
announces early negotiation) gets the same stateless reply, under the client's
own key and with the EARLY_NEG_FLAG_RESEND_WKC TLV; its next packet is then a
P_CONTROL_WKC_V1 that carries the wrapped key again. An older client's V3 gets a
session at once (``stateless_reset`` says which).
"""

import struct

from . import packet as pk
from ._compat import TYPE_CHECKING
from .digest import Hmac
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any


_RESEND_WKC_TLV = b"\x00\x01\x00\x02\x00\x01"  # TLV_TYPE_EARLY_NEG_FLAGS: EARLY_NEG_FLAG_RESEND_WKC


def stateless_reset(data: bytes) -> bool:
    """Whether a client reset is answered statelessly: every V2 reset, and a V3 whose
    tls-crypt packet-id (bytes 9..12) has EARLY_NEG_START's bits in its top byte
    (mudp.c: ``(id & EARLY_NEG_MASK) & EARLY_NEG_START == EARLY_NEG_START``)."""
    op = data[0] >> 3 if len(data) else 0
    if op != pk.P_CONTROL_HARD_RESET_CLIENT_V3:
        return op == pk.P_CONTROL_HARD_RESET_CLIENT_V2
    top = pk.EARLY_NEG_START >> 24
    return len(data) >= 13 and data[9] & top == top


class CookieResponder:
    """Answers client resets statelessly and checks the cookie on the next packet.

    ``secret`` is random (from the entropy source), ``wrap_factory()`` makes a
    fresh tls-auth wrapper (or ``TlsPlain``); ``sender`` wraps every stateless
    reply, so sessions continue its packet-ids. Cookies stay valid for one to
    two ``lifetime_s`` buckets.
    """

    def __init__(self, secret: bytes, wrap_factory: "Any", lifetime_s: int = 30) -> None:
        self._hmac = Hmac("SHA256", secret)
        self._wrap_factory = wrap_factory
        self._lifetime_s = lifetime_s
        self.sender = wrap_factory()

    def _session_id(self, client_sid: bytes, peer: bytes, bucket: int) -> bytes:
        return self._hmac.digest(struct.pack(">I", bucket & 0xFFFFFFFF), peer, client_sid)[:pk.SID_SIZE]

    def _parse(self, data: bytes, now_ms: int) -> tuple:
        """(the fresh wrapper that unwrapped ``data``, its packet), or (None, None)."""
        try:
            # a fresh wrapper: checks the tls-auth HMAC (or tls-crypt), keeps no replay state
            wrapper = self._wrap_factory()
            return wrapper, pk.parse_control(wrapper.unwrap(data, now_ms))
        except RemoteProtocolError:
            return None, None

    def authentic_reset(self, data: bytes, now_ms: int) -> bool:
        """Whether ``data`` is a client hard reset that passes the wrapper (for the
        resets that are not answered statelessly, before a session is made)."""
        p = self._parse(data, now_ms)[1]
        return p is not None and p.key_id == 0 and p.message_id == 0 \
            and p.opcode in (pk.P_CONTROL_HARD_RESET_CLIENT_V2, pk.P_CONTROL_HARD_RESET_CLIENT_V3)

    def reply(self, data: bytes, peer: bytes, now_ms: int) -> "bytes | None":
        """The stateless P_CONTROL_HARD_RESET_SERVER_V2 for a client reset, or None."""
        wrapper, p = self._parse(data, now_ms)
        if p is None or p.opcode not in (pk.P_CONTROL_HARD_RESET_CLIENT_V2, pk.P_CONTROL_HARD_RESET_CLIENT_V3) \
                or p.key_id != 0 or p.message_id != 0 or not stateless_reset(data):
            return None
        sender, payload = self.sender, b""
        if p.opcode == pk.P_CONTROL_HARD_RESET_CLIENT_V3:
            # under the client's own key (packet-id 1), asking it to resend that key
            sender, payload = wrapper, _RESEND_WKC_TLV
        sid = self._session_id(p.session_id, peer, now_ms // 1000 // self._lifetime_s)
        answer = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, sid, (0,), p.session_id, 0, payload)
        return sender.wrap(answer.to_bytes(), now_ms)

    def verify(self, data: bytes, peer: bytes, now_ms: int) -> "tuple | None":
        """(server session_id, client session_id) if ``data`` proves the cookie, else None."""
        p = self._parse(data, now_ms)[1]
        if p is None or p.key_id != 0 or p.opcode not in (pk.P_CONTROL_V1, pk.P_ACK_V1, pk.P_CONTROL_WKC_V1) \
                or 0 not in p.acks or p.message_id not in (None, 1):
            return None
        bucket = now_ms // 1000 // self._lifetime_s
        for b in (bucket, bucket - 1):
            if p.remote_session_id == self._session_id(p.session_id, peer, b):
                return p.remote_session_id, p.session_id
        return None
