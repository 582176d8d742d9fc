"""The 2.6 UDP server's stateless reset reply (HMAC session-id cookie).

A UDP server must not create state for every packet claiming to be a client's
reset (spoofed sources would exhaust it). So it answers the reset without
remembering it: its session_id is an HMAC over a time bucket, the client's
address and the client's session_id. Only the client's next packet — key_id 0,
acking msg packet-id 0, naming that session_id as its peer, msg packet-id 1 —
proves the address, and only then does the server create the session (which
starts with ``Session(..., cookie=(server_sid, client_sid))``).

What proves it, as OpenVPN 2.6's check_session_hmac_and_pkt_id has it: a
P_CONTROL_V1, P_ACK_V1 (or P_CONTROL_WKC_V1) of key_id 0 carrying at least one
ack (the ack record names the server's session_id), every acked id and its own
msg packet-id at most 1 (the three-way handshake), and a server session_id
equal, compared in constant time, to the cookie of the current time bucket or
of one of the two before it. Buckets are ``(hand_window + 1) // 2`` seconds, so
a cookie lives one to one and a half hand-windows. A cookie of the next bucket
is taken too (OpenVPN 2.6.0 checked offsets -2..+1): workers sharing the
secret may read their clocks a bucket apart.

tls-crypt-v2: a 2.6 client's P_CONTROL_HARD_RESET_CLIENT_V3 (its packet-id
announces early negotiation) gets the same stateless reply, under the client's
own key and with the EARLY_NEG_FLAG_RESEND_WKC TLV; its next packet is then a
P_CONTROL_WKC_V1 that carries the wrapped key again. An older client's V3 gets a
session at once (``stateless_reset`` says which).
"""

import struct

from . import packet as pk
from ._compat import TYPE_CHECKING
from .digest import Hmac, compare_digest
from .errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any


_HANDSHAKE_MAX_ID = 1  # ids of the three-way handshake: the resets (0) and the first reply (1)
_RESEND_WKC_TLV = b"\x00\x01\x00\x02\x00\x01"  # TLV_TYPE_EARLY_NEG_FLAGS: EARLY_NEG_FLAG_RESEND_WKC


def encode_tlvs(tlvs: "list | tuple") -> bytes:
    """The early-negotiation payload of a hard reset for ``[(type, value), ...]``;
    inverse of ``packet.parse_tlvs``."""
    parts = []
    for t, v in tlvs:
        if not isinstance(t, int) or not 0 <= t <= 0xFFFF:
            raise LocalProtocolError("TLV type must be a u16")
        if not isinstance(v, (bytes, bytearray, memoryview)) or len(v) > 0xFFFF:
            raise LocalProtocolError("TLV value must be bytes of at most 65535")
        if t == pk.TLV_TYPE_EARLY_NEG_FLAGS and len(v) != 2:
            raise LocalProtocolError("early negotiation flags TLV must be 2 bytes")
        parts.append(struct.pack(">HH", t, len(v)))
        parts.append(bytes(v))
    return b"".join(parts)


def stateless_reset(data: bytes) -> bool:
    """Whether a client reset is answered statelessly: every V2 reset, and a V3 whose
    tls-crypt packet-id (bytes 9..12) has EARLY_NEG_START's bits in its top byte
    (mudp.c: ``(id & EARLY_NEG_MASK) & EARLY_NEG_START == EARLY_NEG_START``)."""
    op = data[0] >> 3 if len(data) else 0
    if op != pk.P_CONTROL_HARD_RESET_CLIENT_V3:
        return op == pk.P_CONTROL_HARD_RESET_CLIENT_V2
    top = pk.EARLY_NEG_START >> 24
    return len(data) >= 13 and data[9] & top == top


def continue_sending_after(wrap: "Any", sender: "Any") -> None:
    """Make the session's tls-auth/tls-crypt ``wrap`` send with packet-ids after
    ``sender``'s (the stateless reply's wrapper): the client's replay window has seen
    the packet-id of the reset we sent statelessly, and the session must not reuse it.
    A ``TlsPlain`` has no packet-ids: nothing to do; a tls-crypt-v2 server's wrapper
    knows its own way (``TlsCryptV2Server.continue_sending_after``)."""
    own = getattr(wrap, "continue_sending_after", None)
    if own is not None:
        own(sender)
    elif hasattr(wrap, "_send_id"):
        wrap._send_id = sender._send_id
        wrap._send_time = sender._send_time


def session_skip_to_pre_start(channel: "Any") -> None:
    """Both resets of ``channel`` (a ``control.KeyStateChannel``, key_id 0) were exchanged
    statelessly (ssl.c session_skip_to_pre_start).

    The server answered the client's reset without keeping state; the client's
    next packet acked it and proved the cookie, so this key_state starts at
    msg packet-id 1 both ways (``initial_packet_id=1``), in S_START.
    """
    from . import keystate as ks

    channel.state.handle(ks.EV_RESET_SKIPPED)
    channel.state.handle(ks.EV_PEER_PACKET)
    channel.state.handle(ks.EV_RESET_ACKED)
    channel.reset_acked = channel.peer_reset_seen = True
    channel._start_tls()


class CookieResponder:
    """Answers client resets statelessly and checks the cookie on the next packet.

    ``secret`` is random (from the entropy source; several worker processes
    may share one), ``wrap_factory()`` makes a fresh tls-auth wrapper (or
    ``TlsPlain``); ``sender`` wraps every stateless reply, so sessions continue
    its packet-ids. ``hand_window_s`` sets the time buckets (half of it, as
    OpenVPN); ``lifetime_s``, if given, sets the bucket length directly.
    """

    def __init__(self, secret: bytes, wrap_factory: "Any", lifetime_s: "int | None" = None,
                 hand_window_s: int = 60) -> None:
        self._hmac = Hmac("SHA256", secret)
        self._wrap_factory = wrap_factory
        self._bucket_s = lifetime_s if lifetime_s else (hand_window_s + 1) // 2
        if self._bucket_s < 1:
            self._bucket_s = 1
        self.sender = wrap_factory()

    def _bucket(self, now_ms: int) -> int:
        return now_ms // 1000 // self._bucket_s

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
        sid = self._session_id(p.session_id, peer, self._bucket(now_ms))
        answer = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, sid, (0,), p.session_id, 0, payload)
        return sender.wrap(answer.to_bytes(), now_ms)

    def verify(self, data: bytes, peer: bytes, now_ms: int) -> "tuple | None":
        """(server session_id, client session_id) if ``data`` proves the cookie, else None."""
        p = self._parse(data, now_ms)[1]
        if p is None or p.key_id != 0 or p.opcode not in (pk.P_CONTROL_V1, pk.P_ACK_V1, pk.P_CONTROL_WKC_V1) \
                or not p.acks or p.remote_session_id is None:
            return None
        for a in p.acks:
            if a > _HANDSHAKE_MAX_ID:
                return None
        if p.message_id is not None and p.message_id > _HANDSHAKE_MAX_ID:
            return None
        bucket = self._bucket(now_ms)
        found = False
        for offset in (-2, -1, 0, 1):  # every candidate, so the time taken does not tell which
            if compare_digest(self._session_id(p.session_id, peer, bucket + offset), p.remote_session_id):
                found = True
        return (p.remote_session_id, p.session_id) if found else None
