"""The reliability layer: ids, windows, acks, retransmission, reordering."""

from ovpnkx.errors import LocalProtocolError
from ovpnkx.reliable import ReliableLayer, rx_payload_max

from _support import raises

P_CONTROL_V1 = 4
P_ACK_V1 = 5
HARD_RESET_CLIENT = 7
HARD_RESET_SERVER = 8


def _permutations(items):
    if len(items) <= 1:
        yield list(items)
        return
    for i in range(len(items)):
        for rest in _permutations(items[:i] + items[i + 1:]):
            yield [items[i]] + rest


class _Rng:
    """xorshift32: the same deterministic stream on both runtimes (tests only)."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n

    def chance(self, percent):
        return self.below(100) < percent


def _ids(packets):
    return [p[1] for p in packets]


# -- ids and first packets ----------------------------------------------------

def test_ids_start_at_zero_and_count_up():
    r = ReliableLayer()
    assert r.send(HARD_RESET_CLIENT, b"") == 0
    assert r.send(P_CONTROL_V1, b"hello") == 1
    out = r.packets_to_send(0)
    assert out == [(HARD_RESET_CLIENT, 0, b"", []), (P_CONTROL_V1, 1, b"hello", [])]
    assert r.packets_to_send(0) == []  # nothing due until the timeout


def test_send_refuses_ack_opcode():
    raises(LocalProtocolError, ReliableLayer().send, P_ACK_V1, b"")


def test_bad_construction_refused():
    raises(LocalProtocolError, ReliableLayer, 0)
    raises(LocalProtocolError, ReliableLayer, 6, 12, 0)
    raises(LocalProtocolError, ReliableLayer, initial_packet_id=1 << 32)
    raises(LocalProtocolError, ReliableLayer, max_payload=0)


# -- receiving ----------------------------------------------------------------

def test_in_order_delivery_from_every_permutation():
    ids = [0, 1, 2, 3, 4]
    for perm in _permutations(ids):
        r = ReliableLayer()
        got = []
        for i in perm:
            assert r.receive(i, P_CONTROL_V1, b"m%d" % i) is True
            got += r.deliver()
        assert got == [(P_CONTROL_V1, b"m%d" % i) for i in ids], perm
        assert r.deliver() == []


def test_every_permutation_then_replayed_delivers_once():
    ids = [0, 1, 2, 3]
    for perm in _permutations(ids):
        r = ReliableLayer()
        got = []
        for i in perm + perm[::-1]:
            r.receive(i, P_CONTROL_V1, b"%d" % i)
            got += r.deliver()
        assert [p for _, p in got] == [b"0", b"1", b"2", b"3"], perm
        # every copy was acked, each id once per pending list
        acks = []
        for pkt in r.packets_to_send(0):
            acks += pkt[3]
        assert sorted(set(acks)) == ids


def test_buffered_duplicate_not_buffered_again_but_acked():
    r = ReliableLayer()
    assert r.receive(1, P_CONTROL_V1, b"one") is True
    assert r.deliver() == []  # 0 missing
    assert r.packets_to_send(0) == [(P_ACK_V1, None, b"", [1])]
    assert not r.has_pending_acks()
    assert r.receive(1, P_CONTROL_V1, b"one again") is False
    assert r.has_pending_acks()
    assert r.packets_to_send(10)[0][3][0] == 1
    assert r.receive(0, P_CONTROL_V1, b"zero") is True
    assert r.deliver() == [(P_CONTROL_V1, b"zero"), (P_CONTROL_V1, b"one")]
    assert r.duplicates_received == 1


def test_delivered_duplicate_acked_again():
    r = ReliableLayer()
    r.receive(0, HARD_RESET_SERVER, b"")
    assert r.deliver() == [(HARD_RESET_SERVER, b"")]
    r.packets_to_send(0)
    assert not r.has_pending_acks()
    # the peer did not get our ack and resends its reset
    assert r.receive(0, HARD_RESET_SERVER, b"") is False
    assert r.deliver() == []
    assert r.packets_to_send(2000) == [(P_ACK_V1, None, b"", [0])]


def test_beyond_receive_window_dropped_without_ack():
    r = ReliableLayer()
    assert r.receive(12, P_CONTROL_V1, b"x") is False
    assert not r.has_pending_acks()
    assert r.receive(11, P_CONTROL_V1, b"x") is True
    assert r.has_pending_acks()
    assert r.dropped_received == 1
    # once 0 is delivered the window slides by one
    r.receive(0, P_CONTROL_V1, b"0")
    assert len(r.deliver()) == 1
    assert r.receive(12, P_CONTROL_V1, b"x") is True


def test_hostile_ids_never_crash_or_ack():
    r = ReliableLayer()
    for bad in (-1, 1 << 32, 1 << 80, -(1 << 40), None, "3", 1.5, 0x80000000, 0xFFFFFFFF):
        assert r.receive(bad, P_CONTROL_V1, b"x") is False
    assert not r.has_pending_acks()
    assert r.deliver() == []
    assert r.get_timer() is None


def test_old_ids_acked_only_if_really_delivered():
    r = ReliableLayer()
    for i in range(3):
        r.receive(i, P_CONTROL_V1, b"")
    r.deliver()
    r.packets_to_send(0)
    assert r.receive(2, P_CONTROL_V1, b"") is False and r.has_pending_acks()
    r.packets_to_send(0)
    # 3 back from base 3 is id 0xFFFFFFFF: never received, so not acked
    assert r.receive(0xFFFFFFFF, P_CONTROL_V1, b"") is False
    assert not r.has_pending_acks()


def test_pending_acks_bounded():
    r = ReliableLayer()
    for rounds in range(50):
        for i in range(12):
            r.receive(i, P_CONTROL_V1, b"")
    assert len(r.packets_to_send(0)) == 2  # 12 distinct ids: 8 + 4


# -- acks out -----------------------------------------------------------------

def test_at_most_four_acks_piggybacked_then_pure_acks_of_eight():
    r = ReliableLayer()
    for i in range(10):
        r.receive(i, P_CONTROL_V1, b"")
    r.send(P_CONTROL_V1, b"data")
    out = r.packets_to_send(0)
    assert out[0] == (P_CONTROL_V1, 0, b"data", [0, 1, 2, 3])
    assert len(out) == 2
    op, mid, payload, acks = out[1]
    assert (op, mid, payload) == (P_ACK_V1, None, b"")
    # the 6 still owed, topped up with recently sent acks to 8
    assert acks[:6] == [4, 5, 6, 7, 8, 9] and len(acks) == 8
    assert not r.has_pending_acks()


def test_pure_acks_split_by_eight():
    r = ReliableLayer()
    for i in range(12):
        r.receive(i, P_CONTROL_V1, b"")
    out = r.packets_to_send(0)
    assert [p[0] for p in out] == [P_ACK_V1, P_ACK_V1]
    assert out[0][3] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert out[1][3][:4] == [8, 9, 10, 11] and len(out[1][3]) == 8
    for p in out:
        assert len(p[3]) <= 8


def test_no_ack_opcodes_carry_no_acks():
    r = ReliableLayer(no_ack_opcodes=(HARD_RESET_SERVER,))
    r.receive(0, HARD_RESET_CLIENT, b"")
    r.send(HARD_RESET_SERVER, b"")
    out = r.packets_to_send(0)
    assert out == [(HARD_RESET_SERVER, 0, b"", []), (P_ACK_V1, None, b"", [0])]


def test_peer_reset_ack_rides_on_first_control_and_its_retransmissions():
    # The 2.6 UDP server's cookie check drops a P_CONTROL_V1 without an ack.
    c = ReliableLayer()
    c.send(HARD_RESET_CLIENT, b"")
    assert c.packets_to_send(0) == [(HARD_RESET_CLIENT, 0, b"", [])]
    c.process_acks([0], 50)
    c.receive(0, HARD_RESET_SERVER, b"")
    c.deliver()
    c.send(P_CONTROL_V1, b"ClientHello")
    assert c.packets_to_send(50) == [(P_CONTROL_V1, 1, b"ClientHello", [0])]
    # lost: the retransmission carries the ack again, though none is owed
    assert not c.has_pending_acks()
    assert c.packets_to_send(2050) == [(P_CONTROL_V1, 1, b"ClientHello", [0])]


def test_ack_sent_alone_is_repeated_on_next_control():
    c = ReliableLayer()
    c.receive(0, HARD_RESET_SERVER, b"")
    assert c.packets_to_send(0) == [(P_ACK_V1, None, b"", [0])]
    c.send(P_CONTROL_V1, b"ClientHello")
    assert c.packets_to_send(1) == [(P_CONTROL_V1, 0, b"ClientHello", [0])]


# -- retransmission -----------------------------------------------------------

def test_retransmit_after_2_4_8_16_seconds():
    r = ReliableLayer()
    r.send(P_CONTROL_V1, b"x")
    assert len(r.packets_to_send(1000)) == 1
    t = 1000
    for gap in (2000, 4000, 8000, 16000):
        assert r.get_timer() == t + gap
        assert r.packets_to_send(t + gap - 1) == []
        t += gap
        assert _ids(r.packets_to_send(t)) == [0]
    assert r.retransmissions == 4
    assert r.packets_sent == 5 and r.bytes_sent == 5


def test_backoff_cap():
    r = ReliableLayer(max_timeout_ms=5000)
    r.send(P_CONTROL_V1, b"x")
    t = 0
    r.packets_to_send(t)
    gaps = []
    for _ in range(5):
        nxt = r.get_timer()
        gaps.append(nxt - t)
        t = nxt
        r.packets_to_send(t)
    assert gaps == [2000, 4000, 5000, 5000, 5000]


def test_custom_timeout():
    r = ReliableLayer(timeout_ms=500)
    r.send(P_CONTROL_V1, b"x")
    r.packets_to_send(0)
    assert r.get_timer() == 500


def test_early_resend_after_three_later_acks():
    r = ReliableLayer()
    for i in range(5):
        r.send(P_CONTROL_V1, b"%d" % i)
    assert _ids(r.packets_to_send(0)) == [0, 1, 2, 3, 4]
    r.process_acks([1, 2], 100)
    assert r.packets_to_send(100) == []
    assert r.get_timer() == 2000
    r.process_acks([3], 120)
    assert r.get_timer() == 120
    assert _ids(r.packets_to_send(120)) == [0]  # not 4: only one later ack for it
    assert r.retransmissions == 1
    # counts as a transmission: backoff doubled, counter restarted
    assert r.get_timer() == 2000  # id 4's first timeout comes first
    r.process_acks([4], 130)
    assert r.get_timer() == 120 + 4000


def test_duplicate_and_unknown_higher_acks_count_toward_early_resend():
    # reliable_send_purge: every ack id above a held packet counts, once per occurrence
    r = ReliableLayer()
    for i in range(3):
        r.send(P_CONTROL_V1, b"")
    r.packets_to_send(0)
    r.process_acks([1, 1], 10)  # 1 acked, and counted twice for id 0
    assert r.packets_to_send(10) == [] and r.get_timer() == 2000
    r.process_acks([77], 20)  # an id we never sent, above 0 and 2: the third count for id 0
    assert r.get_timer() == 20
    assert _ids(r.packets_to_send(20)) == [0]  # id 2 has one count only
    assert r.get_timer() == 2000


def test_acks_below_a_packet_do_not_count_for_it():
    r = ReliableLayer()
    for i in range(3):
        r.send(P_CONTROL_V1, b"")
    r.packets_to_send(0)
    r.process_acks([0, 0, 0, 1], 10)  # nothing above id 2
    assert r.packets_to_send(10) == [] and r.get_timer() == 2000


def test_unknown_and_malformed_acks_ignored():
    r = ReliableLayer()
    r.send(P_CONTROL_V1, b"a")
    r.packets_to_send(0)
    r.process_acks([-1, 1 << 32, 1 << 70, None, "0", 0.0, 5, 0xFFFFFFFF], 1)
    assert not r.all_acked()
    r.process_acks([0], 2)
    assert r.all_acked()
    r.process_acks([0, 0], 3)  # duplicate
    assert r.all_acked() and r.get_timer() is None


def test_ack_for_never_transmitted_id_ignored():
    r = ReliableLayer()
    r.send(P_CONTROL_V1, b"a")
    r.process_acks([0], 0)
    assert not r.all_acked()
    assert _ids(r.packets_to_send(0)) == [0]


def test_is_acked():
    r = ReliableLayer()
    assert not r.is_acked(0)  # never sent
    r.send(HARD_RESET_CLIENT, b"")
    r.send(P_CONTROL_V1, b"")
    r.packets_to_send(0)
    assert not r.is_acked(0)
    r.process_acks([0], 1)
    assert r.is_acked(0) and not r.is_acked(1) and not r.is_acked(2)
    assert not r.is_acked(-1) and not r.is_acked(1 << 40)


# -- send window --------------------------------------------------------------

def test_seventh_message_waits_for_lowest_ack():
    r = ReliableLayer()
    assert r.num_output_sequenced_available() == 6
    for i in range(7):
        assert r.send(P_CONTROL_V1, b"%d" % i) == i
    assert r.num_output_sequenced_available() == 0
    assert _ids(r.packets_to_send(0)) == [0, 1, 2, 3, 4, 5]
    # the window is a span: acks for 1..5 do not let 6 out while 0 is unacked
    r.process_acks([1, 2, 3, 4, 5], 10)
    assert _ids(r.packets_to_send(10)) == [0]  # early resend, not 6
    r.process_acks([0], 20)
    assert r.packets_to_send(20) == [(P_CONTROL_V1, 6, b"6", [])]
    assert r.num_output_sequenced_available() == 5


def test_backlog_bounded():
    r = ReliableLayer(max_backlog=2)
    for i in range(8):
        r.send(P_CONTROL_V1, b"")
    e = raises(LocalProtocolError, r.send, P_CONTROL_V1, b"")
    assert "backlog" in str(e)
    r2 = ReliableLayer(send_window=1, max_backlog=0)
    r2.send(P_CONTROL_V1, b"")
    raises(LocalProtocolError, r2.send, P_CONTROL_V1, b"")


def test_all_acked_and_timer():
    r = ReliableLayer()
    assert r.all_acked() and r.get_timer() is None
    r.send(P_CONTROL_V1, b"a")
    assert not r.all_acked()
    assert r.get_timer() == 0  # due now
    r.packets_to_send(500)
    assert r.get_timer() == 2500
    r.receive(0, P_CONTROL_V1, b"b")
    assert r.get_timer() == 500  # an ack is owed: now
    r.process_acks([0], 600)
    r.packets_to_send(600)
    assert r.all_acked() and r.get_timer() is None


def test_schedule_now_resends_at_the_initial_timeout():
    r = ReliableLayer()
    r.send(HARD_RESET_SERVER, b"")
    assert _ids(r.packets_to_send(0)) == [0]
    r.packets_to_send(2000)
    r.packets_to_send(6000)
    assert r.get_timer() == 14000
    # the peer's first packet arrives (ssl.c's burst): resend now, backoff back to 2 s
    r.schedule_now(7000)
    assert r.get_timer() == 7000
    assert _ids(r.packets_to_send(7000)) == [0]
    assert r.get_timer() == 9000
    assert raises(TypeError, ReliableLayer, hold=True)  # no hold: OpenVPN holds only a TCP server's reset


# -- bounded buffers (item 3 of issue 9) ----------------------------------------

def test_receive_drops_payloads_larger_than_openvpns_buffer():
    r = ReliableLayer()
    assert r.max_payload == rx_payload_max(1250) == 1600
    assert rx_payload_max(2000) == 2100
    assert r.receive(0, P_CONTROL_V1, b"x" * 1601) is False
    assert r.oversize_dropped == 1 and r.dropped_received == 1
    assert not r.has_pending_acks()  # not acked: it was not taken
    assert r.receive(0, P_CONTROL_V1, b"x" * 1600) is True


def test_receive_holds_at_most_the_window_of_bounded_payloads():
    r = ReliableLayer(max_payload=100)
    # a peer fills every slot above a missing id 0 with the largest payloads it may send
    for i in range(1, 40):
        r.receive(i, P_CONTROL_V1, b"y" * 5000)
        r.receive(i, P_CONTROL_V1, b"y" * 100)
    held = sum(len(p) for _, p in r._rbuf.values())
    assert len(r._rbuf) == 11 and held == 1100  # ids 1..11; 12.. break sequentiality
    assert r.oversize_dropped == 39


# -- 32-bit ids ---------------------------------------------------------------

def test_ids_wrap_at_2_32():
    start = 0xFFFFFFFE
    a = ReliableLayer(initial_packet_id=start)
    b = ReliableLayer(initial_packet_id=start)
    ids = [a.send(P_CONTROL_V1, b"%d" % i) for i in range(4)]
    assert ids == [0xFFFFFFFE, 0xFFFFFFFF, 0, 1]
    out = a.packets_to_send(0)
    for pkt in reversed(out):
        assert b.receive(pkt[1], pkt[0], pkt[2]) is True
    assert [p for _, p in b.deliver()] == [b"0", b"1", b"2", b"3"]
    acks = b.packets_to_send(0)[0][3]
    a.process_acks(acks, 1)
    assert a.all_acked() and a.is_acked(0) and a.is_acked(0xFFFFFFFF)
    assert b.receive(0xFFFFFFFF, P_CONTROL_V1, b"") is False and b.has_pending_acks()
    assert b.receive(14, P_CONTROL_V1, b"") is False  # base 2: the window is 2..13
    assert b.receive(13, P_CONTROL_V1, b"") is True


def test_early_resend_across_wrap():
    a = ReliableLayer(initial_packet_id=0xFFFFFFFF)
    for i in range(4):
        a.send(P_CONTROL_V1, b"")
    a.packets_to_send(0)
    a.process_acks([0, 1, 2], 5)
    assert _ids(a.packets_to_send(5)) == [0xFFFFFFFF]


# -- two layers over a bad channel --------------------------------------------

def _pump(seed, n_msgs, loss, dup, reorder_ms, initial=0, steps=20000):
    """Two layers exchange n_msgs each way over a lossy, duplicating, reordering link."""
    rng = _Rng(seed)
    ends = [ReliableLayer(max_timeout_ms=8000, initial_packet_id=initial) for _ in range(2)]
    to_send = [[b"%d:%d:" % (side, i) + b"x" * rng.below(40) for i in range(n_msgs)] for side in (0, 1)]
    sent = [[], []]
    got = [[], []]
    wire = []  # [arrival_ms, seq, dest, packet]
    seq = 0
    now = 0
    for _ in range(steps):
        for side in (0, 1):
            r = ends[side]
            while to_send[side] and r.num_output_sequenced_available() > 0:
                msg = to_send[side].pop(0)
                r.send(P_CONTROL_V1, msg)
                sent[side].append(msg)
            for pkt in r.packets_to_send(now):
                copies = 0 if rng.chance(loss) else (2 if rng.chance(dup) else 1)
                for _c in range(copies):
                    wire.append([now + 1 + rng.below(reorder_ms + 1), seq, 1 - side, pkt])
                    seq += 1
        done = all(not to_send[s] and ends[s].all_acked() and len(got[1 - s]) == n_msgs
                   and not ends[s].has_pending_acks() for s in (0, 1))
        if done and not wire:
            return sent, got, ends
        times = [w[0] for w in wire] + [t for t in (ends[0].get_timer(), ends[1].get_timer()) if t is not None]
        now = max(now, min(times))
        arrived = [w for w in wire if w[0] <= now]
        arrived.sort(key=lambda w: (w[0], w[1]))
        wire = [w for w in wire if w[0] > now]
        for w in arrived:
            r = ends[w[2]]
            opcode, mid, payload, acks = w[3]
            r.process_acks(acks, now)
            if mid is not None:
                r.receive(mid, opcode, payload)
            for op, data in r.deliver():
                assert op == opcode or op == P_CONTROL_V1
                got[w[2]].append(data)
    raise AssertionError("no convergence (seed %d)" % seed)


def test_pair_over_lossy_reordering_duplicating_channel():
    for seed in range(1, 7):
        sent, got, ends = _pump(seed, 25, loss=30, dup=20, reorder_ms=400)
        assert got[1] == sent[0] and got[0] == sent[1], seed
        assert ends[0].retransmissions + ends[1].retransmissions > 0


def test_pair_perfect_channel_needs_no_retransmission():
    sent, got, ends = _pump(99, 40, loss=0, dup=0, reorder_ms=0)
    assert got[1] == sent[0] and got[0] == sent[1]
    assert ends[0].retransmissions == 0 and ends[1].retransmissions == 0


def test_pair_across_id_wrap():
    for seed in (3, 4):
        sent, got, _ = _pump(seed, 20, loss=25, dup=25, reorder_ms=300, initial=0xFFFFFFF6)
        assert got[1] == sent[0] and got[0] == sent[1]
