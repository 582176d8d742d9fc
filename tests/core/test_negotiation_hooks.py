"""A server shares one SessionConfig: its sessions' own peer-id and push options come
from ``ServerNegotiation(config, peer_id, push_hook)`` (the hook: ovpnkx serve's ifconfig)."""

from _support import raises
from ovpnkx.errors import LocalProtocolError
from ovpnkx.negotiation import Negotiation
from ovpnkx.negotiation_server import ServerNegotiation
from ovpnkx.sessionconfig import SessionConfig


class _KeyMethod2:
    def __init__(self, peer_info):
        self.peer_info = peer_info


class _Channel:
    """What Negotiation touches of a key_state: key_id, the peer's key method 2, messages out."""

    def __init__(self, peer_info):
        self.key_id = 0
        self.peer_km2 = _KeyMethod2(peer_info)
        self.keys_generated = False
        self.sent = []

    def write_message(self, text):
        self.sent.append(text)


_CLIENT = "IV_VER=2.6.14\nIV_PROTO=6\nIV_CIPHERS=AES-256-GCM\n"  # DATA_V2 | REQUEST_PUSH


def _config():
    return SessionConfig(is_server=True, ciphers=["AES-256-GCM"], ping_ms=10000, ping_restart_ms=60000,
                         push_options=["route-gateway 10.8.0.1", "topology subnet"], peer_id=99)


def test_peer_id_and_push_hook_per_session_on_a_shared_config():
    cfg = _config()
    calls = []

    def hook():
        calls.append(1)
        return ["ifconfig 10.8.0.2 255.255.255.0"]

    neg = ServerNegotiation(cfg, 7, hook)
    channel = _Channel(_CLIENT)
    assert neg.both_key_method2(channel, 0)  # REQUEST_PUSH: reply at once, keys follow
    assert neg.peer_id == 7
    assert channel.sent == ["PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,"
                            "ifconfig 10.8.0.2 255.255.255.0,peer-id 7,cipher AES-256-GCM"]
    assert calls == [1]
    assert cfg.push_options == ["route-gateway 10.8.0.1", "topology subnet"]  # the shared config is untouched
    assert cfg.peer_id == 99


def test_without_hook_or_peer_id_the_config_decides():
    neg = ServerNegotiation(_config())
    channel = _Channel(_CLIENT)
    neg.both_key_method2(channel, 0)
    assert neg.peer_id == 99
    assert channel.sent[0].endswith(",ping 10,ping-restart 60,peer-id 99,cipher AES-256-GCM")


def test_a_server_config_is_refused_by_the_client_negotiation():
    # the client's class has no server paths: it must not quietly act as a client for a server
    exc = raises(LocalProtocolError, Negotiation, _config())
    assert "ServerNegotiation" in str(exc)
