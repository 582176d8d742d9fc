"""Data channel packets (ovpnkx.datachannel) on both runtimes.

Client and server are built from one key2 as OpenVPN does: keys[0] = bytes
0..127 {cipher 64, hmac 64}, keys[1] = 128..255; the client encrypts with
keys[0], the server with keys[1].
"""

import sys

from ovpnkx import datachannel as dc
from ovpnkx import digest
from ovpnkx.datachannel import DataChannel
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

from _support import crypto_backend, load_json, raises, replay_state, unhex

MICROPYTHON = sys.implementation.name == "micropython"
KEY2 = bytes((i * 37 + 11) & 0xFF for i in range(256))
PEER_ID = 0x0A0B0C


class _Key:
    def __init__(self, raw):
        self.cipher = raw[:64]
        self.hmac = raw[64:128]


K0 = _Key(KEY2[:128])
K1 = _Key(KEY2[128:])
BACKEND = crypto_backend()


def _ciphers():
    return [c for c in sorted(dc.CIPHERS) if BACKEND.supports(c)]


def _pair(cipher, peer_id=None, key_id=0, auth="SHA1"):
    client = DataChannel(BACKEND, cipher, auth, K0, K1, key_id, peer_id)
    server = DataChannel(BACKEND, cipher, auth, K1, K0, key_id, peer_id)
    return client, server


def _configs():
    for cipher in _ciphers():
        for peer_id in (None, PEER_ID):
            yield cipher, peer_id


def _expected_len(cipher, hdr, n, auth_size=20):
    if dc.CIPHERS[cipher][1] == "aead":
        return hdr + 4 + 16 + n
    return hdr + auth_size + 16 + (4 + n) // 16 * 16 + 16


def test_runtime_ciphers():
    expected = ["AES-128-CBC", "AES-128-GCM", "AES-256-CBC", "AES-256-GCM"]
    if not MICROPYTHON:
        expected.append("CHACHA20-POLY1305")
    assert _ciphers() == sorted(expected)
    if MICROPYTHON:
        raises(LocalProtocolError, DataChannel, BACKEND, "CHACHA20-POLY1305", "SHA1", K0, K1, 0)


def test_round_trip_every_cipher_v1_and_v2():
    for cipher, peer_id in _configs():
        client, server = _pair(cipher, peer_id, key_id=3)
        hdr = 1 if peer_id is None else 4
        for n in (1, 11, 12, 15, 16, 100, 1400):
            payload = bytes((i * 7 + n) & 0xFF for i in range(n))
            pkt = client.encrypt(payload)
            assert len(pkt) == _expected_len(cipher, hdr, n), (cipher, n)
            if peer_id is None:
                assert pkt[0] == 0x33
            else:
                assert pkt[:4] == unhex("4b0a0b0c")
            assert server.decrypt(pkt) == payload
            assert client.decrypt(server.encrypt(payload)) == payload


def test_both_headers_accepted():
    for cipher in _ciphers():
        v2_sender = DataChannel(BACKEND, cipher, "SHA1", K0, K1, 0, PEER_ID)
        v1_sender = DataChannel(BACKEND, cipher, "SHA1", K0, K1, 0)
        for receiver_peer_id in (None, 5):
            receiver = DataChannel(BACKEND, cipher, "SHA1", K1, K0, 0, receiver_peer_id)
            assert receiver.decrypt(v2_sender.encrypt(b"v2")) == b"v2"
            v1_sender._send_id = v2_sender._send_id  # the same window: next id
            assert receiver.decrypt(v1_sender.encrypt(b"v1")) == b"v1"
            v2_sender._send_id = v1_sender._send_id


def test_directions_differ():
    for cipher in _ciphers():
        client, server = _pair(cipher)
        # a client's own packet is not valid for the client (other direction's keys)
        raises(RemoteProtocolError, client.decrypt, client.encrypt(b"x"))
        assert server.decrypt(client.encrypt(b"y")) == b"y"


def test_gcm_v2_known_answer():
    # built independently with OpenSSL: AAD = hdr||pid, nonce = pid||hmac[:8]
    packet = unhex("490a0b0c00000001e4a08ffffa5cc441c5bb1c093197f8564fcda67d30117c4dd7a2fc1704bd14a3")
    client = DataChannel(BACKEND, "AES-256-GCM", "SHA1", K0, K1, 1, PEER_ID)
    assert client.encrypt(dc.PING_STRING) == packet
    server = DataChannel(BACKEND, "AES-256-GCM", "SHA1", K1, K0, 1)
    assert dc.is_ping(server.decrypt(packet))


def test_chacha_v1_known_answer():
    if not BACKEND.supports("CHACHA20-POLY1305"):
        return
    packet = unhex("3000000007a5e512ce88a7a5a2130c802651bf79c39886a9e417")
    server = DataChannel(BACKEND, "CHACHA20-POLY1305", "SHA1", K1, K0, 0)
    assert server.decrypt(packet) == b"hello"


def test_cbc_v1_known_answer_with_foreign_iv():
    # OpenVPN draws CBC IVs at random: any IV must be accepted
    packet = unhex("30d90bd534d2ac3bb479e91b40ecac033bcd59d681000102030405060708090a0b0c0d0e0f"
                   "86f080abf6068ab97f102a83b69e4051")
    server = DataChannel(BACKEND, "AES-128-CBC", "SHA1", K1, K0, 0)
    assert server.decrypt(packet) == b"hello"
    assert replay_state(server) == (1, 1)


def _corrupted(pkt, i):
    bad = bytearray(pkt)
    bad[i] ^= 0x01
    return bytes(bad)


def _state(chan):
    return replay_state(chan), chan.packets_in, chan.bytes_in


def test_every_flipped_bit_is_refused_and_changes_nothing():
    for cipher, peer_id in _configs():
        client, server = _pair(cipher, peer_id)
        server.decrypt(client.encrypt(b"first"))
        pkt = client.encrypt(b"some payload bytes")
        before = _state(server)
        for i in range(len(pkt)):
            if peer_id is not None and dc.CIPHERS[cipher][1] == "cbc" and 1 <= i <= 3:
                continue  # CBC does not authenticate the V2 header (see test below)
            raises(RemoteProtocolError, server.decrypt, _corrupted(pkt, i))
            assert _state(server) == before, (cipher, i)
        assert server.decrypt(pkt) == b"some payload bytes"


def test_cbc_hmac_does_not_cover_the_v2_header():
    # as openvpn_encrypt_v1: the HMAC starts after its own slot, so peer-id bits are not authenticated
    for cipher in ("AES-128-CBC", "AES-256-CBC"):
        client, server = _pair(cipher, PEER_ID)
        pkt = client.encrypt(b"data")
        assert server.decrypt(_corrupted(pkt, 2)) == b"data"


def test_tampered_tag_and_hmac_messages():
    client, server = _pair("AES-256-GCM")
    pkt = client.encrypt(b"data")
    err = raises(RemoteProtocolError, server.decrypt, _corrupted(pkt, 1 + 4 + 3))
    assert str(err).startswith("AEAD Decrypt error")
    client, server = _pair("AES-256-CBC")
    pkt = client.encrypt(b"data")
    err = raises(RemoteProtocolError, server.decrypt, _corrupted(pkt, 5))
    assert "packet HMAC authentication failed" in str(err)


def test_replay_and_window():
    for cipher in _ciphers():
        client, server = _pair(cipher)
        pkts = [None] + [client.encrypt(b"p%d" % i) for i in range(1, 101)]
        assert server.decrypt(pkts[70]) == b"p70"
        assert server.decrypt(pkts[7]) == b"p7"  # 63 behind: inside the window
        err = raises(RemoteProtocolError, server.decrypt, pkts[6])  # 64 behind: too old
        assert "bad packet ID (may be a replay)" in str(err)
        err = raises(RemoteProtocolError, server.decrypt, pkts[70])
        assert "bad packet ID (may be a replay)" in str(err)
        raises(RemoteProtocolError, server.decrypt, pkts[7])
        for i in (69, 50, 71, 100, 99):  # reordering inside the window
            assert server.decrypt(pkts[i]) == b"p%d" % i
        for i in (69, 50, 71, 100, 99, 36):
            raises(RemoteProtocolError, server.decrypt, pkts[i])
        assert server.decrypt(pkts[37]) == b"p37"
        assert server.packets_in == 8


def test_first_packet_far_ahead():
    client, server = _pair("AES-128-GCM")
    pkts = [client.encrypt(b"x") for _ in range(200)]
    assert server.decrypt(pkts[199]) == b"x"  # id 200
    raises(RemoteProtocolError, server.decrypt, pkts[135])  # id 136: 64 behind
    assert server.decrypt(pkts[136]) == b"x"  # id 137: 63 behind
    assert replay_state(server) == (200, 1 | 1 << 63)


def _aead_packet(cipher, pid, payload=b"zero", hdr=b"\x30"):
    pid_b = pid.to_bytes(4, "big")
    aad = hdr + pid_b if len(hdr) == 4 else pid_b
    sealed = BACKEND.aead(cipher, K0.cipher[:dc.CIPHERS[cipher][0]]).seal(pid_b + K0.hmac[:8], payload, aad)
    return hdr + pid_b + sealed[-16:] + sealed[:-16]


def _cbc_packet(plain_padded, iv=bytes(16), key_len=16, hdr=b"\x30"):
    ct = BACKEND.cbc_encrypt(K0.cipher[:key_len], iv, plain_padded)
    return hdr + digest.hmac_digest("SHA1", K0.hmac[:20], iv, ct) + iv + ct


def _pkcs7(data):
    pad = 16 - len(data) % 16
    return data + bytes((pad,)) * pad


def test_packet_id_zero_is_refused():
    for cipher in _ciphers():
        _, server = _pair(cipher)
        if dc.CIPHERS[cipher][1] == "aead":
            good, zero = _aead_packet(cipher, 1), _aead_packet(cipher, 0)
        else:
            good = _cbc_packet(_pkcs7(b"\x00\x00\x00\x01zero"), key_len=dc.CIPHERS[cipher][0])
            zero = _cbc_packet(_pkcs7(b"\x00\x00\x00\x00zero"), key_len=dc.CIPHERS[cipher][0])
        err = raises(RemoteProtocolError, server.decrypt, zero)
        assert "bad packet ID" in str(err)
        assert replay_state(server) == (0, 0)
        assert server.decrypt(good) == b"zero"


def test_cbc_bad_padding_and_short_plaintext():
    _, server = _pair("AES-128-CBC")
    err = raises(RemoteProtocolError, server.decrypt, _cbc_packet(b"\x00\x00\x00\x01" + bytes(11) + b"\x11"))
    assert "cipher final failed" in str(err)
    err = raises(RemoteProtocolError, server.decrypt, _cbc_packet(b"\x00\x00\x00\x01" + bytes(11) + b"\x00"))
    assert "cipher final failed" in str(err)
    err = raises(RemoteProtocolError, server.decrypt, _cbc_packet(b"\x00\x01\x02" + bytes((13,)) * 13))
    assert "packet-id" in str(err)
    # packet-id only, empty payload: valid
    assert server.decrypt(_cbc_packet(_pkcs7(b"\x00\x00\x00\x05"))) == b""
    assert replay_state(server) == (5, 1)


def test_short_packets():
    for cipher, peer_id in _configs():
        client, server = _pair(cipher, peer_id)
        pkt = client.encrypt(b"x")
        for n in range(len(pkt)):
            err = raises(RemoteProtocolError, server.decrypt, pkt[:n])
            assert "short packet" in str(err) or "authentication failed" in str(err), (cipher, n, str(err))
        assert server.decrypt(pkt) == b"x"


def test_wrong_key_id_and_opcode():
    client, _ = _pair("AES-128-GCM", key_id=1)
    _, server = _pair("AES-128-GCM", key_id=2)
    err = raises(RemoteProtocolError, server.decrypt, client.encrypt(b"x"))
    assert "key_id" in str(err)
    raises(RemoteProtocolError, server.decrypt, b"\x20" + bytes(40))


def test_malformed_corpus_whole_and_every_prefix():
    corpus = [unhex(h) for h in load_json("malformed/data.json")]
    assert len(corpus) > 30
    for cipher, peer_id in _configs():
        _, server = _pair(cipher, peer_id)
        before = _state(server)
        for data in corpus:
            for n in range(len(data) + 1):
                try:
                    server.decrypt(data[:n])
                except RemoteProtocolError:
                    pass
                assert _state(server) == before


def test_send_refuses_to_wrap_packet_id():
    client, server = _pair("AES-128-GCM")
    assert not client.close_to_wrapping()
    client._send_id = dc.PACKET_ID_MAX - 1
    assert client.close_to_wrapping()
    last = client.encrypt(b"last")
    assert last[1:5] == b"\xff\xff\xff\xff"
    assert server.decrypt(last) == b"last"
    err = raises(LocalProtocolError, client.encrypt, b"one more")
    assert "wrap" in str(err)
    assert client.packets_out == 1


def test_misuse_is_local_error():
    raises(LocalProtocolError, DataChannel, BACKEND, "BF-CBC", "SHA1", K0, K1, 0)
    raises(LocalProtocolError, DataChannel, BACKEND, "AES-128-GCM", "SHA1", K0, K1, 8)
    raises(LocalProtocolError, DataChannel, BACKEND, "AES-128-GCM", "SHA1", K0, K1, 0, 1 << 24)
    raises(LocalProtocolError, DataChannel, BACKEND, "AES-128-CBC", "WHIRLPOOL", K0, K1, 0)
    short = _Key(bytes(100))
    short.hmac = bytes(4)
    raises(LocalProtocolError, DataChannel, BACKEND, "AES-256-GCM", "SHA1", short, K1, 0)
    raises(LocalProtocolError, DataChannel, BACKEND, "AES-256-CBC", "SHA1", K0, short, 0)
    client, _ = _pair("AES-256-GCM")
    raises(LocalProtocolError, client.encrypt, b"")


def test_auth_digests_for_cbc():
    # SHA384/512 on MicroPython: the pure-Python ovpnkx.sha512 (the boards' hashlib lacks them)
    for auth in ("SHA1", "SHA256", "SHA384", "SHA512"):
        client, server = _pair("AES-256-CBC", auth=auth)
        pkt = client.encrypt(b"payload")
        assert len(pkt) == _expected_len("AES-256-CBC", 1, 7, digest.digest_size(auth))
        assert server.decrypt(pkt) == b"payload"
        other = "SHA256" if auth == "SHA1" else "SHA1"
        _, wrong = _pair("AES-256-CBC", auth=other)
        raises(RemoteProtocolError, wrong.decrypt, pkt)


def test_counters():
    client, server = _pair("AES-128-GCM")
    for n in (1, 10, 100):
        server.decrypt(client.encrypt(bytes(n)))
    assert (client.packets_out, client.bytes_out) == (3, 111)
    assert (server.packets_in, server.bytes_in) == (3, 111)
    assert (client.packets_in, server.packets_out) == (0, 0)


def test_ping_and_occ():
    assert dc.PING_STRING == unhex("2a187bf3641eb4cb07ed2d0a981fc748")
    assert dc.is_ping(dc.PING_STRING) and not dc.is_ping(dc.PING_STRING[:15])
    assert dc.occ_exit_message() == unhex("287f346bd4ef7a812d56b8d3afc5459c06")
    assert dc.is_occ_exit(dc.occ_exit_message())
    assert not dc.is_occ_exit(dc.OCC_STRING + b"\x05")
    assert not dc.is_occ_exit(dc.OCC_STRING)
    assert not dc.is_occ_exit(b"")
    client, server = _pair("AES-256-GCM", PEER_ID)
    assert dc.is_ping(server.decrypt(client.encrypt(dc.PING_STRING)))
    assert dc.is_occ_exit(client.decrypt(server.encrypt(dc.occ_exit_message())))


def test_time_backtrack_15_s():
    # packet_id.c: a gap below an id seen more than --replay-window's 15 s ago can no longer be filled
    client, server = _pair("AES-128-GCM")
    p1, p2, p3 = [client.encrypt(b"x") for _ in range(3)]
    assert server.decrypt(p1, 0) == b"x"
    assert server.decrypt(p3, 1000) == b"x"  # id 2 still missing
    exc = raises(RemoteProtocolError, server.decrypt, p2, 17000)  # id 3 came 16 s ago
    assert "15 s time backtrack" in str(exc)
    assert server.decrypt(p2, 16999) == b"x"  # 15 s ago: not yet too old
    short = DataChannel(BACKEND, "AES-128-GCM", "SHA1", K1, K0, 0, replay_window=32, replay_time=2)
    c2 = DataChannel(BACKEND, "AES-128-GCM", "SHA1", K0, K1, 0)
    q = [c2.encrypt(b"y") for _ in range(40)]
    assert short.decrypt(q[39], 0) == b"y"
    raises(RemoteProtocolError, short.decrypt, q[5], 0)  # 34 behind a window of 32
    assert short.decrypt(q[30], 2000) == b"y"
    raises(RemoteProtocolError, short.decrypt, q[31], 5000)


def test_renegotiation_counters_count_packets_both_ways():
    client, server = _pair("AES-128-GCM")
    p = client.encrypt(b"12345")
    assert client.n_packets == 1 and client.n_bytes == len(p)
    server.decrypt(p, 0)
    assert server.n_packets == 1 and server.n_bytes == len(p) - 1  # after the P_DATA_V1 opcode
    raises(RemoteProtocolError, server.decrypt, p, 0)  # a replay is not counted
    assert server.n_packets == 1
