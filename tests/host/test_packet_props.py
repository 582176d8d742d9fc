"""Hypothesis properties of ovpnkx.packet (CPython only)."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ovpnkx import packet as pk
from ovpnkx import streambuf as sb
from ovpnkx.cookie import encode_tlvs
from ovpnkx.errors import RemoteProtocolError

sids = st.binary(min_size=8, max_size=8).filter(any)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
non_ack_ops = st.sampled_from([op for op in pk.CONTROL_OPCODES if op != pk.P_ACK_V1])


@st.composite
def control_packets(draw):
    if draw(st.booleans()):
        op = pk.P_ACK_V1
        acks = draw(st.lists(u32, min_size=1, max_size=pk.RELIABLE_ACK_SIZE))
        mid = None
        payload = b""
    else:
        op = draw(non_ack_ops)
        acks = draw(st.lists(u32, max_size=pk.RELIABLE_ACK_SIZE))
        mid = draw(u32)
        payload = draw(st.binary(max_size=300))
    remote = draw(sids) if acks else None
    return pk.ControlPacket(op, draw(st.integers(0, 7)), draw(sids), acks, remote, mid, payload)


@settings(max_examples=200, deadline=None)
@given(control_packets())
def test_roundtrip(p):
    raw = p.to_bytes()
    assert pk.parse_control(raw) == p
    assert pk.opcode_key_id(raw) == (p.opcode, p.key_id)


@settings(max_examples=200, deadline=None)
@given(control_packets())
def test_every_truncation_of_a_header_is_refused(p):
    raw = p.to_bytes()
    header = len(raw) - len(p.payload)
    for cut in range(header):
        try:
            pk.parse_control(raw[:cut])
        except RemoteProtocolError:
            continue
        raise AssertionError("prefix %d of %d parsed" % (cut, header))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_only_remote_errors_and_reserialize(data):
    try:
        p = pk.parse_control(data)
    except RemoteProtocolError:
        return
    assert p.to_bytes() == data


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 31), st.integers(0, 7), st.binary(max_size=80))
def test_random_packets_with_chosen_opcode(op, key_id, rest):
    data = bytes([op << 3 | key_id]) + rest
    try:
        p = pk.parse_control(data)
    except RemoteProtocolError:
        return
    # only control opcodes ever parse, and what parses serializes back exactly
    assert op in pk.CONTROL_OPCODES
    assert p.to_bytes() == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_tlvs_random_bytes(data):
    try:
        items = pk.parse_tlvs(data)
    except RemoteProtocolError:
        return
    assert encode_tlvs(items) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=20)), max_size=6))
def test_tlvs_roundtrip(items):
    items = [(t, b"\x00\x01" if t == pk.TLV_TYPE_EARLY_NEG_FLAGS else v) for t, v in items]
    assert pk.parse_tlvs(encode_tlvs(items)) == items


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=sb.STREAM_MAX_PACKET), max_size=6), st.data())
def test_deframer_any_split(packets, data):
    stream = b"".join(sb.frame(p) for p in packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    d = sb.StreamDeframer()
    got = []
    start = 0
    for c in cuts + [len(stream)]:
        got += d.feed(stream[start:c])
        start = c
    assert got == packets
    assert d.pending == b""


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10), st.integers(1, 64))
def test_deframer_random_chunks(chunks, max_packet):
    d = sb.StreamDeframer(max_packet)
    for c in chunks:
        before = d.pending
        was_broken = d.broken is not None
        try:
            out = d.feed(c)
        except RemoteProtocolError:
            assert d.pending == before and d.broken is not None
            continue
        assert not was_broken
        assert all(1 <= len(p) <= max_packet for p in out)
        # what went in is what came out plus what is still pending
        assert before + c == b"".join(sb.frame(p) for p in out) + d.pending


@settings(max_examples=200, deadline=None)
@given(control_packets(), st.integers(0, 9))
def test_ack_count_above_limit_refused(p, extra):
    raw = bytearray(p.to_bytes())
    n = raw[9]
    assume(n + extra > pk.RELIABLE_ACK_SIZE)
    raw[9] = n + extra
    try:
        pk.parse_control(bytes(raw))
    except RemoteProtocolError as exc:
        assert "acks" in str(exc)
    else:
        raise AssertionError("ack count %d accepted" % (n + extra))
