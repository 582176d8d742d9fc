"""OpenVPN's packet-id replay protection, receive side (packet_id.c), sans-IO.

One implementation for the tls-auth packet-ids (long form: id + time) and the
data channel's (short form: the time is always 0). With a window
(``--replay-window n t``, 64 15 by default) packets may arrive out of order:
an id is taken once, no further back than ``n`` behind the highest, and not
once a newer id has been seen more than ``t`` seconds ago (the time backtrack:
packet_id_reap expires those slots). Time comes in as ``now_s``.
"""

from ._compat import const
from .errors import LocalProtocolError

_SEQ_EXPIRED = const(-1)  # slot can no longer be accepted (time backtrack passed)

SEQ_REAP_INTERVAL = const(5)  # packet_id.h: seconds between reaps (test() needs none: it checks lazily)
DEFAULT_SEQ_BACKTRACK = const(64)
DEFAULT_TIME_BACKTRACK = const(15)


class PacketIdRec:
    """Receive side of OpenVPN's packet_id (long form), with sequence and time backtrack.

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
        self._last_reap = -SEQ_REAP_INTERVAL
        # slot d (0 <= d < _count) belongs to id - d: 0 unseen, _SEQ_EXPIRED, or the
        # local second it was received; it lives at _ring[(_head - d) % seq_backtrack]
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
                    if t == _SEQ_EXPIRED or (t > 0 and t + self.time_backtrack < now_s):
                        return "is older than the %d s time backtrack" % self.time_backtrack
                return None
            return None if ptime > self.time else "time went back"
        if ptime == self.time:
            return None if self.id == 0 or pid == self.id + 1 else "is out of order"
        if ptime < self.time:
            return "time went back"
        return None if pid == 1 else "is out of order"

    def state(self) -> tuple:
        """(highest id, bitmap: bit d set when id - d was seen or expired), for tests."""
        bits = 0
        for d in range(self._count):
            if self._slot(d) != 0:
                bits |= 1 << d
        return self.id, bits

    def add(self, pid: int, ptime: int, now_s: int) -> None:
        """Record (pid, ptime) as received at local time ``now_s`` (packet_id_add)."""
        if not self.seq_backtrack:
            self.id = pid
            self.time = ptime
            return
        if now_s >= self._last_reap + SEQ_REAP_INTERVAL:
            self.reap(now_s)
            self._last_reap = now_s
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

    def reap(self, now_s: int) -> None:
        """Expire slots older than a slot seen more than time_backtrack seconds ago."""
        expire = False
        ring = self._ring
        size = self.seq_backtrack
        for d in range(self._count):
            i = (self._head - d) % size
            t = ring[i]
            if t == _SEQ_EXPIRED:
                break
            if not expire and t > 0 and t + self.time_backtrack < now_s:
                expire = True
            if expire:
                ring[i] = _SEQ_EXPIRED
