"""The 2.6 UDP server's stateless reset reply (HMAC session-id cookie).

A UDP server must not create state for every packet claiming to be a client's
reset (spoofed sources would exhaust it). So it answers the reset without
remembering it: its session_id is an HMAC over a time bucket, the client's
address and the client's session_id. Only the client's next packet — key_id 0,
acking msg packet-id 0, naming that session_id as its peer, msg packet-id 1 —
proves the address, and only then does the server create the session (which
starts with ``Session(..., cookie=(server_sid, client_sid))``).
"""

import struct

from . import packet as pk
from ._compat import TYPE_CHECKING
from .digest import Hmac
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any


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

    def _parse(self, data: bytes, now_ms: int) -> "pk.ControlPacket | None":
        try:
            # a fresh wrapper: checks the tls-auth HMAC, keeps no replay state
            return pk.parse_control(self._wrap_factory().unwrap(data, now_ms))
        except RemoteProtocolError:
            return None

    def reply(self, data: bytes, peer: bytes, now_ms: int) -> "bytes | None":
        """The stateless P_CONTROL_HARD_RESET_SERVER_V2 for a client reset, or None."""
        p = self._parse(data, now_ms)
        if p is None or p.opcode != pk.P_CONTROL_HARD_RESET_CLIENT_V2 or p.key_id != 0 \
                or p.message_id != 0:
            return None
        sid = self._session_id(p.session_id, peer, now_ms // 1000 // self._lifetime_s)
        answer = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, sid, (0,), p.session_id, 0, b"")
        return self.sender.wrap(answer.to_bytes(), now_ms)

    def verify(self, data: bytes, peer: bytes, now_ms: int) -> "tuple | None":
        """(server session_id, client session_id) if ``data`` proves the cookie, else None."""
        p = self._parse(data, now_ms)
        if p is None or p.key_id != 0 or p.opcode not in (pk.P_CONTROL_V1, pk.P_ACK_V1) \
                or 0 not in p.acks or p.message_id not in (None, 1):
            return None
        bucket = now_ms // 1000 // self._lifetime_s
        for b in (bucket, bucket - 1):
            if p.remote_session_id == self._session_id(p.session_id, peer, b):
                return p.remote_session_id, p.session_id
        return None
