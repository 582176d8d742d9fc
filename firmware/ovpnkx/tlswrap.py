"""tls-auth protection of control packets (OpenVPN's ``tls_wrap``).

A plain control packet is ``op|key_id (1) | session_id (8) | rest``. tls-auth puts
``HMAC | replay packet-id (4) | time (4)`` between the session_id and the rest; the
HMAC covers ``packet-id | time | op|key_id | session_id | rest``.

The static key (``openvpn --genkey secret``) is 256 bytes: two keys of
``{cipher[64], hmac[64]}``. As in OpenVPN's ``key_direction_state_init``:
direction 0 sends with key 0 and receives with key 1, direction 1 the reverse,
no direction (bidirectional) sends and receives with key 0. Only the hmac halves
matter here: key 0's at bytes 64.., key 1's at bytes 192..; the HMAC key is the
first digest-size bytes.

Received packet-ids go through OpenVPN's replay window (``packet_id.c``, long form:
id + time, ``--replay-window 64 15`` by default).

tls-crypt and tls-crypt-v2 live in ``tlscrypt`` (imported only when a config asks
for them: it costs RAM on a board); which wrapper a config asks for, and its key, is
``wrapconfig``'s. Only a tls-crypt-v2 server reads P_CONTROL_HARD_RESET_CLIENT_V3 and
P_CONTROL_WKC_V1; every wrapper here drops them.
"""

import struct

from . import packet as pk
from ._compat import TYPE_CHECKING, const
from .digest import Hmac, compare_digest, digest_size
from .errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any

_OP_SID = const(9)  # op|key_id + session_id
_PID_LEN = const(8)  # replay packet-id + time
_KEY_LEN = const(256)
_PACKET_ID_MAX = 0xFFFFFFFF  # not const(): beyond a 32-bit port's small int
DEFAULT_SEQ_BACKTRACK = 64  # --replay-window n t
DEFAULT_TIME_BACKTRACK = 15

def refuse_v2(wire: bytes) -> None:
    """RemoteProtocolError for a packet that only a tls-crypt-v2 server reads (it carries a WKc)."""
    op = wire[0] >> 3 if len(wire) else 0
    if op == pk.P_CONTROL_HARD_RESET_CLIENT_V3 or op == pk.P_CONTROL_WKC_V1:
        raise RemoteProtocolError("TLS Error: %s, but no tls-crypt-v2 server key" % pk.OPCODE_NAMES[op])


class PacketIdRec:
    """Receive side of OpenVPN's packet_id (packet_id.c), with sequence and time backtrack.

    One implementation for the tls-auth/tls-crypt packet-ids (long form: id + time)
    and the data channel's (short form: the time is always 0). With a window
    (``--replay-window n t``, 64 15 by default) an id is taken once, no further
    back than ``n`` behind the highest, and not once a newer id has been seen more
    than ``t`` seconds ago (the time backtrack: packet_id_reap expires those slots).

    ``seq_backtrack`` 0 means strict ordering (OpenVPN uses it over TCP).
    Times stored per slot are local seconds (``now_ms // 1000``) for the reaper.
    The slots are a ring (packet_id.c's CIRC_LIST): nothing is allocated per packet.
    """

    def __init__(self, seq_backtrack: int = 64, time_backtrack: int = 15) -> None:
        if seq_backtrack and not 32 <= seq_backtrack <= 65536:
            raise LocalProtocolError("replay window must be 0 or 32..65536")
        if seq_backtrack and not 1 <= time_backtrack <= 600:
            raise LocalProtocolError("replay time must be 1..600 s")
        self.seq_backtrack = seq_backtrack
        self.time_backtrack = time_backtrack
        self.id = 0
        self.time = 0
        # slot d (0 <= d < _count) belongs to id - d: 0 unseen, or the local second it
        # was received; it lives at _ring[(_head - d) % seq_backtrack]. packet_id_reap's
        # expiry is applied when a packet is tested (a slot's time never changes, so
        # the verdict is the same), so nothing is reaped
        self._ring = [0] * seq_backtrack
        self._head = 0
        self._count = 0

    def _slot(self, d: int) -> int:
        return self._ring[(self._head - d) % self.seq_backtrack]

    def test(self, pid: int, ptime: int, now_s: int) -> bool:
        """True if (pid, ptime) is new and acceptable at ``now_s``; changes nothing."""
        return self.refusal(pid, ptime, now_s) is None

    def refusal(self, pid: int, ptime: int, now_s: int) -> "str | None":
        """Why (pid, ptime) is refused at ``now_s`` (packet_id_test), or None; changes nothing.

        Applies the reaper's verdict without running it, so that a rejected packet
        leaves the state as it was.
        """
        if pid == 0:
            return "is never valid"
        if self.seq_backtrack:
            if ptime == self.time:
                if pid > self.id:
                    return None
                diff = self.id - pid
                if diff >= self._count:
                    return "is behind the window"
                if self._slot(diff) != 0:
                    return "already seen"
                for i in range(diff):  # a newer slot older than time_backtrack expires this one
                    t = self._slot(i)
                    if t > 0 and t + self.time_backtrack < now_s:
                        return "is older than the %d s time backtrack" % self.time_backtrack
                return None
            return None if ptime > self.time else "time went back"
        if ptime == self.time:
            return None if self.id == 0 or pid == self.id + 1 else "is out of order"
        if ptime < self.time:
            return "time went back"
        return None if pid == 1 else "is out of order"

    def add(self, pid: int, ptime: int, now_s: int) -> None:
        """Record (pid, ptime) as received at local time ``now_s`` (packet_id_add)."""
        if not self.seq_backtrack:
            self.id = pid
            self.time = ptime
            return
        size = self.seq_backtrack
        if not self._count or ptime > self.time or pid - size > self.id:
            self.time = ptime
            self.id = pid - size if pid > size else 0
            self._count = 0
        ring = self._ring
        while self.id < pid:  # at most seq_backtrack steps (a larger jump reset above)
            self._head = (self._head + 1) % size
            ring[self._head] = 0
            if self._count < size:
                self._count += 1
            self.id += 1
        diff = self.id - pid
        if diff < self._count:
            ring[(self._head - diff) % size] = now_s if now_s > 1 else 1


class TlsPlain:
    """No tls-auth: control packets pass unchanged (only the minimal length is checked)."""

    overhead = 0

    def wrap(self, plain: bytes, now_ms: int) -> bytes:
        """Return ``plain`` as it goes on the wire."""
        if len(plain) < _OP_SID:
            raise LocalProtocolError("control packet shorter than op + session_id")
        return bytes(plain)

    def unwrap(self, wire: bytes, now_ms: int) -> bytes:
        """Return the plain packet; RemoteProtocolError if too short."""
        if len(wire) < _OP_SID:
            raise RemoteProtocolError("control packet too short: %d bytes" % len(wire))
        refuse_v2(wire)
        return bytes(wire)


class TlsAuth:
    """tls-auth: HMAC and replay protection of control packets.

    ``direction`` is OpenVPN's key-direction (0 on the server, 1 on the client, or
    None for no key-direction); ``auth`` the ``--auth`` digest ("SHA1" default).
    ``overhead`` is the number of bytes ``wrap`` adds.
    """

    name = "tls-auth"

    def __init__(self, static_key: bytes, direction: "int | None", auth: str = "SHA1",
                 replay_window: int = 64, replay_time: int = 15) -> None:
        if len(static_key) != _KEY_LEN:
            raise LocalProtocolError("static key must be %d bytes, got %d" % (_KEY_LEN, len(static_key)))
        if direction not in (0, 1, None):
            raise LocalProtocolError("key direction must be 0, 1 or None")
        size = digest_size(auth)
        # hmac half of key n starts at n * 128 + 64
        out_key = 1 if direction == 1 else 0
        in_key = 1 if direction == 0 else 0
        self._out = Hmac(auth, static_key[out_key * 128 + 64:out_key * 128 + 64 + size])
        self._in = Hmac(auth, static_key[in_key * 128 + 64:in_key * 128 + 64 + size])
        self._size = size
        self.overhead = size + _PID_LEN
        self.direction = direction
        self._send_id = 0
        self._send_time = -1  # set at the first send; 0 is a time like any other (a clock from boot)
        self._rec = PacketIdRec(replay_window, replay_time)

    def wrap(self, plain: bytes, now_ms: int) -> bytes:
        """Insert HMAC, packet-id and time after the session_id of ``plain``."""
        if len(plain) < _OP_SID:
            raise LocalProtocolError("control packet shorter than op + session_id")
        if self._send_time < 0:
            self._send_time = (now_ms // 1000) & 0xFFFFFFFF
        if self._send_id == _PACKET_ID_MAX:
            # long form may roll over only once time has moved on (packet_id_send_update)
            now_s = (now_ms // 1000) & 0xFFFFFFFF
            if now_s <= self._send_time:
                raise LocalProtocolError("tls-auth packet-id exhausted")
            self._send_time = now_s
            self._send_id = 0
        self._send_id += 1
        pid = struct.pack(">II", self._send_id, self._send_time)
        head = plain[:_OP_SID]
        rest = plain[_OP_SID:]
        mac = self._out.digest(pid, head, rest)
        return b"".join((head, mac, pid, rest))

    def unwrap(self, wire: bytes, now_ms: int) -> bytes:
        """Check HMAC and replay window; return the plain packet.

        Raises RemoteProtocolError (and leaves the replay state unchanged) if the
        packet is short, fails the HMAC, or is a replay.
        """
        size = self._size
        refuse_v2(wire)
        if len(wire) < _OP_SID + size + _PID_LEN:
            raise RemoteProtocolError("TLS Error: tls-auth packet too short: %d bytes" % len(wire))
        mv = memoryview(wire)
        head = mv[:_OP_SID]
        mac = bytes(mv[_OP_SID:_OP_SID + size])
        pid = mv[_OP_SID + size:_OP_SID + size + _PID_LEN]
        rest = mv[_OP_SID + size + _PID_LEN:]
        if not compare_digest(mac, self._in.digest(pid, head, rest)):
            raise RemoteProtocolError("TLS Error: incoming packet authentication failed")
        packet_id, ptime = struct.unpack(">II", pid)
        now_s = now_ms // 1000
        rec = self._rec
        if not rec.test(packet_id, ptime, now_s):
            raise RemoteProtocolError(
                "TLS Error: incoming packet authentication failed: bad packet ID (may be a replay): #%d / time %d"
                % (packet_id, ptime))
        rec.add(packet_id, ptime, now_s)
        return bytes(head) + bytes(rest)
