"""Packets over a noisy serial line: small checked fragments, selective repeat.

Sans-IO, shared by the device (``ovpnkx_device.serial``) and the host
(``ovpnkx_host.serial_link``). Each OpenVPN packet is cut into fragments of 16..64
bytes; each fragment is one ``serialframe`` frame (COBS, CRC-32, 0x00 delimiters)
with a 3-byte header, so a damaged byte costs one small fragment, which is sent
again, and not the whole packet. The receiver acknowledges what it holds (the next
sequence number it needs and a bitmap of the 63 after it); the sender resends
exactly the fragments that are missing. The line keeps bytes in order, so a
fragment is known lost as soon as one sent after it is acknowledged (no timer
needed); a timer (RTO) covers the tail. The fragment size follows the measured
error rate. See docs/serial-framing.md for the wire format and the arithmetic.

Frame bodies (before the CRC; first byte = kind, never an OpenVPN first byte
0x08..0x5F, so a peer still on the old one-packet-per-frame framing is recognised):

- ``0xD0|flags epoch seq payload``: a fragment. flags: 0x01 first of a packet,
  0x02 last. ``epoch`` names the sender's sequence space, which starts at seq 0.
- ``0xA0 epoch next [bitmap]``: acknowledges every seq before ``next`` in the
  sender's ``epoch``; bit i of the bitmap (LSB first) stands for ``next + 1 + i``.
- ``0x80..0x9F payload``: a link message, one frame, not repeated (e.g. the host's
  time for a board, kind ``MSG_TIME``); handed to the caller in ``messages``.

A sender starts a new epoch when it starts, when its peer stops answering for
``give_up_ms`` (its queue is then dropped: the peer is gone or rebooted), and when
an acknowledgement shows that the peer is in another sequence space (rebooted
with the same epoch). Nothing here raises for bad bytes: damaged frames are
counted in ``decoder.errors``, frames of unknown kind in ``errors``.
"""

from ._compat import TYPE_CHECKING, const
from .errors import LocalProtocolError
from .serialframe import DELIMITER, FrameDecoder, _crc, cobs_encode

if TYPE_CHECKING:
    from circuitpython_typing import ReadableBuffer

KIND_DATA = const(0xD0)
KIND_ACK = const(0xA0)
MSG_FIRST = const(0x80)
MSG_LAST = const(0x9F)
MSG_TIME = const(0x80)  # reserved: the host's wall-clock time for a board (payload defined by its user)
START = const(0x01)
END = const(0x02)

WINDOW = const(64)  # fragments in flight; < 128 so that old and new seqs never look alike
MIN_FRAGMENT = const(16)
MAX_FRAGMENT = const(64)
MAX_MESSAGE = const(64)
# wire bytes of a fragment besides its payload: kind, epoch, seq, CRC-32, COBS code, delimiter
OVERHEAD = const(10)
_MAX_BODY = const(72)  # the longest frame body we accept (header + MAX_FRAGMENT, or a message)
_ACK_EVERY = const(4)  # acknowledge at once after this many fragments
_ACK_DELAY_MS = const(20)  # otherwise within this long
_RTO_FIRST = const(250)
_RTO_MIN = const(60)
_RTO_MAX = const(1000)
_MSG_QUEUE = const(8)
_PROBES = const(4)
# a fragment in flight: [packet, offset, length, flags, transmission no., on-wire ms, sends]
# (the packet is shared by its fragments: the payload is cut from it when sent)
_PKT = const(0)
_OFF = const(1)
_LEN = const(2)
_FLG = const(3)
_XMIT = const(4)
_SENT = const(5)
_TRIES = const(6)  # fragments sent again when the RTO fires: a few, for a busy peer's sake
_ERR_WINDOW = const(16384)  # wire bytes over which the error rate is estimated
# the counters of ``stats``, by index; their names in one string, so that a board interns none
_COUNTS = ("packets_out packets_in fragments_out fragments_in repeats lost timeouts acks_out acks_in duplicates "
           "dropped discarded give_ups resyncs rx_resyncs bytes_out")
_PACKETS_OUT = const(0)
_PACKETS_IN = const(1)
_FRAGMENTS_OUT = const(2)
_FRAGMENTS_IN = const(3)
_REPEATS = const(4)
_LOST = const(5)
_TIMEOUTS = const(6)
_ACKS_OUT = const(7)
_ACKS_IN = const(8)
_DUPLICATES = const(9)
_DROPPED = const(10)
_DISCARDED = const(11)
_GIVE_UPS = const(12)
_RESYNCS = const(13)
_RX_RESYNCS = const(14)
_BYTES_OUT = const(15)
_N_COUNTS = const(16)


class Link:
    """One end of the link: ``send``/``receive`` packets, ``bytes_to_send`` for the line.

    ``epoch``: 0..255, different at every start (a random byte from the adapter).
    ``byte_us``: microseconds a byte takes on the wire (10e6 / baud for 8N1; 0 if
    unknown), so that a fragment's timer starts when it has left, not when it was
    queued behind others. ``fragment``: a fixed fragment size (0: follow the error
    rate). Queues are bounded: ``max_queue`` packets (``max_queue_bytes``) wait to
    be sent, beyond that a packet is dropped and counted (the layers above resend);
    at most ``max_inflight_bytes`` of fragments are unacknowledged, and at most
    ``rx_hold_bytes`` are held out of order on receipt.

    Driven as the session is: ``receive(data, now_ms)`` returns the packets that
    ``data`` completes; ``bytes_to_send(now_ms)`` returns what to write now
    (acknowledgements, repeats, new fragments); call it again by ``get_timer()``.
    """

    def __init__(self, epoch: int, byte_us: int = 0, max_payload: int = 2048, fragment: int = 0,
                 max_queue: int = 16, max_queue_bytes: int = 16384, max_inflight_bytes: int = 2048,
                 rx_hold_bytes: int = 2048, give_up_ms: int = 10000) -> None:
        if not 0 <= epoch <= 255:
            raise LocalProtocolError("epoch must be 0..255")
        if fragment and not MIN_FRAGMENT <= fragment <= MAX_FRAGMENT:
            raise LocalProtocolError("fragment must be 0 or %d..%d" % (MIN_FRAGMENT, MAX_FRAGMENT))
        self.byte_us = byte_us
        self.max_payload = max_payload
        self.fragment = fragment
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_inflight_bytes = max_inflight_bytes
        self.rx_hold_bytes = rx_hold_bytes
        self.give_up_ms = give_up_ms
        self.decoder = FrameDecoder(_MAX_BODY)
        self.messages = []  # type: list  # (kind, payload) received; the caller takes them
        self.errors = {"kind": 0, "short": 0, "old_framing": 0, "oversize": 0}
        self._counts = [0] * _N_COUNTS  # what ``stats`` names
        # sender
        self.epoch = epoch
        self._tx_next = 0
        self._tx_base = 0
        self._inflight = {}  # type: dict  # seq -> a fragment (_PKT.._TRIES)
        self._inflight_bytes = 0
        self._queue = []  # type: list
        self._queue_bytes = 0
        self._cur = b""  # the packet being cut
        self._cur_off = -1  # where in it (-1: none is)
        self._xmit = 0
        self._acked_xmit = 0
        self._repeat = []  # type: list  # seqs to send again
        self._srtt = -1
        self._rttvar = 0
        self._rto = _RTO_FIRST
        self._rto_at = -1
        self._stall_at = -1
        self._timeouts_in_row = 0
        self._line_free_us = 0
        self._sample = -1  # the round trip measured by the acknowledgement being read
        # fragments lost (x16, so that halving keeps precision) per wire byte of fragments
        # whose fate is known; prior: 40-byte fragments until the line shows itself
        self._err_bytes = 160
        self._err_lost16 = 16
        self._size = 0  # fragment_size() cached (0: to compute)
        self._msg_out = []  # type: list
        # receiver
        self._rx_epoch = -1
        self._rx_next = 0
        self._rx_hold = {}  # type: dict  # seq -> (flags, payload)
        self._rx_hold_bytes = 0
        self._asm = None  # type: bytearray | None
        self._ack_at = -1
        self._rx_unacked = 0

    @property
    def stats(self) -> dict:
        """The counters by name (``packets_out``, ``repeats``, ``lost``, ...; a new dict)."""
        return dict(zip(_COUNTS.split(), self._counts))

    # ---- sending ----

    def send(self, packet: "bytes | bytearray", now_ms: int = 0) -> bool:
        """Queue one packet; False (counted in ``stats["dropped"]``) if the queue is full
        or the packet is longer than ``max_payload`` (the peer would refuse it: a relay
        may be handed one by a server)."""
        if not isinstance(packet, (bytes, bytearray)):
            raise LocalProtocolError("packet must be bytes")
        if len(packet) > self.max_payload:
            self._counts[_DROPPED] += 1
            self.errors["oversize"] += 1
            return False
        if len(self._queue) >= self.max_queue or self._queue_bytes + len(packet) > self.max_queue_bytes:
            self._counts[_DROPPED] += 1
            return False
        self._queue.append(bytes(packet))
        self._queue_bytes += len(packet)
        return True

    def send_message(self, kind: int, payload: "bytes | bytearray" = b"") -> None:
        """Queue one link message (sent once, may be lost); the oldest goes if 8 wait."""
        if not MSG_FIRST <= kind <= MSG_LAST:
            raise LocalProtocolError("message kind must be 0x%02x..0x%02x" % (MSG_FIRST, MSG_LAST))
        if len(payload) > MAX_MESSAGE:
            raise LocalProtocolError("message longer than %d bytes" % MAX_MESSAGE)
        if len(self._msg_out) >= _MSG_QUEUE:
            self._msg_out.pop(0)
        self._msg_out.append(bytes([kind]) + bytes(payload))

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight or to acknowledge."""
        return not (self._queue or self._inflight or self._cur_off >= 0 or self._msg_out or self._ack_at >= 0)

    def fragment_size(self) -> int:
        """The payload size of the next new fragment: sqrt(OVERHEAD / error rate), which
        maximises payload bytes delivered per wire byte, within 16..64."""
        if self.fragment:
            return self.fragment
        if not self._size:
            size = int((OVERHEAD * 16 * self._err_bytes // self._err_lost16) ** 0.5)
            self._size = MIN_FRAGMENT if size < MIN_FRAGMENT else MAX_FRAGMENT if size > MAX_FRAGMENT else size
        return self._size

    def get_timer(self) -> "int | None":
        """When ``bytes_to_send`` has something due without new input (ms), or None."""
        t = self._ack_at  # no tuple of the two: a device asks at every turn of its loop
        rto = self._rto_at if self._inflight else -1
        if rto >= 0 and (t < 0 or rto < t):
            t = rto
        return None if t < 0 else t

    def bytes_to_send(self, now_ms: int) -> bytes:
        """Frames due now, delimited, ready for the line (b"" when none)."""
        if not (self._msg_out or self._repeat or self._queue or self._cur_off >= 0 or 0 <= self._ack_at <= now_ms
                or (self._inflight and (self._rto_at <= now_ms))):
            return b""  # nothing due: a device asks at every turn of its loop, so this makes no garbage
        frames = []  # type: list
        if self._ack_at >= 0 and now_ms >= self._ack_at:
            frames.append(self._ack_body())
        frames += self._msg_out
        self._msg_out = []
        if self._inflight and 0 <= self._rto_at <= now_ms:
            self._timeout(now_ms)
        out = bytearray()
        now_us = now_ms * 1000
        for body in frames:
            self._put(out, body, now_us)
        # the base as a default, not a closure: a closed-over local is made at every call,
        # the early return's included
        def after_base(seq: int, base: int = self._tx_base) -> int:
            return (seq - base) & 0xFF

        self._repeat.sort(key=after_base)
        for seq in self._repeat:
            f = self._inflight.get(seq)
            if f is not None:
                self._counts[_REPEATS] += 1
                self._put_fragment(out, seq, f, now_us)
        self._repeat = []
        while self._window_open():
            seq = self._tx_next
            f = self._new_fragment()
            if f is None:
                break
            self._inflight[seq] = f
            self._inflight_bytes += f[_LEN]
            self._tx_next = (seq + 1) & 0xFF
            self._put_fragment(out, seq, f, now_us)
        if self._inflight and self._rto_at < 0:
            self._rto_at = self._line_free_us // 1000 + self._rto
        if not out:
            return b""
        self._counts[_BYTES_OUT] += len(out) + 1
        return DELIMITER + bytes(out)

    def _put(self, out: bytearray, body: bytes, now_us: int) -> None:
        frame = cobs_encode(body + _crc(body))
        out += frame
        out += DELIMITER
        start = self._line_free_us if self._line_free_us > now_us else now_us
        self._line_free_us = start + (len(frame) + 1) * self.byte_us

    def _put_fragment(self, out: bytearray, seq: int, f: list, now_us: int) -> None:
        off = f[_OFF]
        self._put(out, bytes((KIND_DATA | f[_FLG], self.epoch, seq)) + f[_PKT][off:off + f[_LEN]], now_us)
        self._xmit += 1
        f[_XMIT] = self._xmit
        f[_SENT] = self._line_free_us // 1000
        f[_TRIES] += 1
        self._counts[_FRAGMENTS_OUT] += 1

    def _window_open(self) -> bool:
        return (((self._tx_next - self._tx_base) & 0xFF) < WINDOW - 1
                and self._inflight_bytes < self.max_inflight_bytes)

    def _new_fragment(self) -> "list | None":
        if self._cur_off < 0:
            if not self._queue:
                return None
            self._cur = self._queue.pop(0)
            self._queue_bytes -= len(self._cur)
            self._cur_off = 0
            self._counts[_PACKETS_OUT] += 1
        off = self._cur_off
        packet = self._cur
        n = len(packet) - off
        size = self.fragment_size()
        if n > size:
            n = size
        flags = START if off == 0 else 0
        if off + n >= len(packet):
            flags |= END
            self._cur = b""
            self._cur_off = -1
        else:
            self._cur_off = off + n
        return [packet, off, n, flags, 0, 0, 0]

    def _timeout(self, now_ms: int) -> None:
        """Nothing was acknowledged for an RTO: send the oldest few fragments again
        (their acknowledgement shows what else is missing), back off, and give up
        after ``give_up_ms`` without progress (the peer is gone)."""
        self._counts[_TIMEOUTS] += 1
        if self._stall_at < 0:
            self._stall_at = now_ms
        elif now_ms - self._stall_at >= self.give_up_ms:
            self._counts[_GIVE_UPS] += 1
            self._restart(keep_queue=False)
            return
        seq = self._tx_base
        n = 0
        while seq != self._tx_next and n < _PROBES:
            if seq in self._inflight and seq not in self._repeat:
                self._repeat.append(seq)
                n += 1
            seq = (seq + 1) & 0xFF
        # back off only from the second timeout in a row: one lost tail is the line's
        # noise, several in a row a peer that is busy (or gone)
        self._timeouts_in_row += 1
        if self._timeouts_in_row >= 2:
            self._rto = min(self._rto * 2, _RTO_MAX)
        start = self._line_free_us // 1000
        self._rto_at = (start if start > now_ms else now_ms) + self._rto

    def _restart(self, keep_queue: bool) -> None:
        """A new epoch. ``keep_queue``: the peer is there but counts differently (it
        restarted): the packets in flight go first in the queue, whole, to be sent
        again. Otherwise the peer is gone and everything is dropped (counted)."""
        if keep_queue:
            again = []  # type: list
            base = self._tx_base
            for k in range((self._tx_next - base) & 0xFF):
                f = self._inflight.get((base + k) & 0xFF)
                if f is not None and (not again or again[-1] is not f[_PKT]):
                    again.append(f[_PKT])
            if self._cur_off >= 0 and (not again or again[-1] is not self._cur):
                again.append(self._cur)
            self._queue = again + self._queue
            self._queue_bytes += sum(len(p) for p in again)
        else:
            self._counts[_DROPPED] += len(self._queue) + (1 if self._inflight or self._cur_off >= 0 else 0)
            self._queue = []
            self._queue_bytes = 0
        self.epoch = (self.epoch + 1) & 0xFF
        self._tx_next = self._tx_base = 0
        self._inflight = {}
        self._inflight_bytes = 0
        self._cur, self._cur_off = b"", -1
        self._repeat = []
        self._rto_at = self._stall_at = -1
        self._timeouts_in_row = 0
        self._rto = _RTO_FIRST if self._srtt < 0 else self._rto_from_srtt()

    def _rto_from_srtt(self) -> int:
        rto = self._srtt + max(4 * self._rttvar, 20)
        return _RTO_MIN if rto < _RTO_MIN else _RTO_MAX if rto > _RTO_MAX else rto

    # ---- receiving ----

    def receive(self, data: "ReadableBuffer", now_ms: int) -> list:
        """Take bytes from the line; return the packets they complete, in order."""
        out = []  # type: list
        for body in self.decoder.feed(data):
            kind = body[0] if body else 0
            if kind & 0xFC == KIND_DATA:
                self._on_data(body, now_ms, out)
            elif kind == KIND_ACK:
                self._on_ack(body, now_ms)
            elif MSG_FIRST <= kind <= MSG_LAST:
                if len(self.messages) >= _MSG_QUEUE:
                    self.messages.pop(0)
                self.messages.append((kind, body[1:]))
            elif 0x08 <= kind <= 0x5F:
                self.errors["old_framing"] += 1  # a whole OpenVPN packet: the peer's firmware is older
            else:
                self.errors["kind"] += 1
        return out

    def _ack_now(self, now_ms: int) -> None:
        self._ack_at = now_ms

    def _on_data(self, body: bytes, now_ms: int, out: list) -> None:
        if len(body) < 3:
            self.errors["short"] += 1
            return
        if len(body) - 3 > MAX_FRAGMENT:
            self.errors["oversize"] += 1
            return
        flags, epoch, seq = body[0] & 3, body[1], body[2]
        self._counts[_FRAGMENTS_IN] += 1
        if epoch != self._rx_epoch:
            # the sender started a new sequence space at seq 0; when we just started
            # ourselves, we may be joining one in its middle
            fresh = self._rx_epoch < 0
            self._rx_epoch = epoch
            self._rx_next = seq if fresh and seq >= WINDOW else 0
            self._rx_hold = {}
            self._rx_hold_bytes = 0
            if self._asm is not None:
                self._counts[_DISCARDED] += 1
            self._asm = None
            self._counts[_RX_RESYNCS] += 1
        self._rx_unacked += 1
        d = (seq - self._rx_next) & 0xFF
        if d >= WINDOW:  # seen before (its ack was lost), or from outside our window
            self._counts[_DUPLICATES] += 1
            self._ack_now(now_ms)
            return
        if d:
            if seq in self._rx_hold:
                self._counts[_DUPLICATES] += 1
            elif self._rx_hold_bytes + len(body) <= self.rx_hold_bytes:
                self._rx_hold[seq] = (flags, body[3:])
                self._rx_hold_bytes += len(body)
            self._ack_now(now_ms)  # a gap: tell the sender at once
            return
        self._take(flags, body[3:], out)
        nxt = (seq + 1) & 0xFF
        filled = nxt in self._rx_hold
        while nxt in self._rx_hold:
            f, p = self._rx_hold.pop(nxt)
            self._rx_hold_bytes -= len(p) + 3
            self._take(f, p, out)
            nxt = (nxt + 1) & 0xFF
        self._rx_next = nxt
        if filled or flags & END or self._rx_unacked >= _ACK_EVERY:
            self._ack_now(now_ms)
        elif self._ack_at < 0:
            self._ack_at = now_ms + _ACK_DELAY_MS

    def _take(self, flags: int, payload: bytes, out: list) -> None:
        """The next fragment in order: reassemble; a packet is done at its last fragment."""
        asm = self._asm
        if flags & START:
            if asm is not None:
                self._counts[_DISCARDED] += 1  # a packet without its end (after a resync)
            asm = bytearray(payload)
        elif asm is None:
            self._counts[_DISCARDED] += 1  # the middle of a packet we joined late
            return
        else:
            asm += payload
        if len(asm) > self.max_payload:
            self.errors["oversize"] += 1
            self._asm = None
            return
        if flags & END:
            out.append(bytes(asm))
            self._counts[_PACKETS_IN] += 1
            asm = None
        self._asm = asm

    def _ack_body(self) -> bytes:
        bits = bytearray(8)
        top = 0
        for seq in self._rx_hold:
            off = ((seq - self._rx_next) & 0xFF) - 1
            bits[off >> 3] |= 1 << (off & 7)
            if (off >> 3) + 1 > top:
                top = (off >> 3) + 1
        self._ack_at = -1
        self._rx_unacked = 0
        self._counts[_ACKS_OUT] += 1
        return bytes((KIND_ACK, self._rx_epoch & 0xFF, self._rx_next)) + bytes(bits[:top])

    def _on_ack(self, body: bytes, now_ms: int) -> None:
        if len(body) < 3 or len(body) > 11:
            self.errors["short"] += 1
            return
        self._counts[_ACKS_IN] += 1
        if body[1] != self.epoch or not self._inflight:
            return  # for an earlier epoch, or nothing to learn
        base = self._tx_base
        span = (self._tx_next - base) & 0xFF
        nxt = body[2]
        dn = (nxt - base) & 0xFF
        if dn > span:  # the peer counts in another sequence space (it restarted)
            self._counts[_RESYNCS] += 1
            self._restart(keep_queue=True)
            return
        self._sample = -1
        before = len(self._inflight)
        for k in range(dn):
            self._acked((base + k) & 0xFF, now_ms)
        for j in range(3, len(body)):  # the bitmap
            byte = body[j]
            seq = nxt + 1 + 8 * (j - 3)
            while byte:
                if byte & 1 and ((seq - base) & 0xFF) < span:
                    self._acked(seq & 0xFF, now_ms)
                byte >>= 1
                seq += 1
        if len(self._inflight) == before:
            return
        sample = self._sample
        while self._tx_base != self._tx_next and self._tx_base not in self._inflight:
            self._tx_base = (self._tx_base + 1) & 0xFF
        if sample >= 0:
            if self._srtt < 0:
                self._srtt, self._rttvar = sample, sample // 2
            else:
                self._rttvar = (3 * self._rttvar + abs(self._srtt - sample)) // 4
                self._srtt = (7 * self._srtt + sample) // 8
        self._rto = self._rto_from_srtt() if self._srtt >= 0 else _RTO_FIRST
        self._stall_at = -1
        self._timeouts_in_row = 0
        start = self._line_free_us // 1000
        self._rto_at = ((start if start > now_ms else now_ms) + self._rto) if self._inflight else -1
        # the line keeps order: what was sent before an acknowledged fragment and is
        # still unacknowledged was lost
        for seq in self._inflight:
            f = self._inflight[seq]
            if f[_XMIT] < self._acked_xmit and seq not in self._repeat:
                self._repeat.append(seq)
                self._counts[_LOST] += 1
                self._fate(f[_LEN], 1)

    def _fate(self, size: int, lost: int) -> None:
        """A fragment's fate is known: count it for the error rate (as wire bytes)."""
        self._err_bytes += size + OVERHEAD
        if lost:
            self._err_lost16 += 16
            self._size = 0
        if self._err_bytes > _ERR_WINDOW:
            self._decay()

    def _decay(self) -> None:
        """Halve the error counts: the rate follows the last ~16 KB."""
        self._err_bytes //= 2
        self._err_lost16 = (self._err_lost16 + 1) // 2
        self._size = 0

    def _acked(self, seq: int, now_ms: int) -> None:
        f = self._inflight.pop(seq, None)
        if f is None:
            return
        n = f[_LEN]
        self._inflight_bytes -= n
        self._err_bytes += n + OVERHEAD  # _fate(n, 0), inline: once per fragment
        if self._err_bytes > _ERR_WINDOW:
            self._decay()
        elif self._err_bytes & 0x3FF < n + OVERHEAD:
            self._size = 0  # a clean KB more: the size may grow
        if f[_XMIT] > self._acked_xmit:
            self._acked_xmit = f[_XMIT]
        if f[_TRIES] == 1:  # sent once: its round trip is a clean sample (Karn)
            self._sample = now_ms - f[_SENT] if now_ms > f[_SENT] else 0
