"""The stateless reset reply and its cookie check (2.6 UDP server flow)."""

from ovpnkx import packet as pk
from ovpnkx.cookie import CookieResponder, continue_sending_after
from ovpnkx.tlswrap import TlsAuth, TlsPlain

CLIENT_SID = bytes(range(1, 9))
PEER = b"127.0.0.1:40000"
KEY = bytes(range(256))


def _reset(wrap=None, now=1000):
    p = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, CLIENT_SID, (), None, 0, b"")
    return (wrap or TlsPlain()).wrap(p.to_bytes(), now)


def _client_hello(server_sid, wrap=None, now=1000, acks=(0,), message_id=1, key_id=0):
    p = pk.ControlPacket(pk.P_CONTROL_V1, key_id, CLIENT_SID, acks, server_sid if acks else None,
                         message_id, b"\x16\x03\x01")
    return (wrap or TlsPlain()).wrap(p.to_bytes(), now)


def test_reply_acks_the_reset_and_names_the_client():
    r = CookieResponder(b"s" * 32, TlsPlain)
    answer = pk.parse_control(r.reply(_reset(), PEER, 1000))
    assert answer.opcode == pk.P_CONTROL_HARD_RESET_SERVER_V2
    assert answer.acks == (0,) and answer.remote_session_id == CLIENT_SID and answer.message_id == 0
    # stateless: the same reset gets the same answer
    assert pk.parse_control(r.reply(_reset(), PEER, 1000)).session_id == answer.session_id


def test_verify_accepts_the_next_packet_only_with_the_cookie():
    r = CookieResponder(b"s" * 32, TlsPlain)
    sid = pk.parse_control(r.reply(_reset(), PEER, 1000)).session_id
    assert r.verify(_client_hello(sid), PEER, 2000) == (sid, CLIENT_SID)
    assert r.verify(_client_hello(sid), b"127.0.0.1:40001", 2000) is None  # other address
    assert r.verify(_client_hello(b"\x00" * 8), PEER, 2000) is None  # wrong cookie
    assert r.verify(_client_hello(sid, acks=()), PEER, 2000) is None  # "invalid or missing SID"
    assert r.verify(_client_hello(sid, message_id=2), PEER, 2000) is None  # not the 3-way handshake
    assert r.verify(_client_hello(sid, acks=(0, 2)), PEER, 2000) is None
    assert r.verify(_client_hello(sid, key_id=1), PEER, 2000) is None
    assert r.verify(_reset(), PEER, 2000) is None


def test_verify_takes_what_openvpn_takes():
    # check_session_hmac_and_pkt_id: any acks <= 1 (at least one, for the session id), a
    # message id <= 1; not necessarily the ack of 0 and message id 1
    r = CookieResponder(b"s" * 32, TlsPlain)
    sid = pk.parse_control(r.reply(_reset(), PEER, 1000)).session_id
    assert r.verify(_client_hello(sid, acks=(1,)), PEER, 2000) == (sid, CLIENT_SID)
    assert r.verify(_client_hello(sid, acks=(1, 0)), PEER, 2000) is not None
    assert r.verify(_client_hello(sid, message_id=0), PEER, 2000) is not None
    ack = pk.ControlPacket(pk.P_ACK_V1, 0, CLIENT_SID, (0,), sid, None, b"").to_bytes()
    assert r.verify(ack, PEER, 2000) is not None


def test_cookie_buckets_are_half_the_hand_window():
    # hand-window 60 s: buckets of 30 s; a cookie stays valid in its bucket and the next two
    r = CookieResponder(b"s" * 32, TlsPlain, hand_window_s=60)
    sid = pk.parse_control(r.reply(_reset(), PEER, 29000)).session_id  # bucket 0
    assert r.verify(_client_hello(sid), PEER, 89999) is not None  # bucket 2
    assert r.verify(_client_hello(sid), PEER, 90000) is None  # bucket 3
    r = CookieResponder(b"s" * 32, TlsPlain, hand_window_s=5)  # (5 + 1) // 2 = 3 s
    sid = pk.parse_control(r.reply(_reset(), PEER, 0)).session_id
    assert r.verify(_client_hello(sid), PEER, 8999) is not None
    assert r.verify(_client_hello(sid), PEER, 9000) is None
    # a worker whose clock is a bucket behind the one that answered still takes it (offset +1)
    late = CookieResponder(b"s" * 32, TlsPlain, hand_window_s=5)
    sid = pk.parse_control(late.reply(_reset(), PEER, 3000)).session_id
    assert late.verify(_client_hello(sid), PEER, 2999) is not None


def test_cookie_is_compared_in_constant_time():
    import ovpnkx.cookie as cookiemod

    calls = []
    real = cookiemod.compare_digest

    def recording(a, b):
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    cookiemod.compare_digest = recording
    try:
        r = CookieResponder(b"s" * 32, TlsPlain)
        sid = pk.parse_control(r.reply(_reset(), PEER, 1000)).session_id
        assert r.verify(_client_hello(b"\x01" * 8), PEER, 2000) is None
        assert calls and all(b == b"\x01" * 8 for a, b in calls)
        assert r.verify(_client_hello(sid), PEER, 2000) is not None
    finally:
        cookiemod.compare_digest = real


def test_garbage_and_other_opcodes_get_no_reply():
    r = CookieResponder(b"s" * 32, TlsPlain)
    for junk in (b"", b"\x38", b"\x38" + b"\x00" * 20, _client_hello(b"x" * 8), b"\xff" * 40):
        assert r.reply(junk, PEER, 0) is None
        assert r.verify(junk, PEER, 0) is None


def test_tls_auth_is_checked_and_packet_ids_continue():
    server = lambda: TlsAuth(KEY, 0)  # noqa: E731
    client = TlsAuth(KEY, 1)
    r = CookieResponder(b"s" * 32, server)
    assert r.reply(_reset(TlsAuth(bytes(256), 1)), PEER, 0) is None  # wrong tls-auth key
    answer = pk.parse_control(client.unwrap(r.reply(_reset(TlsAuth(KEY, 1)), PEER, 0), 0))
    session_wrap = server()
    continue_sending_after(session_wrap, r.sender)
    later = pk.ControlPacket(pk.P_CONTROL_V1, 0, answer.session_id, (), None, 1, b"x")
    # the client's replay window accepts the session's packets after the stateless one
    assert pk.parse_control(client.unwrap(session_wrap.wrap(later.to_bytes(), 0), 0)).payload == b"x"
