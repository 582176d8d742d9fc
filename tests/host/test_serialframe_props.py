"""Properties of the serial framing (ovpnkx.serialframe) under hypothesis."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx.serialframe import FrameDecoder, cobs_decode, cobs_encode, encode_frame, encoded_size

payloads = st.lists(st.binary(max_size=600), max_size=8)
# one damage: (position as a fraction of the stream, kind, byte)
damage = st.tuples(st.floats(0, 1), st.sampled_from(["drop", "insert", "flip", "set"]),
                   st.integers(0, 255))


def _feed(data, cuts):
    dec = FrameDecoder()
    got = []
    start = 0
    for cut in sorted(cuts):
        got += dec.feed(data[start:cut])
        start = max(start, cut)
    got += dec.feed(data[start:])
    return got, dec


def _is_subsequence(got, sent):
    it = iter(sent)
    return all(any(g == s for s in it) for g in got)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_round_trip(data):
    enc = cobs_encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert cobs_decode(bytes(enc)) == data


@settings(max_examples=200, deadline=None)
@given(payloads, st.lists(st.integers(0, 6000), max_size=10))
def test_round_trip_any_chunking(sent, cuts):
    wire = b"".join(encode_frame(p) for p in sent)
    got, dec = _feed(wire, cuts)
    assert got == sent
    assert dec.frames == len(sent)
    assert sum(dec.errors.values()) == 0
    for p in sent:
        assert len(encode_frame(p)) <= encoded_size(len(p))


@settings(max_examples=200, deadline=None)
@given(payloads, st.lists(damage, min_size=1, max_size=5))
def test_damage_never_delivers_a_corrupted_payload(sent, damages):
    wire = bytearray(b"".join(encode_frame(p) for p in sent))
    for where, kind, value in damages:
        pos = int(where * len(wire))
        if kind == "insert":
            wire[pos:pos] = bytes([value])
        elif pos < len(wire):
            if kind == "drop":
                wire[pos:pos + 1] = b""
            elif kind == "flip":
                wire[pos] ^= value or 1
            else:
                wire[pos] = value
    got, dec = _feed(bytes(wire) + b"\x00", [])
    assert _is_subsequence(got, sent)
    # each damaged byte can cost at most the one frame it falls in
    assert len(got) >= len(sent) - len(damages)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), payloads, st.integers(0, 400))
def test_resync_after_garbage(garbage, sent, limit):
    dec = FrameDecoder(max_payload=limit)
    junk = dec.feed(garbage)
    assert all(len(p) <= limit for p in junk)
    assert len(dec._buf) <= encoded_size(limit)
    fits = [p for p in sent if len(p) <= limit]
    got = dec.feed(b"".join(encode_frame(p) for p in sent))
    assert got == fits
    assert dec.frames == len(junk) + len(fits)
