"""tls-crypt and tls-crypt-v2 (tlscrypt, ctr): known answers from the real openvpn 2.6,
wrong keys, replays, tampering, the v2 client-key unwrap and the stateless reply.

``tests/data/tlscrypt_kat.json`` holds keys made by ``openvpn --genkey`` and the first
datagrams of a real openvpn client and server using them (tools/capture_tlscrypt_kat.py):
for tls-crypt-v2 the client's P_CONTROL_HARD_RESET_CLIENT_V3, the 2.6 server's
stateless reply asking for the key again, and the client's P_CONTROL_WKC_V1.
"""

import struct

from ovpnkx import packet as pk
from ovpnkx.cookie import CookieResponder, continue_sending_after, stateless_reset
from ovpnkx.ctr import ctr_crypt
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError
from ovpnkx.tlscrypt import TlsCrypt, make_wrap_factory, parse_v2_client_key
from ovpnkx.tlscrypt_server import TlsCryptV2Server, TlsCryptV2ServerKey, parse_v2_server_key
from ovpnkx.tlswrap import TlsAuth, TlsPlain
from ovpnkx.wrapconfig import parse_static_key

from _support import crypto_backend, load_json, raises, unhex

KAT = load_json("tlscrypt_kat.json")
V1 = KAT["tls-crypt"]
V2 = KAT["tls-crypt-v2"]
CRYPTO = crypto_backend()
KEY = parse_static_key(V1["static_key"])
SERVER_KEY = parse_v2_server_key(V2["v2_server_key"])
KC, WKC = parse_v2_client_key(V2["v2_client_key"])
SK = TlsCryptV2ServerKey(SERVER_KEY, CRYPTO)


def _pkts(side, scenario):
    return [unhex(h) for h in scenario[side]]


def _ms(wire):
    """A local time (ms) matching the packet's own time field."""
    return struct.unpack(">I", wire[13:17])[0] * 1000


def _flip(data, i, bit=1):
    b = bytearray(data)
    b[i] ^= bit
    return bytes(b)


RESET = unhex("38 0102030405060708 00 00000000")  # hard reset client V2, no acks, msg id 0
V3_RESET = unhex("50 0102030405060708 00 00000000")
T0 = 1700000000000


# -- AES-CTR over ECB --------------------------------------------------------------------------

NIST_KEY = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")  # SP 800-38A F.5.5
NIST_IV = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
NIST_PT = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
NIST_CT = unhex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
                "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6")


def test_ctr_nist_vector_whole_and_partial():
    ecb = CRYPTO.ecb_encryptor(NIST_KEY)
    ctr = CRYPTO.ctr_encryptor(NIST_KEY)
    assert ctr_crypt(ecb, NIST_IV, NIST_PT) == NIST_CT
    assert ctr(NIST_IV, NIST_PT) == NIST_CT
    for n in (0, 1, 15, 16, 17, 33, 63):
        assert ctr_crypt(ecb, NIST_IV, NIST_PT[:n]) == NIST_CT[:n]
        assert ctr(NIST_IV, NIST_PT[:n]) == NIST_CT[:n]
    assert ctr_crypt(ecb, NIST_IV, NIST_CT) == NIST_PT  # the same operation decrypts


def test_ctr_counts_the_whole_128_bits_and_wraps():
    key, iv, data = bytes(range(32)), b"\xff" * 15 + b"\xfe", bytes(range(40))
    want = unhex("63e4b601b11b4edaf2e4f3d595c1294bf988f60e58b266cd4b9e0b60419249f1d2b122950e6cb9f7")
    assert ctr_crypt(CRYPTO.ecb_encryptor(key), iv, data) == want  # computed with OpenSSL's CTR
    assert CRYPTO.ctr_encryptor(key)(iv, data) == want


def test_ctr_long_input_spans_batches():
    ecb, ctr = CRYPTO.ecb_encryptor(NIST_KEY), CRYPTO.ctr_encryptor(NIST_KEY)
    data = bytes(i & 0xFF for i in range(1300))  # 82 blocks: several ECB batches
    assert ctr_crypt(ecb, NIST_IV, data) == ctr(NIST_IV, data)
    assert ctr_crypt(ecb, NIST_IV, ctr_crypt(ecb, NIST_IV, data)) == data


def test_ctr_refuses_a_bad_iv():
    raises(LocalProtocolError, ctr_crypt, CRYPTO.ecb_encryptor(NIST_KEY), NIST_IV[:15], b"x")
    raises(LocalProtocolError, CRYPTO.ctr_encryptor(NIST_KEY), NIST_IV[:15], b"x")


# -- key files made by openvpn --genkey -------------------------------------------------------

def test_openvpn_v2_keys_parse_and_the_server_key_unwraps_the_client_key():
    assert len(SERVER_KEY) == 128 and len(KC) == 256
    assert struct.unpack(">H", WKC[-2:])[0] == len(WKC)
    kc, metadata = SK.unwrap_client_key(WKC)
    assert kc == KC
    assert metadata[0] == 1 and len(metadata) == 9  # the default: a creation timestamp
    # the wrap is deterministic (SIV): ours gives openvpn's WKc byte for byte
    assert SK.wrap_client_key(KC, metadata) == WKC


def test_v2_key_file_errors_name_the_problem():
    e = raises(LocalProtocolError, parse_v2_client_key, V2["v2_server_key"])
    assert "server key" in str(e) and "client key" in str(e)
    e = raises(LocalProtocolError, parse_v2_server_key, V2["v2_client_key"])
    assert "client key" in str(e)
    e = raises(LocalProtocolError, parse_v2_client_key, V1["static_key"])
    assert "BEGIN OpenVPN tls-crypt-v2 client key" in str(e)
    text = V2["v2_client_key"]
    e = raises(LocalProtocolError, parse_v2_client_key, text.replace("-----END", "-----ENDX"))
    assert "END" in str(e)
    lines = text.split("\n")
    e = raises(LocalProtocolError, parse_v2_client_key, "\n".join(lines[:1] + ["*" + lines[1][1:]] + lines[2:]))
    assert "base64" in str(e)
    e = raises(LocalProtocolError, parse_v2_client_key, "\n".join(lines[:2] + lines[-2:]))
    assert "bytes" in str(e)
    e = raises(LocalProtocolError, parse_v2_server_key, V2["v2_server_key"].replace("\n", "\nAAAA", 1))
    assert "131 bytes, expected 128" in str(e)


def test_unwrap_client_key_failures():
    other = TlsCryptV2ServerKey(bytes(range(128)), CRYPTO)
    e = raises(RemoteProtocolError, other.unwrap_client_key, WKC)
    assert "client key authentication error" in str(e)
    for i in (0, 31, 32, 200, len(WKC) - 3):  # tag, ciphertext
        raises(RemoteProtocolError, SK.unwrap_client_key, _flip(WKC, i))
    e = raises(RemoteProtocolError, SK.unwrap_client_key, WKC[:-2] + struct.pack(">H", len(WKC) - 1))
    assert "invalid length" in str(e)
    e = raises(RemoteProtocolError, SK.unwrap_client_key, WKC[:10] + struct.pack(">H", 12))
    assert "tag" in str(e)
    e = raises(RemoteProtocolError, SK.unwrap_client_key, bytes(1100))
    assert "too big" in str(e)
    raises(LocalProtocolError, SK.wrap_client_key, KC[:255], b"\x01")
    raises(LocalProtocolError, SK.wrap_client_key, KC, b"")


# -- openvpn's own packets ---------------------------------------------------------------------

def test_openvpn_tls_crypt_client_packets_unwrap_on_the_server_side():
    server = TlsCrypt(KEY, True, CRYPTO)
    reset, hello, ack = _pkts("client", V1)
    p = pk.parse_control(server.unwrap(reset, _ms(reset)))
    assert (p.opcode, p.message_id, p.acks, p.payload) == (pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, (), b"")
    p = pk.parse_control(server.unwrap(hello, _ms(hello)))
    assert p.opcode == pk.P_CONTROL_V1 and p.message_id == 1 and p.acks == (0,)
    assert p.payload[0] == 0x16  # a TLS handshake record: the ClientHello
    assert pk.parse_control(server.unwrap(ack, _ms(ack))).opcode == pk.P_ACK_V1
    e = raises(RemoteProtocolError, server.unwrap, hello, _ms(hello))
    assert "replay" in str(e)


def test_openvpn_tls_crypt_server_packets_unwrap_on_the_client_side():
    client = TlsCrypt(KEY, False, CRYPTO)
    reply, hello = _pkts("server", V1)
    sid = _pkts("client", V1)[0][1:9]
    p = pk.parse_control(client.unwrap(reply, _ms(reply)))
    assert (p.opcode, p.acks, p.remote_session_id, p.message_id) == (pk.P_CONTROL_HARD_RESET_SERVER_V2, (0,),
                                                                    sid, 0)
    assert pk.parse_control(client.unwrap(hello, _ms(hello))).opcode == pk.P_CONTROL_V1
    # the server's packets do not pass as the client's (each side has its own half)
    raises(RemoteProtocolError, TlsCrypt(KEY, True, CRYPTO).unwrap, reply, _ms(reply))


def test_wrap_is_openvpns_byte_for_byte():
    for scenario, wrapper in ((V1, TlsCrypt(KEY, False, CRYPTO)), (V2, TlsCrypt(KC, False, CRYPTO, wkc=WKC))):
        first, second = _pkts("client", scenario)[:2]
        reader = TlsCrypt(KEY, True, CRYPTO) if scenario is V1 else TlsCryptV2Server(SK)
        plain1 = reader.unwrap(first, _ms(first))
        plain2 = reader.unwrap(second, _ms(second))
        assert wrapper.wrap(plain1, _ms(first)) == first
        assert wrapper.wrap(plain2, _ms(second)) == second


def test_openvpn_v2_reset_teaches_the_server_the_client_key():
    v3, wkc_v1, ack = _pkts("client", V2)
    assert v3[9:13] == unhex("0f000001")  # packet-id EARLY_NEG_START + 1: early negotiation
    assert stateless_reset(v3)
    server = TlsCryptV2Server(SK)
    assert not server.keyed
    p = pk.parse_control(server.unwrap(v3, _ms(v3)))
    assert (p.opcode, p.message_id, p.payload) == (pk.P_CONTROL_HARD_RESET_CLIENT_V3, 0, b"")
    assert server.keyed and server.metadata[0] == 1
    p = pk.parse_control(server.unwrap(wkc_v1, _ms(wkc_v1)))  # its WKc is cut off unread
    assert p.opcode == pk.P_CONTROL_WKC_V1 and p.message_id == 1 and p.acks == (0,)
    assert p.payload[0] == 0x16
    assert pk.parse_control(server.unwrap(ack, _ms(ack))).opcode == pk.P_ACK_V1
    # the stateless flow: a fresh wrapper learns the key from the WKC_V1 alone
    fresh = TlsCryptV2Server(SK)
    assert pk.parse_control(fresh.unwrap(wkc_v1, _ms(wkc_v1))).opcode == pk.P_CONTROL_WKC_V1


def test_openvpn_stateless_reply_asks_our_v2_client_to_resend_its_key():
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    reply = _pkts("server", V2)[0]
    assert reply[9:13] == unhex("00000001")  # the stateless reply's packet-id is 1
    p = pk.parse_control(client.unwrap(reply, _ms(reply)))
    assert p.opcode == pk.P_CONTROL_HARD_RESET_SERVER_V2 and p.acks == (0,) and p.message_id == 0
    assert pk.parse_tlvs(p.payload) == [(pk.TLV_TYPE_EARLY_NEG_FLAGS, b"\x00\x01")]


# -- round trips, wrong keys, tampering, replay ---------------------------------------------------

def _pair(key=KEY, wkc=None):
    return TlsCrypt(key, False, CRYPTO, wkc=wkc), TlsCrypt(key, True, CRYPTO)


def test_round_trip_both_directions():
    client, server = _pair()
    msg = RESET + b"payload" * 40
    assert server.unwrap(client.wrap(msg, T0), T0) == msg
    assert client.unwrap(server.wrap(msg, T0), T0) == msg
    assert client.overhead == server.overhead == 40
    assert len(client.wrap(msg, T0)) == len(msg) + 40


def test_v2_round_trip_through_the_server_key():
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    server = TlsCryptV2Server(SK)
    wire = client.wrap(V3_RESET, T0)
    assert wire.endswith(WKC) and len(wire) == len(V3_RESET) + 40 + len(WKC)
    assert server.unwrap(wire, T0) == V3_RESET
    msg = unhex("40 1112131415161718 01 00000000 0102030405060708 00000000")
    assert client.unwrap(server.wrap(msg, T0), T0) == msg
    ctl = RESET[:1] + RESET[1:]  # any later packet carries no WKc
    assert not client.wrap(unhex("20") + RESET[1:], T0).endswith(WKC)
    assert server.unwrap(client.wrap(unhex("20") + ctl[1:], T0), T0) == unhex("20") + ctl[1:]


def test_wrong_key_or_wrong_side_fails_authentication():
    client, _ = _pair()
    wire = client.wrap(RESET, T0)
    e = raises(RemoteProtocolError, TlsCrypt(bytes(256), True, CRYPTO).unwrap, wire, T0)
    assert "packet authentication failed" in str(e)
    raises(RemoteProtocolError, TlsCrypt(KEY, False, CRYPTO).unwrap, wire, T0)  # client to client
    raises(RemoteProtocolError, TlsCrypt(KC, True, CRYPTO).unwrap, wire, T0)


def test_every_bit_is_covered_and_failures_leave_the_replay_state():
    client, server = _pair()
    wire = client.wrap(RESET + b"xy", T0)
    for i in range(len(wire)):
        for bit in (0x01, 0x80):
            raises(RemoteProtocolError, server.unwrap, _flip(wire, i, bit), T0)
    raises(RemoteProtocolError, server.unwrap, wire[:-1], T0)
    raises(RemoteProtocolError, server.unwrap, wire + b"\x00", T0)
    assert server.unwrap(wire, T0) == RESET + b"xy"


def test_replayed_packet_is_rejected_reordered_accepted_once():
    client, server = _pair()
    w1, w2, w3 = client.wrap(RESET, T0), client.wrap(RESET, T0), client.wrap(RESET, T0)
    server.unwrap(w1, T0)
    e = raises(RemoteProtocolError, server.unwrap, w1, T0)
    assert "replay" in str(e)
    server.unwrap(w3, T0)
    server.unwrap(w2, T0)  # late, inside the window
    raises(RemoteProtocolError, server.unwrap, w2, T0)


def test_v2_client_packet_ids_announce_early_negotiation():
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    assert client.wrap(V3_RESET, T0)[9:13] == unhex("0f000001")
    assert client.wrap(RESET, T0)[9:13] == unhex("0f000002")
    assert TlsCrypt(KEY, False, CRYPTO).wrap(RESET, T0)[9:13] == unhex("00000001")


def test_v2_tampered_packet_leaves_the_server_wrapper_unkeyed():
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    wire = client.wrap(V3_RESET, T0)
    server = TlsCryptV2Server(SK)
    e = raises(RemoteProtocolError, server.unwrap, _flip(wire, 20), T0)  # inner tag; WKc fine
    assert "authentication failed" in str(e) and not server.keyed
    e = raises(RemoteProtocolError, server.unwrap, _flip(wire, len(wire) - 10), T0)  # WKc
    assert "client key" in str(e) and not server.keyed
    assert server.unwrap(wire, T0) == V3_RESET and server.keyed


def test_v2_keyed_server_cuts_later_wkcs_off_unread():
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    server = TlsCryptV2Server(SK)
    server.unwrap(client.wrap(V3_RESET, T0), T0)
    other = bytes(len(WKC) - 2) + WKC[-2:]  # junk of the right length
    inner = client.wrap(unhex("58") + RESET[1:9] + unhex("00 00000001") + b"hello", T0)
    assert server.unwrap(inner[:-len(WKC)] + other, T0)[0] == 0x58


def test_v2_server_needs_the_client_key_first():
    server = TlsCryptV2Server(SK)
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    e = raises(RemoteProtocolError, server.unwrap, client.wrap(unhex("20") + RESET[1:], T0), T0)
    assert "no client key yet" in str(e)
    raises(LocalProtocolError, server.wrap, RESET, T0)


def test_v3_and_wkc_packets_are_refused_without_a_v2_server_key():
    v3 = _pkts("client", V2)[0]
    for wrapper in (TlsCrypt(KEY, True, CRYPTO), TlsCrypt(KC, False, CRYPTO, wkc=WKC), TlsAuth(KEY, 0),
                    TlsPlain()):
        for wire in (v3, _pkts("client", V2)[1]):
            e = raises(RemoteProtocolError, wrapper.unwrap, wire, _ms(wire))
            assert "no tls-crypt-v2 server key" in str(e)


def test_wrap_and_constructor_checks():
    raises(LocalProtocolError, TlsCrypt, KEY[:255], True, CRYPTO)
    raises(LocalProtocolError, TlsCrypt(KEY, False, CRYPTO).wrap, RESET[:8], T0)
    raises(LocalProtocolError, TlsCrypt(KEY, False, CRYPTO).wrap, V3_RESET, T0)  # V3 needs a WKc
    raises(LocalProtocolError, TlsCryptV2ServerKey, SERVER_KEY[:127], CRYPTO)


def test_wrap_factory_from_config_texts():
    class Cfg:
        tls_crypt = V1["static_key"]
        tls_crypt_v2 = None

    make = make_wrap_factory(Cfg, False, CRYPTO)
    a, b = make(), make()
    assert a is not b and a.name == "tls-crypt"
    Cfg.tls_crypt, Cfg.tls_crypt_v2 = None, V2["v2_client_key"]
    assert make_wrap_factory(Cfg, False, CRYPTO)().wkc == WKC
    raises(LocalProtocolError, make_wrap_factory, Cfg, True, CRYPTO)  # a server needs the server key
    Cfg.tls_crypt_v2 = V2["v2_server_key"]
    assert isinstance(make_wrap_factory(Cfg, True, CRYPTO)(), TlsCryptV2Server)


# -- the 2.6 stateless reply for tls-crypt-v2 -----------------------------------------------------

def test_cookie_flow_for_a_v2_client():
    peer = b"127.0.0.1:40000"
    responder = CookieResponder(b"k" * 32, lambda: TlsCryptV2Server(SK))
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    reset = client.wrap(V3_RESET, T0)
    reply = responder.reply(reset, peer, T0)
    assert reply[9:13] == unhex("00000001")  # under the client's key, packet-id 1
    p = pk.parse_control(client.unwrap(reply, T0))
    assert p.opcode == pk.P_CONTROL_HARD_RESET_SERVER_V2 and p.acks == (0,)
    assert pk.parse_tlvs(p.payload) == [(pk.TLV_TYPE_EARLY_NEG_FLAGS, b"\x00\x01")]
    # the proof must carry the key again: a P_CONTROL_V1 cannot even be read
    proof = pk.ControlPacket(pk.P_CONTROL_V1, 0, V3_RESET[1:9], (0,), p.session_id, 1, b"\x16\x03\x01")
    assert responder.verify(client.wrap(proof.to_bytes(), T0), peer, T0) is None
    proof.opcode = pk.P_CONTROL_WKC_V1
    wire = client.wrap(proof.to_bytes(), T0)
    assert wire.endswith(WKC)
    assert responder.verify(wire, peer, T0) == (p.session_id, V3_RESET[1:9])
    assert responder.verify(wire, b"127.0.0.1:40001", T0) is None  # another address
    # the session continues after the stateless reply's packet-id 1
    session_wrap = TlsCryptV2Server(SK)
    continue_sending_after(session_wrap, responder.sender)
    session_wrap.unwrap(wire, T0)
    assert session_wrap.wrap(RESET, T0 + 1000)[9:13] == unhex("00000002")


def test_cookie_old_v2_client_gets_no_stateless_reply():
    responder = CookieResponder(b"k" * 32, lambda: TlsCryptV2Server(SK))
    client = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    client._send_id = 0  # a 2.5 client: no early-negotiation packet-id
    reset = client.wrap(V3_RESET, T0)
    assert not stateless_reset(reset)
    for top, stateless in ((0x0F, True), (0x1F, True), (0xFF, True), (0x0E, False), (0x10, False)):
        assert stateless_reset(reset[:9] + bytes([top]) + reset[10:]) == stateless
    assert responder.reply(reset, b"p", T0) is None
    assert responder.authentic_reset(reset, T0)
    assert not responder.authentic_reset(_flip(reset, 30), T0)


# -- malformed corpus: whole and every prefix, only RemoteProtocolError ------------------------

def test_malformed_tlscrypt_corpus():
    corpus = load_json("malformed/tlscrypt.json")
    client, v2client = TlsCrypt(KEY, False, CRYPTO), TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    for kind, make in (("tls-crypt", lambda: TlsCrypt(KEY, True, CRYPTO)), ("tls-crypt-v2", lambda: TlsCryptV2Server(SK))):
        wrapper = make()
        for case in corpus[kind]:
            data = unhex(case["hex"])
            for end in range(len(data) + 1):
                try:
                    wrapper.unwrap(data[:end], T0)
                except RemoteProtocolError:
                    continue
                raise AssertionError("%s: %s[:%d] was accepted" % (kind, case["why"], end))
        # nothing above changed the wrapper: a genuine packet still passes
        if kind == "tls-crypt":
            assert wrapper.unwrap(client.wrap(RESET, T0), T0) == RESET
        else:
            assert not wrapper.keyed
            assert wrapper.unwrap(v2client.wrap(V3_RESET, T0), T0) == V3_RESET
