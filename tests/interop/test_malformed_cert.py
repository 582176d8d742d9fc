"""A peer certificate whose subject `cryptography` cannot parse (a CN re-tagged T61String
holding ff fe, which OpenSSL accepts) is refused cleanly by `connect` on both runtimes and
by `serve`: a reason that names it, no traceback (issue 9 item 1)."""

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod

from harness import OvpnkxServer, run_connect, server_config


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    return pkimod.make_pki(str(tmp / "s"), malformed_cn="server"), pkimod.make_pki(str(tmp / "c"), malformed_cn="client")


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_connect_refuses_a_server_certificate_it_cannot_parse(bad, tmp_path, runtime):
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(bad[0]))
    server = OvpnkxServer(str(conf))
    try:
        client = tmp_path / "client.ovpn"
        client.write_text(ov.client_config(bad[0], server.listening["udp"]).replace("hand-window 20", "hand-window 5"))
        code, events, stderr = run_connect(str(client), runtime, pings=1, timeout=60)
    finally:
        server.stop()
    assert code == 1 and "Traceback" not in stderr, stderr
    result = events[-1]
    assert result["event"] == "result" and not result["ok"]
    assert "certificate" in result["reason"], result


def test_serve_refuses_a_client_certificate_it_cannot_parse(bad, tmp_path):
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(bad[1]).replace("keepalive 2 10", "keepalive 2 10\nhand-window 5"))
    server = OvpnkxServer(str(conf))
    try:
        client = tmp_path / "client.ovpn"
        client.write_text(ov.client_config(bad[1], server.listening["udp"]).replace("hand-window 20", "hand-window 5"))
        code, events, stderr = run_connect(str(client), "cpython", pings=1, timeout=60)
        assert server.wait_for(lambda evs: any(e["event"] == "closed" for e in evs), 10)
    finally:
        served = server.stop()
    assert code == 1
    assert "Exception" not in server.stderr and "Traceback" not in server.stderr, server.stderr
    closed = [e for e in served if e["event"] == "closed"]
    assert closed and "cannot be read" in closed[0]["reason"], served
