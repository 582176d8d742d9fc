"""OpenVPN's reliability layer for control packets (reliable.c), sans-IO.

One ``ReliableLayer`` serves one key_state, both directions. Outgoing reliable
messages get msg packet-ids 0, 1, 2, ... (starting with the reset) and are
retransmitted until acked; incoming ones are acked, reordered and handed up
once each, in order. Time comes in as ``now_ms``; nothing here reads a clock.

Facts from reliable.c / ssl.c (OpenVPN 2.6) that this module follows:

* Send window (TLS_RELIABLE_N_SEND_BUFFERS 6) is a *span*: a new id may go out
  only while ``new_id - lowest_unacked_id < 6`` (reliable_get_buf_output_sequenced),
  so one lost packet stalls the window even if later ones were acked.
* Retransmission (reliable_send): a packet is due when ``now >= next_try``; each
  transmission sets ``next_try = now + timeout`` and doubles ``timeout``
  (starting at --tls-timeout, 2 s). There is no upper bound in reliable.c; the
  hand-window (60 s) ends a stuck handshake. A packet for which
  N_ACK_RETRANSMIT (3) acks of higher ids arrived is resent at once, and that
  counts as a transmission (the backoff doubles, the counter restarts).
  reliable_send_purge counts *every* ack id above a held packet, once per
  occurrence: duplicates and ids we never sent (or already purged) count too.
* reliable_schedule_now (ssl.c's "burst", once per session when the peer's
  first packet arrives): every unacked packet is due now with its backoff back
  at the initial timeout.
* Acks are not cumulative; an ack naming an id we do not hold removes nothing.
* Buffers are bounded (ssl.c key_state_init / tls_init_control_channel_frame_
  parameters): a received payload larger than the control frame's buffer,
  max(1500, tls-mtu) + 100 bytes, is dropped ("Incoming control channel packet
  too big, dropping"); so the 12 receive slots hold at most 12 such payloads.
* Receiving (tls_pre_decrypt): reliable_wont_break_sequentiality drops, without
  an ack, any id at or beyond ``base + 12`` (base = next id to hand up), so the
  12 receive slots can never fill with packets that leave a hole below them.
  Inside that bound reliable_not_replay decides whether the packet is new
  (below base = already handed up, or already buffered = replay); either way
  the id is queued for an ack, so a peer whose ack got lost stops resending.
* Acks go out FIFO, at most 4 piggybacked on a reliable packet
  (CONTROL_SEND_ACK_MAX), at most 8 in a P_ACK_V1 (RELIABLE_ACK_SIZE). Since
  2.6 (copy_acks_to_mru) the free ack slots of every packet are filled with the
  most recently sent acks, so acks are repeated on later packets.
"""

from ._compat import const
from .errors import LocalProtocolError

P_ACK_V1 = const(5)
CONTROL_SEND_ACK_MAX = const(4)
RELIABLE_ACK_SIZE = const(8)
N_ACK_RETRANSMIT = const(3)

# msg packet-ids are uint32; not const(): beyond a 32-bit port's small int.
_ID_MASK = 0xFFFFFFFF
# ssl.c: control frame buffers hold max(1500, tls-mtu) + 100 payload bytes.
TLS_MTU_DEFAULT = const(1250)


def rx_payload_max(tls_mtu: int = TLS_MTU_DEFAULT) -> int:
    """Largest control payload OpenVPN's receive buffer holds at ``tls_mtu``."""
    return (1500 if tls_mtu < 1500 else tls_mtu) + 100


# Pending acks are bounded: in-window ids plus old duplicates (both <= recv_window)
# fit; beyond that an id is simply acked later when the peer resends it.
_ACK_SLACK = const(8)


def _id_ok(message_id: object) -> bool:
    return isinstance(message_id, int) and 0 <= message_id <= _ID_MASK


class _Entry:
    """One outgoing reliable message (reliable.c's struct reliable_entry)."""

    def __init__(self, message_id: int, opcode: int, payload: bytes, timeout_ms: int) -> None:
        self.message_id = message_id
        self.opcode = opcode
        self.payload = payload
        self.next_try = -1  # -1: never sent, due at once
        self.timeout = timeout_ms
        self.n_acks = 0  # acks seen for later ids since the last transmission
        self.sends = 0


class ReliableLayer:
    """Windows, acks, retransmission and reordering for one key_state.

    ``send_window``/``recv_window`` default to OpenVPN 2.6's 6 and 12;
    ``timeout_ms`` is --tls-timeout. ``max_timeout_ms`` caps the doubled
    backoff (None = no cap, as OpenVPN). ``max_backlog`` bounds messages
    waiting for room in the send window. Packets whose opcode is in
    ``no_ack_opcodes`` never carry piggybacked acks. ``max_payload`` bounds a
    received payload (larger ones are dropped and counted in
    ``oversize_dropped``), so that the receive slots hold at most
    ``recv_window * max_payload`` bytes. ``initial_packet_id`` is the first id each way (0 in OpenVPN; other
    values exist to test the 32-bit wrap).
    """

    def __init__(self, send_window: int = 6, recv_window: int = 12, timeout_ms: int = 2000,
                 max_timeout_ms: "int | None" = None, max_backlog: int = 32,
                 no_ack_opcodes: tuple = (), initial_packet_id: int = 0,
                 max_payload: "int | None" = None) -> None:
        if send_window < 1 or recv_window < 1 or timeout_ms < 1 or max_backlog < 0:
            raise LocalProtocolError("reliable: windows, timeout must be positive")
        if max_payload is None:
            max_payload = rx_payload_max()
        if max_payload < 1:
            raise LocalProtocolError("reliable: max_payload must be positive")
        if not _id_ok(initial_packet_id):
            raise LocalProtocolError("reliable: initial packet id must be a uint32")
        self.send_window = send_window
        self.recv_window = recv_window
        self.timeout_ms = timeout_ms
        self.max_timeout_ms = max_timeout_ms
        self.max_backlog = max_backlog
        self.no_ack_opcodes = tuple(no_ack_opcodes)
        self.max_payload = max_payload
        # send side
        self._initial_id = initial_packet_id
        self._next_id = initial_packet_id
        self._issued = 0
        self._inflight = []  # type: list  # _Entry, ascending id order
        self._backlog = []  # type: list  # (id, opcode, payload) waiting for window room
        # receive side: base = next id to hand up (reliable.c's rel->packet_id)
        self._base = initial_packet_id
        self._delivered = 0
        self._rbuf = {}  # type: dict  # id -> (opcode, payload), ids in [base, base+recv_window)
        # acks
        self._acks = []  # type: list  # ids owed to the peer, FIFO
        self._ack_mru = []  # type: list  # most recently sent acks, newest first
        self._now = 0
        # stats
        self.packets_sent = 0
        self.retransmissions = 0
        self.bytes_sent = 0
        self.acks_sent = 0
        self.packets_received = 0
        self.duplicates_received = 0
        self.dropped_received = 0
        self.oversize_dropped = 0

    # -- sending ------------------------------------------------------------
    def send(self, opcode: int, payload: bytes) -> int:
        """Queue a reliable message; return its msg packet-id.

        Messages beyond the send window wait in a backlog and keep their ids.
        Raises LocalProtocolError for P_ACK_V1 or when the backlog is full.
        """
        if opcode == P_ACK_V1:
            raise LocalProtocolError("P_ACK_V1 is not a reliable message")
        self._fill_window()
        if self._backlog or not self._window_has_room():
            if len(self._backlog) >= self.max_backlog:
                raise LocalProtocolError("reliable send backlog full (%d messages)" % self.max_backlog)
        message_id = self._next_id
        self._next_id = (message_id + 1) & _ID_MASK
        self._issued += 1
        self._backlog.append((message_id, opcode, bytes(payload)))
        self._fill_window()
        return message_id

    def num_output_sequenced_available(self) -> int:
        """How many more messages ``send`` would put straight into the window."""
        if self._backlog:
            return 0
        if not self._inflight:
            return self.send_window
        used = (self._next_id - self._inflight[0].message_id) & _ID_MASK
        return max(0, self.send_window - used)

    def _window_has_room(self) -> bool:
        if not self._inflight:
            return True
        head = self._backlog[0][0] if self._backlog else self._next_id
        return (head - self._inflight[0].message_id) & _ID_MASK < self.send_window

    def _fill_window(self) -> None:
        while self._backlog and self._window_has_room():
            message_id, opcode, payload = self._backlog.pop(0)
            self._inflight.append(_Entry(message_id, opcode, payload, self.timeout_ms))

    def schedule_now(self, now_ms: int) -> None:
        """Make every unacked message due now at the initial timeout (reliable_schedule_now).

        The session does this once, when the peer's first packet arrives, so
        that a handshake started before the peer came up does not wait out a
        backoff.
        """
        self._now = now_ms
        for e in self._inflight:
            e.next_try = now_ms
            e.timeout = self.timeout_ms

    def process_acks(self, acks, now_ms: int) -> None:
        """Take the acks carried by any peer packet (any iterable of ints).

        Malformed ids are ignored. As reliable_send_purge does, every ack id
        (duplicate, unknown or new) removes the message it names and counts
        towards the early resend of every message with a lower id still held.
        """
        self._now = now_ms
        for a in acks:
            if not _id_ok(a):
                continue
            kept = []
            for e in self._inflight:
                if e.message_id == a and e.sends:
                    continue  # acked (an id never transmitted cannot have been received)
                if 0 < (a - e.message_id) & _ID_MASK < 0x80000000:
                    e.n_acks += 1  # a higher id was acked (wrap-aware, as reliable_pid_min)
                kept.append(e)
            self._inflight = kept
        self._fill_window()

    def is_acked(self, message_id: int) -> bool:
        """True once ``message_id`` (returned by ``send``) has been acked."""
        if not _id_ok(message_id) or (message_id - self._initial_id) & _ID_MASK >= self._issued:
            return False  # never handed out by send()
        for e in self._inflight:
            if e.message_id == message_id:
                return False
        for queued in self._backlog:
            if queued[0] == message_id:
                return False
        return True

    def all_acked(self) -> bool:
        """True when nothing we sent is waiting for an ack (send queue empty)."""
        return not self._inflight and not self._backlog

    # -- receiving ----------------------------------------------------------
    def receive(self, message_id: int, opcode: int, payload: bytes) -> bool:
        """Take a peer's reliable packet; True if it is new (now buffered).

        In-window or already-seen ids are queued for an ack; ids at or beyond
        the receive window, and malformed ids, are dropped without one.
        """
        self.packets_received += 1
        if not _id_ok(message_id):
            self.dropped_received += 1
            return False
        if len(payload) > self.max_payload:
            # larger than any buffer of ours: dropped unacked, so the peer resends in vain
            # and its hand-window ends a peer that keeps sending such packets
            self.dropped_received += 1
            self.oversize_dropped += 1
            return False
        ahead = (message_id - self._base) & _ID_MASK
        if ahead < self.recv_window:
            self._owe_ack(message_id)
            if message_id in self._rbuf:
                self.duplicates_received += 1
                return False
            self._rbuf[message_id] = (opcode, bytes(payload))
            return True
        # Below base: handed up already. Only ids we really delivered, and no
        # further back than a peer's window could still be retransmitting.
        behind = (self._base - message_id) & _ID_MASK
        if 0 < behind <= self._delivered and behind <= self.recv_window:
            self._owe_ack(message_id)
            self.duplicates_received += 1
            return False
        self.dropped_received += 1
        return False

    def _owe_ack(self, message_id: int) -> None:
        if message_id not in self._acks and len(self._acks) < self.recv_window + _ACK_SLACK:
            self._acks.append(message_id)

    def deliver(self) -> list:
        """Messages now in order, as ``[(opcode, payload), ...]``, each once."""
        out = []
        while self._base in self._rbuf:
            out.append(self._rbuf.pop(self._base))
            self._base = (self._base + 1) & _ID_MASK
            self._delivered += 1
        return out

    def has_pending_acks(self) -> bool:
        """True while some received id has not been acked yet."""
        return bool(self._acks)

    # -- output -------------------------------------------------------------
    def _take_acks(self, limit: int) -> list:
        """Up to ``limit`` acks for one packet: owed ones first, then recent ones."""
        if limit <= 0:
            return []
        n = min(limit, len(self._acks))
        fresh = self._acks[:n]
        self._acks = self._acks[n:]
        mru = fresh + [a for a in self._ack_mru if a not in fresh]
        self._ack_mru = mru[:RELIABLE_ACK_SIZE]
        out = self._ack_mru[:limit]
        self.acks_sent += len(out)
        return out

    def packets_to_send(self, now_ms: int) -> list:
        """Everything due at ``now_ms``, as ``[(opcode, message_id, payload, acks)]``.

        First new and retransmitted reliable messages in id order, each with up
        to 4 acks; then, while acks are still owed, P_ACK_V1 entries
        ``(5, None, b"", acks)`` with up to 8 acks each.
        """
        self._now = now_ms
        self._fill_window()
        out = []
        for e in self._inflight:
            if not (e.next_try <= now_ms or e.n_acks >= N_ACK_RETRANSMIT):
                continue
            limit = 0 if e.opcode in self.no_ack_opcodes else CONTROL_SEND_ACK_MAX
            out.append((e.opcode, e.message_id, e.payload, self._take_acks(limit)))
            if e.sends:
                self.retransmissions += 1
            e.sends += 1
            e.next_try = now_ms + e.timeout
            e.timeout *= 2
            if self.max_timeout_ms is not None and e.timeout > self.max_timeout_ms:
                e.timeout = self.max_timeout_ms
            e.n_acks = 0
            self.packets_sent += 1
            self.bytes_sent += len(e.payload)
        while self._acks:
            out.append((P_ACK_V1, None, b"", self._take_acks(RELIABLE_ACK_SIZE)))
            self.packets_sent += 1
        return out

    def get_timer(self) -> "int | None":
        """Earliest ``now_ms`` at which ``packets_to_send`` sends something.

        A value not after the latest ``now_ms`` seen means "now"; None means
        nothing is pending (all acked, no acks owed).
        """
        if self._acks:
            return self._now
        best = None
        for e in self._inflight:
            if e.next_try < 0 or e.n_acks >= N_ACK_RETRANSMIT:
                return self._now
            if best is None or e.next_try < best:
                best = e.next_try
        return best
