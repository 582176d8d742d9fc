"""Serial framing: COBS + CRC-32, resynchronising after lost, extra and damaged bytes."""

from _support import load_json, raises, unhex

from ovpnkx.errors import LocalProtocolError
from ovpnkx.serialframe import (
    MAX_PAYLOAD, FrameDecoder, cobs_decode, cobs_encode, encode_frame, encoded_size)


def _noise(n, seed):
    """Deterministic bytes (an LCG): the same stream on both runtimes."""
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def _payloads():
    return [
        b"",
        b"\x00",
        b"hello",
        b"\x00\x00\x00",
        b"\xff" * 20,
        _noise(40, 1),
        _noise(300, 2),  # longer than one COBS block
        bytes(range(1, 255)),  # exactly one full block
    ]


def _stream(payloads):
    """The wire bytes, and the span [start, end) of each frame in them."""
    wire = bytearray()
    spans = []
    for p in payloads:
        start = len(wire)
        wire += encode_frame(p)
        spans.append((start, len(wire)))
    return bytes(wire), spans


def _decode(data, chunk=0):
    dec = FrameDecoder()
    if not chunk:
        return dec.feed(data), dec
    got = []
    for i in range(0, len(data), chunk):
        got += dec.feed(data[i:i + chunk])
    return got, dec


def _damaged(data):
    """Decode a damaged stream; the trailing 0x00 stands for the line going on (the
    next frame's leading delimiter), which ends a last frame that lost its own."""
    return _decode(data + b"\x00")


def _check_damage(payloads, got, dec, touched, what):
    """Delivered payloads are intact originals, in order; only ``touched`` frames are lost."""
    j = 0
    lost = []
    for k, p in enumerate(payloads):
        if j < len(got) and got[j] == p:
            j += 1
        else:
            lost.append(k)
    assert j == len(got), "%s: delivered a payload that was never sent" % what
    for k in lost:
        assert k in touched, "%s: lost frame %d, touched %s" % (what, k, touched)
    if lost:
        assert sum(dec.errors.values()) >= 1, what


def test_cobs_known_vectors():
    vectors = [
        ("", "01"),
        ("00", "01 01"),
        ("00 00", "01 01 01"),
        ("11 22 00 33", "03 11 22 02 33"),
        ("11 22 33 44", "05 11 22 33 44"),
        ("11 00 00 00", "02 11 01 01 01"),
    ]
    for plain, enc in vectors:
        assert bytes(cobs_encode(unhex(plain))) == unhex(enc), plain
        assert bytes(cobs_decode(unhex(enc))) == unhex(plain), enc
    run = bytes(range(1, 255))
    assert bytes(cobs_encode(run)) == b"\xff" + run
    assert bytes(cobs_encode(b"\x00" + run)) == b"\x01\xff" + run
    assert bytes(cobs_encode(run + b"\xff")) == b"\xff" + run + b"\x02\xff"
    assert cobs_decode(unhex("05 11 22")) is None  # code byte points past the end


def test_frame_known_vector():
    # CRC-32 of "123456789" is 0xCBF43926, sent big-endian; no zero, so one COBS block.
    assert encode_frame(b"123456789") == unhex("00 0e 313233343536373839 cbf43926 00")
    assert encode_frame(b"") == unhex("00 01 01 01 01 01 00")  # CRC-32 of nothing is 0


def test_round_trip_whole_and_in_pieces():
    payloads = _payloads()
    wire, _ = _stream(payloads)
    for chunk in (0, 1, 2, 7, 255):
        got, dec = _decode(wire, chunk)
        assert got == payloads, chunk
        assert dec.frames == len(payloads)
        assert dec.errors == {"crc": 0, "cobs": 0, "oversize": 0}
    for p in payloads:
        frame = encode_frame(p)
        assert frame.find(b"\x00", 1) == len(frame) - 1  # zeros only at the ends
        assert len(frame) <= encoded_size(len(p))
    assert FrameDecoder().feed(bytearray(encode_frame(b"ab"))) == [b"ab"]
    assert FrameDecoder().feed(memoryview(encode_frame(b"ab"))) == [b"ab"]


def test_every_dropped_byte_loses_only_its_frame():
    payloads = _payloads()[:6]
    wire, spans = _stream(payloads)
    for pos in range(len(wire)):
        touched = [k for k, (a, b) in enumerate(spans) if a <= pos < b]
        got, dec = _damaged(wire[:pos] + wire[pos + 1:])
        _check_damage(payloads, got, dec, touched, "drop %d" % pos)


def test_every_inserted_byte_loses_only_its_frame():
    payloads = _payloads()[:6]
    wire, spans = _stream(payloads)
    for pos in range(len(wire) + 1):
        touched = [k for k, (a, b) in enumerate(spans) if a < pos < b]
        for value in (0x00, 0x01, 0x5A, 0xFF):
            got, dec = _damaged(wire[:pos] + bytes([value]) + wire[pos:])
            _check_damage(payloads, got, dec, touched, "insert %02x at %d" % (value, pos))


def test_every_flipped_byte_loses_only_its_frame():
    payloads = _payloads()[:6]
    wire, spans = _stream(payloads)
    for pos in range(len(wire)):
        touched = [k for k, (a, b) in enumerate(spans) if a <= pos < b]
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(wire)
            damaged[pos] ^= mask
            got, dec = _damaged(bytes(damaged))
            _check_damage(payloads, got, dec, touched, "flip %02x at %d" % (mask, pos))
            assert len(got) >= len(payloads) - 1
        damaged = bytearray(wire)
        damaged[pos] = 0  # a byte turned into a delimiter
        got, dec = _damaged(bytes(damaged))
        _check_damage(payloads, got, dec, touched, "zero at %d" % pos)


def test_long_frame_damage_loses_only_that_frame():
    payloads = [b"before", _noise(700, 3), b"after"]
    wire, spans = _stream(payloads)
    for pos in range(0, len(wire), 7):
        damaged = bytearray(wire)
        damaged[pos] ^= 0x10
        got, dec = _damaged(bytes(damaged))
        touched = [k for k, (a, b) in enumerate(spans) if a <= pos < b]
        _check_damage(payloads, got, dec, touched, "flip at %d" % pos)


def test_resync_after_garbage():
    payloads = _payloads()
    frames = [encode_frame(p) for p in payloads]
    for seed in range(1, 9):
        garbage = _noise(50 + 37 * seed, seed + 100)
        # garbage first (joining mid-stream), and garbage between every two frames
        wire = garbage + b"".join(f + _noise(seed * 3, seed + k) for k, f in enumerate(frames))
        for chunk in (0, 5):
            got, dec = _decode(wire, chunk)
            assert got == payloads, seed
            assert dec.frames == len(payloads)
    # a stream that starts in the middle of a frame loses only that frame
    wire = b"".join(frames)
    got, dec = _decode(wire[len(frames[0]) // 2:])
    assert got == payloads[1:]


def test_errors_are_counted_by_kind():
    dec = FrameDecoder()
    good = encode_frame(b"ok")
    bad_crc = bytearray(good)
    bad_crc[2] ^= 0x04
    assert dec.feed(bytes(bad_crc) + good) == [b"ok"]
    assert dec.errors == {"crc": 1, "cobs": 0, "oversize": 0}
    assert dec.feed(unhex("00 05 11 22 00") + good) == [b"ok"]  # code past the end
    assert dec.errors == {"crc": 1, "cobs": 1, "oversize": 0}
    assert dec.feed(unhex("00 04 11 22 33 00") + good) == [b"ok"]  # 3 bytes: no room for a CRC
    assert dec.errors == {"crc": 2, "cobs": 1, "oversize": 0}
    assert dec.feed(b"\x00\x00\x00" + good) == [b"ok"]  # empty frames are not errors
    assert dec.errors == {"crc": 2, "cobs": 1, "oversize": 0}
    assert dec.frames == 4


def test_max_payload():
    limit = 300
    dec = FrameDecoder(max_payload=limit)
    at = _noise(limit, 7)
    over = _noise(limit + 1, 8)
    assert dec.feed(encode_frame(at)) == [at]
    assert dec.feed(encode_frame(over) + encode_frame(b"next")) == [b"next"]
    assert dec.errors["oversize"] == 1
    # an endless run without a delimiter is skipped, not buffered, and counted once
    flood = _noise(5000, 9).replace(b"\x00", b"\x01")
    for i in range(0, len(flood), 100):
        assert dec.feed(flood[i:i + 100]) == []
        assert len(dec._buf) <= encoded_size(limit)
    assert dec.errors["oversize"] == 2
    assert dec.feed(encode_frame(b"after")) == [b"after"]
    assert dec.errors["oversize"] == 2 and dec.errors["crc"] == 0
    zero = FrameDecoder(max_payload=0)
    assert zero.feed(encode_frame(b"") + encode_frame(b"x")) == [b""]
    assert zero.errors["oversize"] == 1
    assert FrameDecoder().max_payload == MAX_PAYLOAD
    raises(LocalProtocolError, FrameDecoder, -1)
    raises(LocalProtocolError, encode_frame, "text")


def test_reset_drops_partial_frame():
    dec = FrameDecoder()
    frame = encode_frame(b"payload")
    assert dec.feed(frame[:5]) == []
    dec.reset()
    assert dec.feed(frame[5:]) == []  # the tail alone is a bad frame
    assert dec.errors["crc"] + dec.errors["cobs"] == 1
    assert dec.feed(frame) == [b"payload"]


def test_malformed_corpus():
    for case in load_json("malformed/serialframe.json"):
        data = unhex(case)
        whole = FrameDecoder()
        assert whole.feed(data) == [], case
        assert sum(whole.errors.values()) >= 1, case
        for cut in range(len(data) + 1):  # every prefix, then the rest
            dec = FrameDecoder()
            assert dec.feed(data[:cut]) + dec.feed(data[cut:]) == [], case
            assert dec.errors == whole.errors, case
