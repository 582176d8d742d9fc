"""Hypothesis properties of the reliability layer (CPython only)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx.errors import LocalProtocolError
from ovpnkx.reliable import ReliableLayer

P_CONTROL_V1 = 4
P_ACK_V1 = 5
ID_MAX = 0xFFFFFFFF

# What the channel does with one packet: how many copies arrive, and after how long each.
fates = st.lists(st.integers(0, 2000), min_size=0, max_size=3)
initial_ids = st.sampled_from([0, 1, 0x7FFFFFF0, ID_MAX - 7, ID_MAX])


def _run(schedule, n_msgs, initial, send_gaps):
    """Drive two layers; packets follow ``schedule`` until it runs out, then arrive once.

    Returns (sent, got, ends). Messages are queued over time (``send_gaps``) and
    only when the window has room, so the backlog is never needed.
    """
    ends = [ReliableLayer(max_timeout_ms=16000, initial_packet_id=initial) for _ in (0, 1)]
    to_send = [[b"%d-%d" % (s, i) for i in range(n)] for s, n in enumerate(n_msgs)]
    sent, got = [[], []], [[], []]
    wire, seq, now, k = [], 0, 0, 0
    next_send = [0, 0]
    for _ in range(50000):
        for s in (0, 1):
            r = ends[s]
            while to_send[s] and now >= next_send[s] and r.num_output_sequenced_available() > 0:
                msg = to_send[s].pop(0)
                r.send(P_CONTROL_V1, msg)
                sent[s].append(msg)
                next_send[s] = now + send_gaps[(len(sent[s]) + s) % len(send_gaps)]
            for pkt in r.packets_to_send(now):
                assert len(pkt[3]) <= (8 if pkt[0] == P_ACK_V1 else 4)
                delays = schedule[k] if k < len(schedule) else [1]
                k += 1
                for d in delays:
                    wire.append((now + d, seq, 1 - s, pkt))
                    seq += 1
        if not wire and all(not to_send[s] and ends[s].all_acked() and not ends[s].has_pending_acks()
                            for s in (0, 1)):
            return sent, got, ends
        times = [w[0] for w in wire] + [t for t in (e.get_timer() for e in ends) if t is not None]
        times += [next_send[s] for s in (0, 1)
                  if to_send[s] and ends[s].num_output_sequenced_available() > 0]
        now = max(now, min(times))
        arrived = sorted(w for w in wire if w[0] <= now)
        wire = [w for w in wire if w[0] > now]
        for _t, _seq, dest, (opcode, mid, payload, acks) in arrived:
            r = ends[dest]
            r.process_acks(acks, now)
            if mid is not None:
                r.receive(mid, opcode, payload)
            got[dest] += [p for _op, p in r.deliver()]
    raise AssertionError("did not converge")


@settings(max_examples=200, deadline=None)
@given(schedule=st.lists(fates, max_size=120),
       n_msgs=st.tuples(st.integers(0, 20), st.integers(0, 20)),
       initial=initial_ids,
       send_gaps=st.lists(st.integers(0, 3000), min_size=1, max_size=5))
def test_any_loss_dup_reorder_schedule_delivers_all_once_in_order(schedule, n_msgs, initial, send_gaps):
    sent, got, ends = _run(schedule, n_msgs, initial, send_gaps)
    assert got[1] == sent[0]
    assert got[0] == sent[1]
    for e in ends:
        assert e.deliver() == [] and e.get_timer() is None


@settings(max_examples=200, deadline=None)
@given(initial=initial_ids,
       ops=st.lists(st.tuples(st.integers(-5, 30), st.booleans()), max_size=200))
def test_receiver_matches_model(initial, ops):
    """Any stream of in-range offsets: delivery is a prefix in order; acks only for in-window/delivered."""
    r = ReliableLayer(initial_packet_id=initial)
    delivered, buffered = 0, set()
    for off, drain in ops:
        mid = (initial + off) & ID_MAX
        new = r.receive(mid, P_CONTROL_V1, b"%d" % off)
        rel = off - delivered
        expect_new = 0 <= rel < 12 and off not in buffered
        assert new is expect_new
        in_window = 0 <= rel < 12
        old = -min(delivered, 12) <= rel < 0
        if in_window or old:
            assert mid in [a for p in r.packets_to_send(0) for a in p[3]]
        else:
            assert [p for p in r.packets_to_send(0) if p[0] == P_ACK_V1] == []
        if new:
            buffered.add(off)
        if drain:
            out = r.deliver()
            want = []
            while delivered in buffered:
                want.append(b"%d" % delivered)
                buffered.discard(delivered)
                delivered += 1
            assert [p for _op, p in out] == want


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.one_of(st.integers(-(1 << 40), 1 << 40), st.integers(0, ID_MAX)), max_size=300),
       acks=st.lists(st.one_of(st.integers(-(1 << 40), 1 << 40), st.integers(0, 40)), max_size=300))
def test_hostile_input_bounded_and_harmless(ids, acks):
    r = ReliableLayer()
    for i in range(6):
        r.send(P_CONTROL_V1, b"m")
    r.packets_to_send(0)
    for i in ids:
        r.receive(i, P_CONTROL_V1, b"p" * 10)
    r.process_acks(acks, 10)
    assert len(r._rbuf) <= 12
    assert len(r._acks) <= 20
    assert all(0 <= a <= ID_MAX for a in r._acks)
    # only acks for our six ids removed anything
    assert len(r._inflight) == 6 - len({a for a in acks if 0 <= a < 6})
    out = r.packets_to_send(100000)
    for op, mid, payload, a in out:
        assert len(a) <= (8 if op == P_ACK_V1 else 4)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 60), window=st.integers(1, 8), backlog=st.integers(0, 10))
def test_backlog_limit(n, window, backlog):
    r = ReliableLayer(send_window=window, max_backlog=backlog)
    ok = 0
    for i in range(n):
        try:
            assert r.send(P_CONTROL_V1, b"") == ok
            ok += 1
        except LocalProtocolError:
            break
    assert ok == min(n, window + backlog)
