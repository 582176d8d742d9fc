"""tls-auth (tlswrap): static key parsing, HMAC layout, key directions, replay window.

Known answers computed with CPython's hmac; the layout and key directions are
checked against the real openvpn in tests/host/test_tlswrap_openvpn.py.
"""

import struct

from ovpnkx.digest import Hmac
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError
from ovpnkx.tlswrap import TlsAuth, TlsPlain
from ovpnkx.wrapconfig import parse_static_key

from _support import load_json, raises, unhex

KEY = bytes(range(256))
T0 = 1700000000000  # ms
RESET = unhex("38 0102030405060708 00 00000000")  # hard reset client, no acks, msg id 0


def _key_text(key=KEY, comment=True):
    h = "".join("%02x" % b for b in key)
    lines = [h[i:i + 32] for i in range(0, len(h), 32)]
    head = "#\n# 2048 bit OpenVPN static key\n#\n" if comment else ""
    return (head + "-----BEGIN OpenVPN Static key V1-----\n" + "\n".join(lines)
            + "\n-----END OpenVPN Static key V1-----\n")


def _pair(auth="SHA1"):
    return TlsAuth(KEY, 1, auth), TlsAuth(KEY, 0, auth)


def _forge(plain, pid, ptime, key_index=1, auth="SHA1"):
    """A packet as direction 1 would send it, with a chosen packet-id and time."""
    size = 20 if auth == "SHA1" else 32
    off = key_index * 128 + 64
    p = struct.pack(">II", pid, ptime)
    mac = Hmac(auth, KEY[off:off + size]).digest(p, plain[:9], plain[9:])
    return plain[:9] + mac + p + plain[9:]


# -- static key --------------------------------------------------------------------------------

def test_parse_static_key():
    assert parse_static_key(_key_text()) == KEY
    assert parse_static_key(_key_text(comment=False).replace("\n", "\r\n")) == KEY


def test_parse_static_key_errors_name_the_problem():
    e = raises(LocalProtocolError, parse_static_key, "hello")
    assert "BEGIN" in str(e)
    e = raises(LocalProtocolError, parse_static_key, _key_text().replace("-----END OpenVPN Static key V1-----", ""))
    assert "END" in str(e)
    e = raises(LocalProtocolError, parse_static_key, _key_text(KEY[:255]))
    assert "510 hex digits" in str(e)
    e = raises(LocalProtocolError, parse_static_key, _key_text().replace("00010203", "0001020g", 1))
    assert "hex" in str(e)


def test_constructor_checks():
    raises(LocalProtocolError, TlsAuth, KEY[:128], 0)
    raises(LocalProtocolError, TlsAuth, KEY, 2)
    raises(LocalProtocolError, TlsAuth, KEY, 0, "WHIRLPOOL")
    assert TlsAuth(KEY, 0).overhead == 28
    assert TlsAuth(KEY, None, "SHA256").overhead == 40


# -- layout (known answers) ----------------------------------------------------------------------

def test_wrap_known_answer_direction1_sha1():
    # direction 1 sends with the hmac half of key 1 (bytes 192..)
    wire = TlsAuth(KEY, 1).wrap(RESET, T0 + 123)
    assert wire == unhex("380102030405060708 3647902577839423b58b17ca6af3b0971e4f40a1"
                         "00000001 6553f100 00 00000000")


def test_wrap_known_answer_no_direction_sha256():
    # no key-direction: both ways use key 0 (bytes 64..)
    wire = TlsAuth(KEY, None, "SHA256").wrap(RESET, T0)
    assert wire == unhex("380102030405060708"
                         "b4af9df22effa64235ff52ad55a0b3c14a7d1b0d53842d7a32c71a22f185052f"
                         "00000001 6553f100 00 00000000")


def test_packet_id_counts_up_and_time_is_fixed_at_first_send():
    ta = TlsAuth(KEY, 1)
    w1 = ta.wrap(RESET, T0)
    w2 = ta.wrap(RESET, T0 + 5000)
    assert w1[29:37] == unhex("00000001 6553f100")
    assert w2[29:37] == unhex("00000002 6553f100")


def test_time_zero_is_a_time_like_any_other():
    # a clock that starts at 0 (a board's ticks, a simulator): the time is still set once
    ta = TlsAuth(KEY, 1)
    w1 = ta.wrap(RESET, 0)
    w2 = ta.wrap(RESET, 7000)
    assert w1[29:37] == unhex("00000001 00000000")
    assert w2[29:37] == unhex("00000002 00000000")
    rx = TlsAuth(KEY, 0)
    rx.unwrap(w2, 7000)
    rx.unwrap(w1, 7000)  # same time, older id: accepted inside the window


def test_round_trip_both_directions():
    client, server = _pair()
    msg = RESET + b"payload"
    assert server.unwrap(client.wrap(msg, T0), T0) == msg
    assert client.unwrap(server.wrap(msg, T0), T0) == msg
    a, b = TlsAuth(KEY, None, "SHA256"), TlsAuth(KEY, None, "SHA256")
    assert b.unwrap(a.wrap(msg, T0), T0) == msg


def test_wrong_direction_fails_authentication():
    client, _ = _pair()
    e = raises(RemoteProtocolError, TlsAuth(KEY, 1).unwrap, client.wrap(RESET, T0), T0)
    assert "TLS Error: incoming packet authentication failed" in str(e)
    raises(RemoteProtocolError, TlsAuth(KEY, None).unwrap, client.wrap(RESET, T0), T0)


def test_every_bit_is_covered():
    client, server = _pair()
    wire = client.wrap(RESET + b"xy", T0)
    for i in range(len(wire)):
        bad = bytearray(wire)
        bad[i] ^= 0x80
        raises(RemoteProtocolError, server.unwrap, bytes(bad), T0)
    assert server.unwrap(wire, T0) == RESET + b"xy"  # failures left the replay state alone


def test_unwrap_accepts_memoryview_and_bytearray():
    client, server = _pair()
    wire = client.wrap(RESET, T0)
    assert server.unwrap(memoryview(bytearray(wire)), T0) == RESET


# -- replay window -----------------------------------------------------------------------------

def test_replay_rejected():
    client, server = _pair()
    wire = client.wrap(RESET, T0)
    server.unwrap(wire, T0)
    e = raises(RemoteProtocolError, server.unwrap, wire, T0)
    assert "replay" in str(e)


def test_reordering_within_window_accepted_once():
    _, server = _pair()
    t = T0 // 1000
    server.unwrap(_forge(RESET, 10, t), T0)
    server.unwrap(_forge(RESET, 3, t), T0)
    server.unwrap(_forge(RESET, 9, t), T0)
    raises(RemoteProtocolError, server.unwrap, _forge(RESET, 3, t), T0)
    server.unwrap(_forge(RESET, 74, t), T0)          # window now 11..74
    server.unwrap(_forge(RESET, 11, t), T0)
    raises(RemoteProtocolError, server.unwrap, _forge(RESET, 10, t), T0)  # fell out of the window


def test_packet_id_zero_rejected():
    _, server = _pair()
    raises(RemoteProtocolError, server.unwrap, _forge(RESET, 0, T0 // 1000), T0)


def test_time_going_back_rejected_forward_restarts():
    _, server = _pair()
    t = T0 // 1000
    server.unwrap(_forge(RESET, 5, t), T0)
    raises(RemoteProtocolError, server.unwrap, _forge(RESET, 6, t - 1), T0)
    server.unwrap(_forge(RESET, 1, t + 1), T0)
    raises(RemoteProtocolError, server.unwrap, _forge(RESET, 6, t), T0)


def test_time_backtrack_expires_old_gaps():
    _, server = _pair()
    t = T0 // 1000
    server.unwrap(_forge(RESET, 5, t), T0)
    server.unwrap(_forge(RESET, 2, t), T0 + 15000)   # late but within 15 s of seeing #5
    # more than 15 s after #5 was seen, the gaps behind it (#3, #4) can no longer arrive
    e = raises(RemoteProtocolError, server.unwrap, _forge(RESET, 3, t), T0 + 16000)
    assert "replay" in str(e)
    server.unwrap(_forge(RESET, 6, t), T0 + 16000)   # newer ids still pass


def test_strict_order_without_window():
    server = TlsAuth(KEY, 0, replay_window=0)
    t = T0 // 1000
    server.unwrap(_forge(RESET, 1, t), T0)
    raises(RemoteProtocolError, server.unwrap, _forge(RESET, 3, t), T0)
    server.unwrap(_forge(RESET, 2, t), T0)


# -- no tls-auth -------------------------------------------------------------------------------

def test_plain_is_identity_with_length_check():
    p = TlsPlain()
    assert p.overhead == 0
    assert p.wrap(RESET, T0) == RESET and p.unwrap(RESET, T0) == RESET
    raises(RemoteProtocolError, p.unwrap, RESET[:8], T0)
    raises(LocalProtocolError, p.wrap, RESET[:8], T0)
    raises(LocalProtocolError, TlsAuth(KEY, 0).wrap, RESET[:8], T0)


# -- malformed corpus: whole and every prefix, only RemoteProtocolError --------------------------

def test_malformed_tlsauth_corpus():
    for text in load_json("malformed/tlsauth.json"):
        data = unhex(text)
        server = TlsAuth(KEY, 0)
        for end in range(len(data) + 1):
            raises(RemoteProtocolError, server.unwrap, data[:end], T0)
        # nothing above changed the replay state: a genuine packet still passes
        assert server.unwrap(_forge(RESET, 1, T0 // 1000), T0) == RESET
