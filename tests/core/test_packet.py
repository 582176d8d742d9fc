from ovpnkx import packet as pk
from ovpnkx import streambuf as sb
from ovpnkx.cookie import encode_tlvs
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

from _support import load_json, raises, unhex

SID = unhex("0102030405060708")
PEER = unhex("a1a2a3a4a5a6a7a8")
NON_ACK_CONTROL = (
    pk.P_CONTROL_SOFT_RESET_V1, pk.P_CONTROL_V1, pk.P_CONTROL_HARD_RESET_CLIENT_V2,
    pk.P_CONTROL_HARD_RESET_SERVER_V2, pk.P_CONTROL_HARD_RESET_CLIENT_V3, pk.P_CONTROL_WKC_V1,
)


def _roundtrip(p):
    raw = p.to_bytes()
    q = pk.parse_control(raw)
    assert q == p, (q, p)
    assert q.to_bytes() == raw
    return raw


# -- constants ---------------------------------------------------------------

def test_opcode_values_are_openvpns():
    assert (pk.P_CONTROL_SOFT_RESET_V1, pk.P_CONTROL_V1, pk.P_ACK_V1, pk.P_DATA_V1) == (3, 4, 5, 6)
    assert (pk.P_CONTROL_HARD_RESET_CLIENT_V2, pk.P_CONTROL_HARD_RESET_SERVER_V2, pk.P_DATA_V2) == (7, 8, 9)
    assert (pk.P_CONTROL_HARD_RESET_CLIENT_V3, pk.P_CONTROL_WKC_V1) == (10, 11)
    assert pk.SID_SIZE == 8 and pk.CONTROL_SEND_ACK_MAX == 4 and pk.RELIABLE_ACK_SIZE == 8
    for op in range(1, 12):
        assert pk.OPCODE_NAMES[op].startswith("P_")
    assert pk.OPCODE_NAMES[pk.P_ACK_V1] == "P_ACK_V1"
    assert pk.EARLY_NEG_START & pk.EARLY_NEG_MASK == pk.EARLY_NEG_START
    assert pk.TLV_TYPE_EARLY_NEG_FLAGS == 1 and pk.EARLY_NEG_FLAG_RESEND_WKC == 1


def test_ack_size_matches_openvpn_macro():
    assert pk.ack_size(0) == 1
    assert pk.ack_size(1) == 1 + 4 + 8
    assert pk.ack_size(8) == 1 + 32 + 8


def test_is_hard_reset_method2():
    assert pk.is_hard_reset_method2(pk.P_CONTROL_HARD_RESET_CLIENT_V2)
    assert pk.is_hard_reset_method2(pk.P_CONTROL_HARD_RESET_SERVER_V2)
    assert pk.is_hard_reset_method2(pk.P_CONTROL_HARD_RESET_CLIENT_V3)
    assert not pk.is_hard_reset_method2(pk.P_CONTROL_SOFT_RESET_V1)
    assert not pk.is_hard_reset_method2(pk.P_CONTROL_HARD_RESET_CLIENT_V1)


# -- known bytes ---------------------------------------------------------------

def test_client_hard_reset_bytes():
    p = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, SID, message_id=0)
    assert p.to_bytes() == unhex("38 0102030405060708 00 00000000")


def test_server_reset_with_ack_bytes():
    p = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, PEER, acks=[0], remote_session_id=SID,
                         message_id=0)
    assert p.to_bytes() == unhex("40 a1a2a3a4a5a6a7a8 01 00000000 0102030405060708 00000000")


def test_ack_bytes_have_no_message_id():
    p = pk.ControlPacket(pk.P_ACK_V1, 2, SID, acks=(1, 0x01020304), remote_session_id=PEER)
    assert p.to_bytes() == unhex("2a 0102030405060708 02 00000001 01020304 a1a2a3a4a5a6a7a8")


def test_control_v1_bytes_with_key_id_and_payload():
    p = pk.ControlPacket(pk.P_CONTROL_V1, 7, SID, message_id=0xFFFFFFFF, payload=b"\x16\x03\x01")
    assert p.to_bytes() == unhex("27 0102030405060708 00 ffffffff 160301")


# -- round trips -----------------------------------------------------------------

def test_roundtrip_every_control_opcode_without_acks():
    for op in NON_ACK_CONTROL:
        for key_id in (0, 3, 7):
            raw = _roundtrip(pk.ControlPacket(op, key_id, SID, message_id=5, payload=b"tls"))
            assert pk.opcode_key_id(raw) == (op, key_id)


def test_roundtrip_every_control_opcode_with_acks():
    for op in NON_ACK_CONTROL:
        for n in (1, 4, 8):
            acks = tuple(range(100, 100 + n))
            p = pk.ControlPacket(op, 1, SID, acks, PEER, 9, b"x" * 50)
            raw = _roundtrip(p)
            assert len(raw) == 1 + 8 + pk.ack_size(n) + 4 + 50


def test_roundtrip_ack_packets():
    for n in range(1, 9):
        acks = [0xFFFFFFFF - i for i in range(n)]
        p = pk.ControlPacket(pk.P_ACK_V1, 0, SID, acks, PEER)
        raw = _roundtrip(p)
        q = pk.parse_control(raw)
        assert q.message_id is None and q.payload == b"" and q.acks == tuple(acks)


def test_empty_payload_roundtrips():
    p = pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, message_id=1)
    assert pk.parse_control(p.to_bytes()).payload == b""


def test_parse_accepts_bytearray_and_memoryview_without_changing_them():
    raw = pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, (1,), PEER, 2, b"abc").to_bytes()
    ba = bytearray(raw)
    assert pk.parse_control(ba).payload == b"abc"
    assert pk.parse_control(memoryview(raw)).remote_session_id == PEER
    assert bytes(ba) == raw


def test_equality_and_repr():
    a = pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, message_id=1, payload=b"secret-bytes")
    b = pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, message_id=1, payload=b"secret-bytes")
    c = pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, message_id=2, payload=b"secret-bytes")
    assert a == b and not (a != b)
    assert a != c and not (a == c)
    assert a != "not a packet"
    r = repr(a)
    assert "P_CONTROL_V1" in r and "12 bytes" in r and "0102030405060708" in r
    assert "secret" not in r


# -- serializer refuses bad fields ------------------------------------------------

def test_to_bytes_rejects_bad_fields():
    def bad(*args, **kw):
        return raises(LocalProtocolError, pk.ControlPacket(*args, **kw).to_bytes)

    assert "data" in str(bad(pk.P_DATA_V1, 0, SID, message_id=0))
    assert "data" in str(bad(pk.P_DATA_V2, 0, SID, message_id=0))
    bad(pk.P_CONTROL_HARD_RESET_CLIENT_V1, 0, SID, message_id=0)
    bad(12, 0, SID, message_id=0)
    assert "key_id" in str(bad(pk.P_CONTROL_V1, 8, SID, message_id=0))
    bad(pk.P_CONTROL_V1, -1, SID, message_id=0)
    assert "session_id" in str(bad(pk.P_CONTROL_V1, 0, SID[:7], message_id=0))
    bad(pk.P_CONTROL_V1, 0, SID + b"\x00", message_id=0)
    bad(pk.P_CONTROL_V1, 0, bytes(8), message_id=0)
    assert "acks" in str(bad(pk.P_CONTROL_V1, 0, SID, tuple(range(9)), PEER, 0))
    assert "remote_session_id" in str(bad(pk.P_CONTROL_V1, 0, SID, (1,), None, 0))
    bad(pk.P_CONTROL_V1, 0, SID, (), PEER, 0)
    bad(pk.P_CONTROL_V1, 0, SID, (1,), PEER[:4], 0)
    bad(pk.P_CONTROL_V1, 0, SID, (-1,), PEER, 0)
    bad(pk.P_CONTROL_V1, 0, SID, (1 << 32,), PEER, 0)
    assert "message_id" in str(bad(pk.P_ACK_V1, 0, SID, (1,), PEER, 0))
    assert "message_id" in str(bad(pk.P_CONTROL_V1, 0, SID))
    bad(pk.P_CONTROL_V1, 0, SID, message_id=1 << 32)
    bad(pk.P_CONTROL_V1, 0, SID, message_id=-1)
    bad(pk.P_ACK_V1, 0, SID)
    bad(pk.P_ACK_V1, 0, SID, (1,), PEER, payload=b"x")
    bad(pk.P_CONTROL_V1, 0, SID, message_id=0, payload="text")


# -- parser refuses bad bytes -------------------------------------------------------

def _rejects(data, word=None):
    exc = raises(RemoteProtocolError, pk.parse_control, data)
    if word is not None:
        assert word in str(exc), str(exc)
    return exc


def test_parse_rejects_empty():
    _rejects(b"", "empty")
    raises(RemoteProtocolError, pk.opcode_key_id, b"")


def test_parse_rejects_data_packets():
    _rejects(unhex("30") + bytes(20), "data packet")
    _rejects(unhex("4e000001") + bytes(20), "data packet")


def test_parse_rejects_key_method_1():
    exc = _rejects(bytes([1 << 3]) + SID + b"\x00" + bytes(4), "key method 1")
    assert "not supported" in str(exc)
    _rejects(bytes([2 << 3 | 1]) + SID + b"\x00" + bytes(4), "key method 1")


def test_parse_rejects_unknown_opcodes():
    for op in (0, 12, 20, 31):
        _rejects(bytes([op << 3]) + SID + b"\x00" + bytes(4), "unknown opcode %d" % op)


def test_parse_rejects_truncation_at_every_field():
    samples = [
        pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, (1, 2, 3), PEER, 4),
        pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, SID, message_id=0),
        pk.ControlPacket(pk.P_ACK_V1, 0, SID, (1, 2), PEER),
    ]
    for p in samples:
        raw = p.to_bytes()
        for cut in range(len(raw)):
            _rejects(raw[:cut])
        assert pk.parse_control(raw) == p


def test_truncation_messages_name_the_field():
    raw = pk.ControlPacket(pk.P_CONTROL_V1, 0, SID, (1,), PEER, 4).to_bytes()
    _rejects(raw[:5], "session_id")
    _rejects(raw[:9], "ack count")
    _rejects(raw[:12], "ack list")
    _rejects(raw[:20], "remote session_id")
    _rejects(raw[:24], "message_id")


def test_parse_rejects_too_many_acks():
    raw = unhex("20") + SID + b"\x09" + bytes(36) + PEER + bytes(4)
    _rejects(raw, "9 acks")
    _rejects(unhex("20") + SID + b"\xff" + bytes(2000), "255 acks")


def test_parse_rejects_ack_without_acks_and_trailing_bytes():
    _rejects(unhex("28") + SID + b"\x00", "without acks")
    good = pk.ControlPacket(pk.P_ACK_V1, 0, SID, (7,), PEER).to_bytes()
    _rejects(good + b"\x00", "trailing")


def test_parse_rejects_zero_session_id():
    _rejects(unhex("38") + bytes(8) + b"\x00" + bytes(4), "zero")


def test_opcode_key_id_of_any_packet():
    assert pk.opcode_key_id(b"\x48\x00\x00\x01") == (pk.P_DATA_V2, 0)
    assert pk.opcode_key_id(bytes([pk.P_DATA_V1 << 3 | 5])) == (pk.P_DATA_V1, 5)
    assert pk.opcode_key_id(b"\xff") == (31, 7)


# -- early negotiation TLVs -------------------------------------------------------------

def test_tlvs_parse_and_encode():
    assert pk.parse_tlvs(b"") == []
    raw = unhex("0001 0002 0001") + unhex("7777 0003 616263") + unhex("0008 0000")
    items = pk.parse_tlvs(raw)
    assert items == [(pk.TLV_TYPE_EARLY_NEG_FLAGS, b"\x00\x01"), (0x7777, b"abc"), (8, b"")]
    assert encode_tlvs(items) == raw


def test_tlvs_reject_malformed():
    for bad in ("00", "000100", "0002 0004 0000", "0001 0001 00", "0001 0003 000000",
                "0001 0002 0001 00"):
        raises(RemoteProtocolError, pk.parse_tlvs, unhex(bad))


def test_encode_tlvs_rejects_bad_items():
    raises(LocalProtocolError, encode_tlvs, [(-1, b"")])
    raises(LocalProtocolError, encode_tlvs, [(0x10000, b"")])
    raises(LocalProtocolError, encode_tlvs, [(5, "text")])
    raises(LocalProtocolError, encode_tlvs, [(pk.TLV_TYPE_EARLY_NEG_FLAGS, b"\x01")])


# -- stream framing ------------------------------------------------------------------------

def test_frame_prefixes_length():
    assert sb.frame(b"\x38abc") == b"\x00\x04\x38abc"
    assert sb.frame(b"x" * 65535)[:2] == b"\xff\xff"
    raises(LocalProtocolError, sb.frame, b"")
    raises(LocalProtocolError, sb.frame, b"x" * 65536)


def _packets():
    return [b"\x38" + bytes(13), b"A" * 300, b"z", b"\x48" + bytes(range(200))]


def test_deframer_whole_and_merged():
    pkts = _packets()
    stream = b"".join(sb.frame(p) for p in pkts)
    d = sb.StreamDeframer()
    assert d.feed(stream) == pkts
    assert d.pending == b""
    assert d.feed(b"") == []


def test_deframer_split_at_every_position():
    pkts = _packets()
    stream = b"".join(sb.frame(p) for p in pkts)
    for cut in range(len(stream) + 1):
        d = sb.StreamDeframer()
        got = d.feed(stream[:cut]) + d.feed(stream[cut:])
        assert got == pkts, cut
        assert d.pending == b""


def test_deframer_byte_by_byte_keeps_partial_input():
    pkts = _packets()
    stream = b"".join(sb.frame(p) for p in pkts)
    d = sb.StreamDeframer()
    got = []
    for i in range(len(stream)):
        got += d.feed(stream[i:i + 1])
        assert len(d.pending) <= 2 + 300
    assert got == pkts


def test_deframer_keeps_tail_of_next_packet():
    d = sb.StreamDeframer()
    assert d.feed(sb.frame(b"one") + b"\x00\x03tw") == [b"one"]
    assert d.pending == b"\x00\x03tw"
    assert d.feed(b"o") == [b"two"]


def test_deframer_max_packet_bounds():
    d = sb.StreamDeframer(max_packet=10)
    assert d.feed(sb.frame(b"x" * 10)) == [b"x" * 10]
    raises(RemoteProtocolError, d.feed, sb.frame(b"x" * 11))
    assert sb.StreamDeframer().max_packet == sb.STREAM_MAX_PACKET == 2048
    assert sb.StreamDeframer(65535).feed(sb.frame(b"y" * 65535)) == [b"y" * 65535]
    raises(LocalProtocolError, sb.StreamDeframer, 0)
    raises(LocalProtocolError, sb.StreamDeframer, 65536)


def test_deframer_zero_length_breaks_it_for_good():
    d = sb.StreamDeframer()
    assert d.feed(b"\x00") == []
    before = d.pending
    exc = raises(RemoteProtocolError, d.feed, b"\x00" + sb.frame(b"next"))
    assert "length 0" in str(exc)
    assert d.pending == before and d.broken is not None
    # once broken, nothing is taken in any more, even valid frames
    raises(RemoteProtocolError, d.feed, sb.frame(b"ok"))
    assert d.pending == before


def test_deframer_error_is_all_or_nothing_for_the_call():
    d = sb.StreamDeframer(max_packet=100)
    assert d.feed(b"\x00\x02a") == []
    before = d.pending
    # completes one good packet, then a bad length: no packet is returned
    exc = raises(RemoteProtocolError, d.feed, b"b" + b"\x00\x65" + bytes(101))
    assert "101" in str(exc)
    assert d.pending == before
    assert d.broken == str(exc)


# -- malformed corpus: whole and every prefix, only RemoteProtocolError ------------------------

def _only_remote(func, data):
    try:
        func(data)
    except RemoteProtocolError:
        return False
    return True


def test_malformed_packet_corpus():
    corpus = load_json("malformed/packet.json")
    assert len(corpus) >= 20
    for text in corpus:
        raw = unhex(text)
        assert not _only_remote(pk.parse_control, raw), text
        for cut in range(len(raw) + 1):
            buf = bytearray(raw[:cut])
            _only_remote(pk.parse_control, buf)
            _only_remote(pk.parse_tlvs, buf)
            _only_remote(pk.opcode_key_id, buf)
            assert bytes(buf) == raw[:cut]


def test_malformed_framing_corpus():
    corpus = load_json("malformed/framing.json")
    assert len(corpus) >= 8
    for text in corpus:
        raw = unhex(text)
        d = sb.StreamDeframer()
        assert not _only_remote(d.feed, raw), text
        for cut in range(len(raw) + 1):
            d = sb.StreamDeframer()
            _only_remote(d.feed, raw[:cut])
        # byte by byte into one deframer: once it raised, it keeps its bytes
        d = sb.StreamDeframer()
        raised = False
        for i in range(len(raw)):
            before = d.pending
            ok = _only_remote(d.feed, raw[i:i + 1])
            if not ok:
                raised = True
                assert d.pending == before and d.broken is not None
        assert raised, text
