"""PUSH_REPLY parsing and what the session takes from pushed and peer-info values."""

from ovpnkx import keymethod2 as km
from ovpnkx import push as pu
from ovpnkx.errors import RemoteProtocolError
from ovpnkx.sessionconfig import SessionConfig

from _sessions import Pair, client_config, kinds, server_config
from _support import raises


def test_push_reply_options():
    p = pu.PushReply()
    assert p.add("PUSH_REPLY,route 10.0.0.0 255.0.0.0,ping 10,ping-restart 60,peer-id 5,cipher aes-256-gcm,"
                  "protocol-flags cc-exit tls-ekm")
    assert (p.ping, p.ping_restart, p.peer_id, p.cipher, p.tls_ekm, p.cc_exit) == (
        10, 60, 5, "AES-256-GCM", True, True)
    assert p.warnings == []
    assert not pu.PushReply().add("PUSH_REPLY,ping 1,push-continuation 2")


def test_pushed_timers_must_be_non_negative_integers():
    # options.c positive_atoi: anything but a non-negative int becomes 0, with a warning
    for value in ("-1", "abc", "99999999999", "1.5", ""):
        p = pu.PushReply()
        p.add("PUSH_REPLY,ping %s,ping-restart %s" % (value, value) if value else "PUSH_REPLY,ping,ping-restart")
        assert p.ping == 0 and p.ping_restart == 0, value
        assert len(p.warnings) == 2 and "ping" in p.warnings[0], p.warnings
    raises(RemoteProtocolError, pu.PushReply().add, "PUSH_REPLY,peer-id -1")
    raises(RemoteProtocolError, pu.PushReply().add, "PUSH_REPLY,peer-id 16777216")
    # digits of other scripts pass CPython's isdigit() and int() refuses or takes them:
    # a number is ASCII digits on both runtimes (found by make fuzz)
    raises(RemoteProtocolError, pu.PushReply().add, "PUSH_REPLY,peer-id 16777\u00b215")
    raises(RemoteProtocolError, pu.PushReply().add, "PUSH_REPLY,peer-id \u0661\u0662")
    p = pu.PushReply()
    p.add("PUSH_REPLY,ping \u0661\u0660")
    assert p.ping == 0 and len(p.warnings) == 1, (p.ping, p.warnings)


def test_iv_proto_is_read_as_openvpn_reads_it():
    # ssl_util.c extract_iv_proto: sscanf %d, taken only when > 0
    assert km.iv_proto({"IV_PROTO": "14"}) == 14
    assert km.iv_proto({"IV_PROTO": "14x"}) == 14
    assert km.iv_proto({"IV_PROTO": " +6"}) == 6
    for bad in ("-1", "-3", "0", "x", "", "99999999999", "-"):
        assert km.iv_proto({"IV_PROTO": bad}) == 0, bad
    assert km.iv_proto({}) == 0
    assert not hasattr(pu, "iv_proto")  # one reader of IV_PROTO


def test_pushed_negative_ping_does_not_ping_on_every_call():
    scfg = server_config(ping_ms=0, ping_restart_ms=0, push_options=["ping -1", "ping-restart -1"])
    pair = Pair(server_cfg=scfg)
    assert pair.run_until(lambda: pair.client.data_ready)
    c = pair.client
    sent = c.stats["pings_sent"]
    for _ in range(5):
        c.packets_to_send(pair.now)
    assert c.stats["pings_sent"] == sent
    assert c.get_timer() is None or c.get_timer() > pair.now
    warnings = [e.reason for e in kinds(pair.events["client"] + c.events(), "warning")]
    assert any("ping -1" in w for w in warnings) and any("ping-restart -1" in w for w in warnings), warnings


class _NegativeProto(SessionConfig):
    def peer_info(self):
        return "IV_VER=2.6.14\nIV_PROTO=-1\nIV_CIPHERS=AES-256-GCM\n"


def test_negative_iv_proto_grants_nothing():
    ccfg = _NegativeProto(is_server=False, hand_window_ms=20000, timeout_ms=1000)
    pair = Pair(client_cfg=ccfg, server_cfg=server_config(ask_ekm=True))
    assert pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    s = pair.server
    assert s.peer_id is None and not s.tls_ekm  # no DATA_V2, no tls-ekm: IV_PROTO taken as 0
    assert pair.pings_both_ways(1)
