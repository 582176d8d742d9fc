"""tls-auth protection of control packets (OpenVPN's ``tls_wrap``); which wrapper a config asks for.

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
for them: it costs RAM on a board). Only a tls-crypt-v2 server reads
P_CONTROL_HARD_RESET_CLIENT_V3 and P_CONTROL_WKC_V1; every wrapper here drops them.
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
_PACKET_ID_MAX = const(0xFFFFFFFF)
_SEQ_EXPIRED = const(-1)  # slot can no longer be accepted (time backtrack passed)

_HEADER = "-----BEGIN OpenVPN Static key V1-----"
_FOOTER = "-----END OpenVPN Static key V1-----"


def parse_static_key(text: str) -> bytes:
    """Parse an OpenVPN static key file (``openvpn --genkey secret``) to its 256 bytes.

    Lines outside the BEGIN/END markers (the ``#`` comments) are ignored. Raises
    ``LocalProtocolError`` naming what is wrong: it is configuration, not peer input.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise LocalProtocolError("static key: not text")
    lines = [ln.strip() for ln in text.split("\n")]
    if _HEADER not in lines:
        raise LocalProtocolError("static key: missing '%s' line" % _HEADER)
    start = lines.index(_HEADER) + 1
    if _FOOTER not in lines[start:]:
        raise LocalProtocolError("static key: missing '%s' line" % _FOOTER)
    end = lines.index(_FOOTER, start)
    hexstr = "".join("".join(ln.split()) for ln in lines[start:end])
    if len(hexstr) != 2 * _KEY_LEN:
        raise LocalProtocolError("static key: %d hex digits, expected %d" % (len(hexstr), 2 * _KEY_LEN))
    try:
        key = bytes.fromhex(hexstr)
    except ValueError:
        raise LocalProtocolError("static key: invalid hex digits")
    return key


class PacketIdRec:
    """Receive side of OpenVPN's packet_id (long form), with sequence and time backtrack.

    ``seq_backtrack`` 0 means strict ordering (OpenVPN uses it over TCP).
    Times stored per slot are local seconds (``now_ms // 1000``) for the reaper.
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
        # seq_list[0] belongs to self.id, [1] to self.id - 1, ...: 0 unseen,
        # _SEQ_EXPIRED, or the local second it was received
        self.seq_list = []  # type: list

    def test(self, pid: int, ptime: int, now_s: int) -> bool:
        """True if (pid, ptime) is new and acceptable at ``now_s``; changes nothing.

        Applies the reaper's verdict without running it, so that a rejected packet
        leaves the state as it was.
        """
        if pid == 0:
            return False
        if self.seq_backtrack:
            if ptime == self.time:
                if pid > self.id:
                    return True
                diff = self.id - pid
                lst = self.seq_list
                if diff >= len(lst) or lst[diff] != 0:
                    return False
                for i in range(diff):  # a newer slot older than time_backtrack expires this one
                    t = lst[i]
                    if t == _SEQ_EXPIRED or (t > 0 and t + self.time_backtrack < now_s):
                        return False
                return True
            return ptime > self.time
        if ptime == self.time:
            return self.id == 0 or pid == self.id + 1
        if ptime < self.time:
            return False
        return pid == 1

    def add(self, pid: int, ptime: int, now_s: int) -> None:
        """Record (pid, ptime) as received at local time ``now_s``."""
        if not self.seq_backtrack:
            self.id = pid
            self.time = ptime
            return
        self.reap(now_s)
        size = self.seq_backtrack
        if not self.seq_list or ptime > self.time or pid - size > self.id:
            self.time = ptime
            self.id = pid - size if pid > size else 0
            self.seq_list = []
        while self.id < pid:
            self.seq_list.insert(0, 0)
            if len(self.seq_list) > size:
                self.seq_list.pop()
            self.id += 1
        diff = self.id - pid
        if diff < len(self.seq_list):
            self.seq_list[diff] = max(now_s, 1)

    def reap(self, now_s: int) -> None:
        """Expire slots older than a slot seen more than time_backtrack seconds ago."""
        expire = False
        lst = self.seq_list
        for i in range(len(lst)):
            t = lst[i]
            if t == _SEQ_EXPIRED:
                break
            if not expire and t > 0 and t + self.time_backtrack < now_s:
                expire = True
            if expire:
                lst[i] = _SEQ_EXPIRED


def refuse_v2(wire: bytes) -> None:
    """RemoteProtocolError for a packet that only a tls-crypt-v2 server reads (it carries a WKc)."""
    op = wire[0] >> 3 if len(wire) else 0
    if op == pk.P_CONTROL_HARD_RESET_CLIENT_V3 or op == pk.P_CONTROL_WKC_V1:
        raise RemoteProtocolError("TLS Error: %s, but no tls-crypt-v2 server key" % pk.OPCODE_NAMES[op])


def control_wrap_factory(cfg: "Any", is_server: bool, crypto: "Any") -> "Any":
    """A function making a fresh control-packet wrapper as ``cfg`` asks, or None (no wrapping).

    ``cfg`` has ``tls_auth`` (+ ``key_direction``, ``auth``), ``tls_crypt`` or
    ``tls_crypt_v2`` (key texts, at most one of them). Keys are parsed once, here;
    every wrapper made has its own replay window. LocalProtocolError for a bad
    key or for more than one kind asked.
    """
    asked = [n for n in ("tls_auth", "tls_crypt", "tls_crypt_v2") if getattr(cfg, n, None)]
    if len(asked) > 1:
        raise LocalProtocolError("--%s are mutually exclusive" % " and --".join(n.replace("_", "-") for n in asked))
    if not asked:
        return None
    if asked[0] == "tls_auth":
        key = parse_static_key(cfg.tls_auth)
        direction, auth = cfg.key_direction, cfg.auth
        TlsAuth(key, direction, auth)  # bad direction or digest: fail now, not per session
        return lambda: TlsAuth(key, direction, auth)
    from .tlscrypt import make_wrap_factory

    return make_wrap_factory(cfg, is_server, crypto)


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
        self._send_id = 0
        self._send_time = 0
        self._rec = PacketIdRec(replay_window, replay_time)

    def wrap(self, plain: bytes, now_ms: int) -> bytes:
        """Insert HMAC, packet-id and time after the session_id of ``plain``."""
        if len(plain) < _OP_SID:
            raise LocalProtocolError("control packet shorter than op + session_id")
        if self._send_time == 0:
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

    def continue_sending_after(self, other: "TlsAuth") -> None:
        """Send with packet-ids after ``other``'s (the stateless cookie responder's).

        The peer's replay window has seen the packet-id of the reset we sent
        statelessly; the session that follows must not reuse it.
        """
        self._send_id = other._send_id
        self._send_time = other._send_time

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
