"""An unmodified openvpn 2.6 client against `ovpnkx serve` (the CPython peer).

Proof both ways: the openvpn client reaches "Initialization Sequence Completed",
logs our keepalive pings decrypted (verb 9) and no decrypt error; `ovpnkx serve`
reports the client's pings it decrypted.
"""

import time

import pytest

from ovpnkx_host import openvpn as ov

from harness import OvpnkxServer, openvpn_client_args, server_config

CASES = [("udp", False, True), ("udp", True, True), ("udp", False, False), ("tcp", False, True),
         ("tcp", True, False)]


@pytest.mark.parametrize("proto,tls_auth,ekm", CASES,
                         ids=["%s%s-%s" % (p, "-tls-auth" if t else "", "tls-ekm" if e else "prf")
                              for p, t, e in CASES])
def test_openvpn_client_against_ovpnkx_serve(pki, tmp_path, proto, tls_auth, ekm):
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(pki, proto=proto, tls_auth=tls_auth))
    server = OvpnkxServer(str(conf), () if ekm else ("--no-ekm",))
    port = server.listening[proto]
    client = ov.OpenVpn(openvpn_client_args(pki, port, proto=proto, tls_auth=tls_auth),
                        str(tmp_path / "client.log"))
    try:
        assert client.wait_for("Initialization Sequence Completed", 20), client.log()[-3000:]
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and len(ov.PING_DECRYPTED.findall(client.log())) < 2:
            time.sleep(0.2)
        # the client's own pings: wait for serve to report one decrypted (keepalive 2 s)
        server.wait_for(lambda evs: any(e["event"] == "ping" for e in evs), 12)
    finally:
        client.stop()
        events = server.stop()
    log = client.log()
    assert client.key_errors() == []
    assert len(ov.PING_DECRYPTED.findall(log)) >= 2, log[-3000:]
    keys = [e for e in events if e["event"] == "keys"]
    assert keys and keys[0]["method"] == ("tls-ekm" if ekm else "prf"), events
    assert any(e["event"] == "ping" for e in events), "no client ping decrypted by ovpnkx serve"
    assert not [e for e in events if e["event"] == "decrypt_error"]
