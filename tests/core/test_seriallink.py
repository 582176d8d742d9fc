"""seriallink: packets over a line that loses, adds and damages bytes (issue 9, item 12).

Two Link ends talk over ``_linesim`` lines in virtual time at 115200 baud (87 µs a
byte), with the faults the simulated board's link model makes: a byte lost, one bit
of a byte flipped, a byte doubled. Every packet must arrive once, intact and in
order; a dead peer must cost a bounded number of bytes; nothing may raise.
"""

from _linesim import Lcg, Line, Pair, payloads
from _support import raises

from ovpnkx.errors import LocalProtocolError
from ovpnkx.serialframe import encode_frame
from ovpnkx.seriallink import (
    KIND_DATA, MAX_FRAGMENT, MIN_FRAGMENT, MSG_TIME, OVERHEAD, WINDOW, Link)

BYTE_US = 87  # 115200 baud, 8N1


def _pair(epoch_a=1, epoch_b=2, seed=1, **faults):
    a, b = Link(epoch_a, byte_us=BYTE_US), Link(epoch_b, byte_us=BYTE_US)
    ab = Line(BYTE_US, seed=seed, **faults)
    ba = Line(BYTE_US, seed=seed + 1, **faults)
    return Pair(a, b, ab, ba)


def _feeder(pair, to_b, to_a):
    """A hook that queues packets as the links take them (a full queue says no)."""
    def hook(p):
        while to_b and p.a.send(to_b[0], p.now_ms):
            to_b.pop(0)
        while to_a and p.b.send(to_a[0], p.now_ms):
            to_a.pop(0)
    return hook


def _exchange(pair, n, seed, until_ms=600000):
    """``n`` packets each way; returns (sent a->b, sent b->a, virtual ms taken)."""
    ab, ba = payloads(n, seed), payloads(n, seed + 7)
    pair.hook = _feeder(pair, list(ab), list(ba))
    t = pair.run(until_ms, lambda p: len(p.got_b) >= n and len(p.got_a) >= n)
    return ab, ba, t


def test_clean_line_delivers_in_order_and_grows_fragments():
    pair = _pair()
    ab, ba, t = _exchange(pair, 18, 3)
    assert pair.got_b == ab and pair.got_a == ba
    assert pair.a.stats["repeats"] == 0 and pair.a.stats["lost"] == 0
    assert pair.a.fragment_size() == MAX_FRAGMENT
    # on a clean line the cost per byte tends to OVERHEAD / MAX_FRAGMENT
    payload = sum(len(p) for p in ab)
    assert pair.ab.stats["in"] < payload * 1.25, (pair.ab.stats["in"], payload)


def test_one_percent_of_bytes_corrupted():
    pair = _pair(corrupt_ppm=10000, seed=5)
    ab, ba, t = _exchange(pair, 18, 11)
    assert pair.got_b == ab and pair.got_a == ba
    assert pair.ab.stats["corrupted"] > 100 and pair.ba.stats["corrupted"] > 100
    assert pair.a.stats["lost"] > 0 and pair.a.decoder.errors["crc"] + pair.a.decoder.errors["cobs"] > 0
    # the size that maximises goodput at 1 %: sqrt(OVERHEAD / 0.01) = 31.6
    assert 20 <= pair.a.fragment_size() <= 45, pair.a.fragment_size()
    assert t < 120000, t  # liveness in virtual time, not a speed figure


def test_lost_and_doubled_bytes():
    for faults in ({"drop_ppm": 1000}, {"drop_ppm": 10000}, {"dup_ppm": 10000}):
        pair = _pair(seed=9, **faults)
        ab, ba, t = _exchange(pair, 12, 21)
        assert pair.got_b == ab and pair.got_a == ba, faults


def test_message_frames_are_delivered_and_checked():
    pair = _pair()
    pair.a.send_message(MSG_TIME, b"2026-12-01T12:00:00Z")
    pair.a.send(b"packet")
    pair.run(1000, lambda p: p.got_b)
    assert pair.b.messages == [(MSG_TIME, b"2026-12-01T12:00:00Z")] and pair.got_b == [b"packet"]
    raises(LocalProtocolError, pair.a.send_message, 0x20, b"")
    raises(LocalProtocolError, pair.a.send_message, MSG_TIME, b"x" * 200)
    raises(LocalProtocolError, pair.a.send, "text")
    assert pair.a.send(b"x" * 3000) is False and pair.a.errors["oversize"] == 1  # longer than the peer takes
    raises(LocalProtocolError, Link, 256)
    raises(LocalProtocolError, Link, 1, 0, 2048, MAX_FRAGMENT + 1)


def test_queue_is_bounded():
    link = Link(3)
    taken = [link.send(bytes(100), 0) for _ in range(40)]
    assert taken.count(True) == link.max_queue and link.stats["dropped"] == 40 - link.max_queue
    big = Link(3, max_queue_bytes=3000)
    assert [big.send(bytes(1000), 0) for _ in range(4)] == [True, True, True, False]


def test_dead_peer_costs_bounded_bytes_then_silence():
    link = Link(7, byte_us=BYTE_US)
    for p in payloads(6, 4):
        link.send(p, 0)
    sent = len(link.bytes_to_send(0))
    now = 0
    while link.get_timer() is not None and now < 120000:
        now = link.get_timer()
        sent += len(link.bytes_to_send(now))
    assert link.stats["give_ups"] == 1 and link.get_timer() is None and link.idle
    assert now <= link.give_up_ms + 2 * 2000, now
    assert link.stats["timeouts"] < 15 and sent < 4000, (link.stats, sent)
    assert link.epoch == 8  # the next packets start a new sequence space
    link.send(b"later", now)
    assert link.bytes_to_send(now)


def _restart_b(pair, epoch):
    fresh = Link(epoch, byte_us=BYTE_US)
    pair.b = fresh
    pair.got_b = []
    return fresh


def test_peer_restart_resynchronises_both_ways():
    for new_epoch in (9, 2):  # a new epoch, and the same one again (a 1-in-256 chance on a board)
        pair = _pair(epoch_b=2)
        _exchange(pair, 9, 31)
        # b reboots while a still has packets in flight to it
        old = payloads(4, 41)
        for p in old:
            pair.a.send(p, pair.now_ms)
        pair.step()
        pair.now_ms += 5
        _restart_b(pair, new_epoch)
        got_a = len(pair.got_a)
        first = (payloads(6, 51), payloads(6, 52))
        pair.hook = _feeder(pair, list(first[0]), list(first[1]))
        pair.run(pair.now_ms + 30000, lambda p: p.a.idle and p.b.idle and p.now_ms > 2000)
        if new_epoch != 2:  # a new epoch loses nothing
            assert pair.got_b[-6:] == first[0] and pair.got_a[got_a:] == first[1], (pair.a.stats, pair.b.stats)
        # the same epoch may lose a few packets once (the layers above resend them), never garble one
        assert all(p in old + first[0] for p in pair.got_b)
        assert all(p in first[1] for p in pair.got_a[got_a:])
        # from then on, in step
        second = (payloads(6, 53), payloads(6, 54))
        n_b, n_a = len(pair.got_b), len(pair.got_a)
        pair.hook = _feeder(pair, list(second[0]), list(second[1]))
        pair.run(pair.now_ms + 30000, lambda p: len(p.got_b) >= n_b + 6 and len(p.got_a) >= n_a + 6)
        assert pair.got_b[n_b:] == second[0] and pair.got_a[n_a:] == second[1], new_epoch


def test_joining_mid_stream():
    pair = _pair()
    _exchange(pair, 20, 61)  # seqs well past the window
    _restart_b(pair, 40)
    ab = payloads(5, 71)
    pair.hook = _feeder(pair, list(ab), [])
    pair.run(pair.now_ms + 30000, lambda p: p.got_b[-5:] == ab)
    assert pair.got_b == ab


def test_console_text_between_frames():
    """The REPL port: the board's console lines sit between frames, unframed."""
    pair = _pair()
    sent = [0]

    def text(p):
        sent[0] += 1
        if sent[0] % 7 == 0:
            p.ba.put(b'OVPNKX {"event": "state", "at_ms": 12}\r\n', p.now_ms * 1000)
    pair.hook = None
    ab = payloads(9, 81)
    feed = _feeder(pair, list(ab), [])

    def hook(p):
        feed(p)
        text(p)
    pair.hook = hook
    pair.run(60000, lambda p: len(p.got_b) >= 9)
    assert pair.got_b == ab and pair.a.decoder.errors["crc"] + pair.a.decoder.errors["cobs"] > 0


def test_garbage_never_raises_nor_delivers():
    link = Link(5)
    rng = Lcg(99)
    for i in range(300):  # noise: nothing passes the CRC
        chunk = bytes(rng.below(256) for _ in range(rng.below(80)))
        assert link.receive(chunk, i) == []
        link.bytes_to_send(i)
    assert sum(link.decoder.errors.values()) > 30
    got = []
    for i in range(2000):  # frames with a right CRC and nonsense inside
        kind = (KIND_DATA | rng.below(4), 0xA0, 0x80 + rng.below(32), rng.below(256))[rng.below(4)]
        body = bytes([kind]) + bytes(rng.below(256) for _ in range(rng.below(80)))
        if rng.below(2):
            body = body[:2] + bytes([rng.below(3)]) + body[3:]  # epoch 0..2: seqs land in the window
        got += link.receive(encode_frame(body[:72]), 300 + i)
        link.bytes_to_send(300 + i)
        assert link._rx_hold_bytes <= link.rx_hold_bytes and len(link.messages) <= 8
    assert all(len(p) <= link.max_payload for p in got)
    assert link.errors["kind"] > 0 and link.stats["fragments_in"] > 0


def test_old_framing_is_recognised():
    link = Link(5)
    assert link.receive(encode_frame(b"\x38" + bytes(13)), 0) == []
    assert link.errors["old_framing"] == 1
    assert link.receive(encode_frame(b"\x00\x01"), 0) == [] and link.errors["kind"] == 1


def test_ack_covers_the_window():
    a, b = Link(1, fragment=MIN_FRAGMENT, max_inflight_bytes=1 << 20), Link(2)
    a.send(bytes(MIN_FRAGMENT * (WINDOW + 10)), 0)
    wire = a.bytes_to_send(0)
    assert a.stats["fragments_out"] == WINDOW - 1  # the window, not the packet, sets the burst
    frames = wire.split(b"\x00")
    # lose the first fragment: b holds the other 62 and says so in its ack's bitmap
    rest = b"\x00" + b"\x00".join(frames[2:])
    assert b.receive(rest, 1) == []
    ack = b.bytes_to_send(1)
    a.receive(ack, 2)
    assert a.stats["lost"] == 1
    again = a.bytes_to_send(2)
    assert b.receive(again, 3) == [] and b.bytes_to_send(3)
    assert len(again) < 2 * (MIN_FRAGMENT + OVERHEAD) + 20  # only the lost one, plus new ones later
