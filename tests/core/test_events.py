"""What sessions report: no tokens or passwords in events, a key fingerprint only when asked for."""

from ovpnkx.events import sanitize_control_message

from _sessions import Pair, client_config, kinds, server_config

TOKEN = "SESS-TOKEN-c2VjcmV0LXRva2Vu"
USER64 = "YWxpY2UtdGhlLXVzZXI="


def test_pushed_auth_token_never_reaches_an_event():
    scfg = server_config(push_options=["auth-token %s" % TOKEN, "auth-token-user %s" % USER64,
                                       "echo secret-words %s" % TOKEN])
    pair = Pair(server_cfg=scfg)
    assert pair.pings_both_ways(1)
    events = pair.events["client"] + pair.events["server"]
    text = "\n".join([repr(e) for e in events] + [str(e.to_dict()) for e in events])
    assert TOKEN not in text and USER64 not in text and "secret-words" not in text
    replies = [e.text for e in kinds(pair.events["client"], "message") if e.text.startswith("PUSH_REPLY")]
    assert replies and "auth-token [redacted]" in replies[0] and "auth-token-user [redacted]" in replies[0]
    assert "ping 1" in replies[0]  # the rest is shown as it came


def test_sanitize_control_message():
    assert sanitize_control_message("PUSH_REPLY,route 10.0.0.0,auth-token abc,ping 10") == \
        "PUSH_REPLY,route 10.0.0.0,auth-token [redacted],ping 10"
    assert sanitize_control_message("PUSH_REPLY,echo hello world,setenv-safe SESS_ID_X y") == \
        "PUSH_REPLY,echo [redacted],setenv-safe [redacted]"
    assert sanitize_control_message("CR_RESPONSE,b3RwOjEyMzQ1Ng==") == "CR_RESPONSE,[redacted]"
    assert sanitize_control_message("PUSH_REPLY,x-password hunter2") == "PUSH_REPLY,x-password [redacted]"
    assert sanitize_control_message("AUTH_FAILED,wrong password") == "AUTH_FAILED,wrong password"
    assert sanitize_control_message("PUSH_REQUEST") == "PUSH_REQUEST"


def test_key_fingerprint_only_where_asked_for():
    pair = Pair()
    assert pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    for side in ("client", "server"):
        keys = kinds(pair.events[side], "keys")
        assert keys and "fingerprint" not in keys[0].to_dict(), keys
    pair = Pair(client_config(key_fingerprint=True), server_config(key_fingerprint=True))
    assert pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    fps = [kinds(pair.events[side], "keys")[0].fingerprint for side in ("client", "server")]
    assert fps[0] == fps[1] and len(fps[0]) == 16
