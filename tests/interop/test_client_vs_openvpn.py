"""Our client (MicroPython and CPython) against an unmodified openvpn 2.6 server.

Each case proves the data-channel keys both ways: our client decrypts the
server's keepalive pings (it counts them), and the server, at verb 9, logs our
pings decrypted to the ping magic and logs no decrypt or authentication error.
"""

import itertools

import pytest

from ovpnkx_host import openvpn as ov

from harness import need_tun, run_connect, server_ready_pattern

SERVERS = [("p2mp", "udp"), ("p2mp", "tcp"), ("p2p", "udp")]
CIPHERS = [("AES-256-GCM", "SHA1"), ("AES-256-CBC", "SHA256")]
CASES = list(itertools.product(("micropython", "cpython"), SERVERS, CIPHERS, (False, True)))
# the other data ciphers: AES-128-GCM on both runtimes, ChaCha20-Poly1305 on the host
# (MicroPython's cryptolib has no ChaCha20), AES-128-CBC with the default SHA1
CASES += [("micropython", ("p2p", "udp"), ("AES-128-GCM", "SHA1"), False),
          ("cpython", ("p2mp", "udp"), ("AES-128-GCM", "SHA1"), False),
          ("cpython", ("p2mp", "udp"), ("CHACHA20-POLY1305", "SHA1"), True),
          ("micropython", ("p2mp", "tcp"), ("AES-128-CBC", "SHA1"), True)]


def _id(case) -> str:
    runtime, (mode, proto), (cipher, auth), tls_auth = case
    return "%s-%s-%s-%s%s" % (runtime, mode, proto, cipher, "-tls-auth" if tls_auth else "")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_client_against_openvpn_server(pki, tmp_path, case):
    runtime, (mode, proto), (cipher, auth), tls_auth = case
    need_tun(mode)
    port = ov.free_port()
    args = ov.server_args(pki, port, mode=mode, proto=proto, tls_auth=tls_auth, cipher=cipher,
                          auth=auth, verb=9)
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(server_ready_pattern(proto)), server.log()[-3000:]
        conf = tmp_path / "client.ovpn"
        conf.write_text(ov.client_config(pki, port, mode=mode, proto=proto, tls_auth=tls_auth,
                                         cipher=cipher, auth=auth))
        code, events, stderr = run_connect(str(conf), runtime, pings=2)
        log = server.log()
    result = events[-1] if events else {}
    assert code == 0, "client failed: %s\n%s\nserver log tail:\n%s" % (result, stderr, log[-4000:])
    assert result["pings_received"] >= 2 and result["pings_sent"] >= 2
    assert result["cipher"] == cipher
    # MicroPython's TLS has no exporter: PRF there; the host asks for and gets tls-ekm
    assert result["key_derivation"] == ("prf" if runtime == "micropython" else "tls-ekm")
    assert server.key_errors() == []
    assert len(ov.PING_DECRYPTED.findall(log)) >= 2, "server did not decrypt our pings"
    states = [e["state"] for e in events if e["event"] == "state" and e["key_id"] == 0]
    assert states[-1] == "S_GENERATED_KEYS"
