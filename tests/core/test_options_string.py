"""The options string our sessions send, against what the real openvpn 2.6.14 sent for the same
config (tests/data/occ_openvpn.json, made by tools/capture_occ.py) (issue 9 item 14)."""

from ovpnkx.sessionconfig import SessionConfig
from ovpnkx.tlswrap import TlsAuth

from _sessions import Pair, client_config, server_config, tls_auth
from _support import load_json

OCC = load_json("occ_openvpn.json")


def _config(case, side):
    s = case[side]
    wrap = TlsAuth(bytes(256), s["key_direction"]) if case["tls_auth"] else None
    return SessionConfig(is_server=side == "server", p2mp=case["mode"] == "p2mp", proto=case["proto"],
                         auth=case["auth"], ciphers=case["data_ciphers"], cipher=s["cipher"], tls_auth=wrap,
                         dev_type=s["dev"])


def test_options_string_is_openvpns():
    assert OCC["openvpn"].startswith("OpenVPN 2.6.14") and len(OCC["cases"]) >= 10
    for case in OCC["cases"]:
        for side in ("client", "server"):
            assert _config(case, side).options_string() == case[side]["options"], (case["name"], side)


def test_the_session_sends_it():
    case = [c for c in OCC["cases"] if c["name"] == "p2mp-udp-tls-auth"][0]
    pair = Pair(client_config(tls_auth=tls_auth(1)), server_config(tls_auth=tls_auth(0)))
    assert pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    expected = {side: case[side]["options"].replace("dev-type null", "dev-type tun") for side in ("client", "server")}
    assert pair.server.channels[0].peer_km2.options == expected["client"]
    assert pair.client.channels[0].peer_km2.options == expected["server"]
