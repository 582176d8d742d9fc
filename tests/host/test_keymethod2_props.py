"""Hypothesis properties of ovpnkx.keymethod2 (CPython only)."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx import keymethod2 as km
from ovpnkx.errors import RemoteProtocolError

# text the writer accepts: no NUL, no lone surrogates (not encodable as UTF-8)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=60)
opt_text = st.one_of(st.none(), text)


def _fits(limit):
    return lambda s: s is None or len(s.encode("utf-8")) + 1 <= limit


@st.composite
def messages(draw):
    is_client = draw(st.booleans())
    pre_master = draw(st.binary(min_size=48, max_size=48)) if is_client else None
    source = km.KeySource(pre_master, draw(st.binary(min_size=32, max_size=32)),
                          draw(st.binary(min_size=32, max_size=32)))
    options = draw(text.filter(_fits(km.TLS_OPTIONS_LEN)))
    username = draw(opt_text)
    password = draw(opt_text)
    peer_info = draw(st.one_of(st.none(), text, st.lists(
        st.tuples(st.from_regex(r"\A[A-Z_]{1,12}\Z"), st.integers(0, 1 << 20)), max_size=8
    ).map(km.peer_info_string)))
    return is_client, km.KeyMethod2Message(source, options, username, password, peer_info)


@settings(max_examples=200, deadline=None)
@given(messages())
def test_round_trip(case):
    is_client, msg = case
    data = km.write_key_method2(msg, is_client)
    assert km.read_key_method2(data, is_client) == msg
    # the layout: header, key source, then four u16-prefixed fields to the end
    assert data[:5] == b"\x00\x00\x00\x00\x02"
    pos = 5 + (112 if is_client else 64)
    for _ in range(4):
        (n,) = struct.unpack(">H", data[pos:pos + 2])
        pos += 2 + n
    assert pos == len(data)


@settings(max_examples=200, deadline=None)
@given(messages())
def test_every_strict_prefix_is_refused(case):
    is_client, msg = case
    data = km.write_key_method2(msg, is_client)
    for n in range(len(data)):
        try:
            km.read_key_method2(data[:n], is_client)
        except RemoteProtocolError:
            continue
        raise AssertionError("prefix of %d bytes was accepted" % n)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_raise_only_remote_errors(data, is_client):
    try:
        msg = km.read_key_method2(data, is_client)
    except RemoteProtocolError:
        return
    # whatever was accepted writes back to the same bytes, except that the
    # uint32 and the flag nibble are not kept and an empty options field reads as ""
    again = km.write_key_method2(msg, is_client)
    assert again[5:] == data[5:] or msg.options == ""


@settings(max_examples=200, deadline=None)
@given(messages(), st.data())
def test_mutated_messages_raise_only_remote_errors(case, data):
    is_client, msg = case
    raw = bytearray(km.write_key_method2(msg, is_client))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[i] ^= data.draw(st.integers(1, 255))
        elif kind == "insert":
            raw[i:i] = bytes([data.draw(st.integers(0, 255))])
        elif raw:
            raw[i:i + 1] = b""
    try:
        km.read_key_method2(bytes(raw), is_client)
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=20), st.booleans())
def test_utf8_check_agrees_with_cpython(raw, is_client):
    raw = raw.replace(b"\x00", b"\x01")
    head = b"\x00\x00\x00\x00\x02" + bytes(112 if is_client else 64) + b"\x00\x01\x00" + b"\x00\x00" * 2
    frame = head + struct.pack(">H", len(raw) + 1) + raw + b"\x00"
    try:
        expected = raw.decode("utf-8")
    except UnicodeDecodeError:
        expected = None
    try:
        got = km.read_key_method2(frame, is_client).peer_info
    except RemoteProtocolError:
        got = None
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"\AIV_[A-Z0-9_]{1,10}\Z"),
                       st.text(alphabet="abcXYZ019:=-. ", max_size=20), max_size=10))
def test_peer_info_round_trip(info):
    assert km.parse_peer_info(km.peer_info_string(list(info.items()))) == info
