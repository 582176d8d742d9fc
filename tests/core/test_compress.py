"""Compression stub framing as openvpn 2.6 writes it (compstub.c), and what is refused.

The byte layouts below were checked against the real openvpn 2.6.14 at verb 9: a
client with ``comp-lzo no`` sends its ping as ``fa 2a187bf3 …``, with ``compress``
as ``fb 187bf3 … 48 2a`` (first byte moved to the end), with ``compress stub-v2``
unchanged.
"""

from ovpnkx import compress as comp
from ovpnkx.datachannel import PING_STRING, occ_exit_message
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

from _support import raises

LZO_STUB = comp.Framing("lzo-stub")
SWAP = comp.Framing("stub")
V2 = comp.Framing("stub-v2")


def test_comp_lzo_no_puts_0xfa_in_front():
    assert LZO_STUB.compress(PING_STRING) == b"\xfa" + PING_STRING
    assert LZO_STUB.decompress(b"\xfa" + PING_STRING) == PING_STRING
    assert LZO_STUB.decompress(b"\xfa") == b""


def test_compress_stub_swaps_the_first_byte_to_the_end():
    framed = SWAP.compress(PING_STRING)
    assert framed == b"\xfb" + PING_STRING[1:] + PING_STRING[:1]
    assert framed.hex().startswith("fb187bf3") and framed.hex().endswith("482a")
    assert SWAP.decompress(framed) == PING_STRING
    assert SWAP.decompress(SWAP.compress(b"x")) == b"x"
    occ = occ_exit_message()
    assert SWAP.decompress(SWAP.compress(occ)) == occ


def test_stub_v2_escapes_only_a_leading_0x50():
    assert V2.compress(PING_STRING) == PING_STRING
    assert V2.decompress(PING_STRING) == PING_STRING
    assert V2.compress(b"\x50abc") == b"\x50\x00\x50abc"
    assert V2.decompress(b"\x50\x00\x50abc") == b"\x50abc"
    assert V2.decompress(b"\x50") == b""  # openvpn leaves an empty packet


def test_empty_payloads_stay_empty():
    for f in (LZO_STUB, SWAP, V2):
        assert f.compress(b"") == b"" and f.decompress(b"") == b""


def test_every_payload_round_trips():
    for f in (LZO_STUB, SWAP, V2):
        for n in range(0, 40):
            data = bytes((0x50 + i) & 0xFF for i in range(n))
            assert f.decompress(f.compress(data)) == data, (f, n)


def test_compressed_packets_are_refused_by_name():
    e = raises(RemoteProtocolError, LZO_STUB.decompress, b"\x66" + b"lzo data")
    assert "LZO-compressed" in str(e) and "never decompresses" in str(e)
    e = raises(RemoteProtocolError, SWAP.decompress, b"\x69" + b"lz4 data")
    assert "LZ4-compressed" in str(e)
    e = raises(RemoteProtocolError, V2.decompress, b"\x50\x01" + b"lz4 data")
    assert "LZ4-compressed" in str(e) and "compress stub-v2" in str(e)
    e = raises(RemoteProtocolError, V2.decompress, b"\x50\x09x")
    assert "0x09" in str(e)


def test_an_unframed_peer_is_named():
    e = raises(RemoteProtocolError, LZO_STUB.decompress, PING_STRING)
    assert "does not frame compression" in str(e) and "comp-lzo no" in str(e)
    e = raises(RemoteProtocolError, SWAP.decompress, b"\x00garbage")
    assert "bad compression header byte 0x00" in str(e)


def test_unframed_hint_recognises_a_framed_ping():
    assert comp.unframed_hint(LZO_STUB.compress(PING_STRING)) == "comp-lzo no"
    assert comp.unframed_hint(SWAP.compress(PING_STRING)) == "compress"
    assert comp.unframed_hint(PING_STRING) is None
    assert comp.unframed_hint(V2.compress(PING_STRING)) is None  # the v2 stub leaves pings alone


def test_config_selects_stubs_and_refuses_compression():
    assert comp.from_config(None, None) is None
    assert comp.from_config("no", None) == LZO_STUB
    assert comp.from_config(None, "") == SWAP
    assert comp.from_config(None, "stub") == SWAP
    assert comp.from_config(None, "stub-v2") == V2
    assert comp.from_config("no", "stub-v2") == V2
    for lzo in ("", "yes", "adaptive"):
        e = raises(LocalProtocolError, comp.from_config, lzo, None)
        assert "refused" in str(e) and "comp-lzo" in str(e)
    for alg in ("lz4", "lz4-v2", "lzo"):
        e = raises(LocalProtocolError, comp.from_config, None, alg)
        assert ("compress " + alg) in str(e) and "refused" in str(e)
    assert "unknown" in str(raises(LocalProtocolError, comp.from_config, None, "zstd"))


def test_pushed_settings_follow_the_last_one():
    assert comp.from_push(["ping 10", "cipher AES-256-GCM"], None) is None
    assert comp.from_push(["comp-lzo no"], None) == LZO_STUB
    assert comp.from_push(["compress"], LZO_STUB) == SWAP
    assert comp.from_push(["compress stub-v2"], None) == V2
    assert comp.from_push(["comp-lzo no", "compress stub-v2"], None) == V2
    assert comp.from_push(["ping 10"], LZO_STUB) == LZO_STUB  # nothing pushed: the config's stays


def test_pushed_compression_is_refused_as_openvpn_refuses_it():
    for option in ("comp-lzo", "comp-lzo yes", "comp-lzo adaptive", "compress lz4", "compress lz4-v2"):
        e = raises(RemoteProtocolError, comp.from_push, ["ping 10", option], None)
        assert "server pushed compression settings that are not allowed (%s)" % option in str(e), e
