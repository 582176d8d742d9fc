"""Control packet layout and hard-reset TLVs (ssl_pkt.h).

Plain layout, without tls-auth/tls-crypt (``tlswrap`` strips those fields
before we parse and adds them after we serialize); integers are big-endian::

    op<<3|key_id (1) | session_id (8) | n (1) | n x acked msg packet-id (4)
    | remote session_id (8, only if n > 0) | msg packet-id (4, not in P_ACK_V1)
    | payload

This module parses and serializes, nothing else: whether an ack's remote
session_id is ours, whether an opcode fits the role or the key_id is known,
is for ``reliable``/``control``/``session`` to decide. TCP's length framing is
``streambuf``'s (loaded by a TCP transport only).
"""

import struct

from ._compat import const
from .errors import LocalProtocolError, RemoteProtocolError

# Opcodes (high 5 bits of the first byte). 1 and 2 are key method 1 resets,
# refused by OpenVPN 2.6 ("Peer tried unsupported key-method 1").
P_CONTROL_HARD_RESET_CLIENT_V1 = 1
P_CONTROL_HARD_RESET_SERVER_V1 = 2
P_CONTROL_SOFT_RESET_V1 = 3
P_CONTROL_V1 = 4
P_ACK_V1 = 5
P_DATA_V1 = 6
P_CONTROL_HARD_RESET_CLIENT_V2 = 7
P_CONTROL_HARD_RESET_SERVER_V2 = 8
P_DATA_V2 = 9
P_CONTROL_HARD_RESET_CLIENT_V3 = 10  # tls-crypt-v2: reset + wrapped client key
P_CONTROL_WKC_V1 = 11  # tls-crypt-v2: P_CONTROL_V1 + wrapped client key

# names for messages, in one string: a board then interns neither them nor the constants'
# names (the board's build writes each constant as its number, tools/const_inline.py)
OPCODE_NAMES = dict(zip((
    P_CONTROL_HARD_RESET_CLIENT_V1, P_CONTROL_HARD_RESET_SERVER_V1, P_CONTROL_SOFT_RESET_V1,
    P_CONTROL_V1, P_ACK_V1, P_DATA_V1, P_CONTROL_HARD_RESET_CLIENT_V2,
    P_CONTROL_HARD_RESET_SERVER_V2, P_DATA_V2, P_CONTROL_HARD_RESET_CLIENT_V3, P_CONTROL_WKC_V1),
    "P_CONTROL_HARD_RESET_CLIENT_V1 P_CONTROL_HARD_RESET_SERVER_V1 "
    "P_CONTROL_SOFT_RESET_V1 P_CONTROL_V1 P_ACK_V1 P_DATA_V1 "
    "P_CONTROL_HARD_RESET_CLIENT_V2 P_CONTROL_HARD_RESET_SERVER_V2 P_DATA_V2 "
    "P_CONTROL_HARD_RESET_CLIENT_V3 P_CONTROL_WKC_V1".split()))

# Opcodes this module parses as control packets (P_FIRST_OPCODE..P_LAST_OPCODE
# minus the data opcodes).
CONTROL_OPCODES = (
    P_CONTROL_SOFT_RESET_V1, P_CONTROL_V1, P_ACK_V1,
    P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_SERVER_V2,
    P_CONTROL_HARD_RESET_CLIENT_V3, P_CONTROL_WKC_V1,
)
DATA_OPCODES = (P_DATA_V1, P_DATA_V2)

SID_SIZE = 8
# At most this many acks in any packet (reliable.h RELIABLE_ACK_SIZE), and at
# most CONTROL_SEND_ACK_MAX piggybacked on a non-ACK packet: OpenVPN reads up to
# 8 anywhere, but sends at most 4 with a payload (SoftEther drops more).
RELIABLE_ACK_SIZE = 8
CONTROL_SEND_ACK_MAX = 4

_KEY_ID_MASK = const(0x07)
_OPCODE_SHIFT = const(3)
_U32_MAX = 0xFFFFFFFF  # not const(): beyond a 32-bit port's small int

# Early protocol negotiation (ssl_pkt.h, OpenVPN 2.6). A 2.6 peer reads the
# payload of msg packet-id 0 of a method-2 hard reset as TLVs (u16 type, u16
# length, value). A client announces that it understands them by starting its
# tls-auth/tls-crypt replay packet-id at EARLY_NEG_START (top byte EARLY_NEG_MASK).
EARLY_NEG_MASK = 0xFF000000
EARLY_NEG_START = 0x0F000000
TLV_TYPE_EARLY_NEG_FLAGS = 0x0001  # value: u16 flags, length must be 2
EARLY_NEG_FLAG_RESEND_WKC = 0x0001

def ack_size(n: int) -> int:
    """Bytes taken by an ack record with ``n`` acks (ssl_pkt.h ACK_SIZE)."""
    return 1 + 4 * n + (SID_SIZE if n else 0)


def is_hard_reset_method2(opcode: int) -> bool:
    """True for the key method 2 hard resets (ssl_pkt.h is_hard_reset_method2)."""
    return opcode in (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_SERVER_V2,
                      P_CONTROL_HARD_RESET_CLIENT_V3)


def _name(opcode: int) -> str:
    return OPCODE_NAMES.get(opcode, "opcode %d" % opcode)


def _hex(b: "bytes | None") -> str:
    if b is None:
        return "None"
    return "".join("%02x" % x for x in b)


def _is_bytes(b: object) -> bool:
    return isinstance(b, (bytes, bytearray, memoryview))


class ControlPacket:
    """One control packet (any opcode except the data opcodes), tls-auth stripped.

    ``session_id`` is the sender's; ``remote_session_id`` is the receiver's and
    is present exactly when ``acks`` is not empty. ``message_id`` is the
    reliable msg packet-id, ``None`` for P_ACK_V1 only.
    """

    def __init__(self, opcode: int, key_id: int, session_id: bytes, acks: "tuple | list" = (),
                 remote_session_id: "bytes | None" = None, message_id: "int | None" = None,
                 payload: bytes = b"") -> None:
        self.opcode = opcode
        self.key_id = key_id
        self.session_id = session_id
        self.acks = tuple(acks)
        self.remote_session_id = remote_session_id
        self.message_id = message_id
        self.payload = payload

    def to_bytes(self) -> bytes:
        """Serialize; LocalProtocolError names the first bad field."""
        op = self.opcode
        if op in DATA_OPCODES:
            raise LocalProtocolError("%s is a data packet, not a control packet" % _name(op))
        if op not in CONTROL_OPCODES:
            raise LocalProtocolError("%s is not a control opcode" % _name(op))
        if not isinstance(self.key_id, int) or not 0 <= self.key_id <= _KEY_ID_MASK:
            raise LocalProtocolError("key_id must be 0..7, not %r" % (self.key_id,))
        if not _is_bytes(self.session_id) or len(self.session_id) != SID_SIZE:
            raise LocalProtocolError("session_id must be %d bytes" % SID_SIZE)
        if not any(self.session_id):
            raise LocalProtocolError("session_id must not be all zero")
        n = len(self.acks)
        if n > RELIABLE_ACK_SIZE:
            raise LocalProtocolError("%d acks, at most %d fit in one packet" % (n, RELIABLE_ACK_SIZE))
        for a in self.acks:
            if not isinstance(a, int) or not 0 <= a <= _U32_MAX:
                raise LocalProtocolError("ack %r is not a uint32 msg packet-id" % (a,))
        if n and self.remote_session_id is None:
            raise LocalProtocolError("acks need remote_session_id")
        if self.remote_session_id is not None:
            if not n:
                raise LocalProtocolError("remote_session_id is only sent with acks")
            if not _is_bytes(self.remote_session_id) or len(self.remote_session_id) != SID_SIZE:
                raise LocalProtocolError("remote_session_id must be %d bytes" % SID_SIZE)
        mid = self.message_id
        if op == P_ACK_V1:
            if mid is not None:
                raise LocalProtocolError("P_ACK_V1 carries no message_id")
            if not n:
                raise LocalProtocolError("P_ACK_V1 needs at least one ack")
            if len(self.payload):
                raise LocalProtocolError("P_ACK_V1 carries no payload")
        elif mid is None:
            raise LocalProtocolError("%s needs a message_id" % _name(op))
        elif not isinstance(mid, int) or not 0 <= mid <= _U32_MAX:
            raise LocalProtocolError("message_id %r is not a uint32" % (mid,))
        if not _is_bytes(self.payload):
            raise LocalProtocolError("payload must be bytes")
        parts = [bytes((op << _OPCODE_SHIFT | self.key_id,)), bytes(self.session_id), bytes((n,))]
        for a in self.acks:
            parts.append(struct.pack(">I", a))
        if n:
            parts.append(bytes(self.remote_session_id))  # type: ignore[arg-type]
        if mid is not None:
            parts.append(struct.pack(">I", mid))
        parts.append(bytes(self.payload))
        return b"".join(parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ControlPacket):
            return False
        return (self.opcode == other.opcode and self.key_id == other.key_id
                and bytes(self.session_id) == bytes(other.session_id)
                and self.acks == other.acks
                and self.remote_session_id == other.remote_session_id
                and self.message_id == other.message_id
                and bytes(self.payload) == bytes(other.payload))

    def __ne__(self, other: object) -> bool:  # MicroPython does not derive != from ==
        return not self.__eq__(other)

    def __repr__(self) -> str:
        # payload length only: the payload is TLS ciphertext (or worse)
        return "ControlPacket(%s, key_id=%d, sid=%s, acks=%r, remote_sid=%s, msg_id=%r, payload=<%d bytes>)" % (
            _name(self.opcode), self.key_id, _hex(self.session_id), self.acks,
            _hex(self.remote_session_id), self.message_id, len(self.payload))


def opcode_key_id(data: bytes) -> tuple:
    """(opcode, key_id) from the first byte of any packet, control or data."""
    if not len(data):
        raise RemoteProtocolError("empty packet")
    b = data[0]
    return b >> _OPCODE_SHIFT, b & _KEY_ID_MASK


def parse_control(data: bytes) -> ControlPacket:
    """Parse one control packet (tls-auth/tls-crypt already removed).

    Raises RemoteProtocolError for anything that is not a well-formed control
    packet; ``data`` is only read. The payload is everything after the header.
    """
    if not _is_bytes(data):
        raise LocalProtocolError("parse_control takes bytes")
    total = len(data)
    op, key_id = opcode_key_id(data)
    if op in DATA_OPCODES:
        raise RemoteProtocolError("%s is a data packet, not a control packet" % _name(op))
    if op == P_CONTROL_HARD_RESET_CLIENT_V1 or op == P_CONTROL_HARD_RESET_SERVER_V1:
        raise RemoteProtocolError("key method 1 hard reset (%s) is not supported" % _name(op))
    if op not in CONTROL_OPCODES:
        raise RemoteProtocolError("unknown opcode %d" % op)
    name = _name(op)
    if total < 1 + SID_SIZE:
        raise RemoteProtocolError("%s truncated in session_id" % name)
    sid = bytes(data[1:1 + SID_SIZE])
    if not any(sid):
        raise RemoteProtocolError("%s has an all-zero session_id" % name)
    pos = 1 + SID_SIZE
    if total < pos + 1:
        raise RemoteProtocolError("%s truncated before the ack count" % name)
    n = data[pos]
    pos += 1
    if n > RELIABLE_ACK_SIZE:
        raise RemoteProtocolError("%s has %d acks, at most %d allowed" % (name, n, RELIABLE_ACK_SIZE))
    if op == P_ACK_V1 and not n:
        raise RemoteProtocolError("P_ACK_V1 without acks")
    if total < pos + 4 * n:
        raise RemoteProtocolError("%s truncated in the ack list" % name)
    acks = []
    for _ in range(n):
        acks.append(int.from_bytes(bytes(data[pos:pos + 4]), "big"))
        pos += 4
    remote = None
    if n:
        if total < pos + SID_SIZE:
            raise RemoteProtocolError("%s truncated in remote session_id" % name)
        remote = bytes(data[pos:pos + SID_SIZE])
        pos += SID_SIZE
    mid = None
    if op == P_ACK_V1:
        if total != pos:
            raise RemoteProtocolError("P_ACK_V1 with %d trailing bytes" % (total - pos))
    else:
        if total < pos + 4:
            raise RemoteProtocolError("%s truncated in message_id" % name)
        mid = int.from_bytes(bytes(data[pos:pos + 4]), "big")
        pos += 4
    return ControlPacket(op, key_id, sid, tuple(acks), remote, mid, bytes(data[pos:]))


def parse_tlvs(payload: bytes) -> list:
    """[(type, value), ...] from a hard reset's early-negotiation payload.

    Empty payload -> []. Unknown types are returned as they are (OpenVPN skips
    them); a truncated TLV, or TLV_TYPE_EARLY_NEG_FLAGS not 2 bytes long, is an
    error as in ssl.c parse_early_negotiation_tlvs. The server's side, which writes
    them, is ``cookie.encode_tlvs`` (host-only).
    """
    if not _is_bytes(payload):
        raise LocalProtocolError("parse_tlvs takes bytes")
    out = []
    pos = 0
    total = len(payload)
    while pos < total:
        if total - pos < 4:
            raise RemoteProtocolError("early negotiation TLV truncated in its header")
        t, n = struct.unpack(">HH", bytes(payload[pos:pos + 4]))
        pos += 4
        if total - pos < n:
            raise RemoteProtocolError("early negotiation TLV type %d truncated: %d of %d bytes"
                                      % (t, total - pos, n))
        if t == TLV_TYPE_EARLY_NEG_FLAGS and n != 2:
            raise RemoteProtocolError("early negotiation flags TLV must be 2 bytes, not %d" % n)
        out.append((t, bytes(payload[pos:pos + n])))
        pos += n
    return out
