"""Server-initiated renegotiation (P_CONTROL_SOFT_RESET_V1) with the real openvpn 2.6.

The server renegotiates every 2 s (`--reneg-sec 2`). Each new key_state runs a fresh
TLS handshake and key method 2 exchange under the same session ids; key_id goes
0, 1..7, then wraps to 1. The old key stays as lame duck, so no ping is lost.
"""

import pytest

from ovpnkx_host import openvpn as ov

from harness import need_tun, run_connect, server_ready_pattern


@pytest.mark.parametrize("runtime,pings", [("micropython", 9), ("cpython", 3)])
def test_renegotiation_with_openvpn(pki, tmp_path, runtime, pings):
    need_tun("p2mp")
    port = ov.free_port()
    args = ov.server_args(pki, port, mode="p2mp", verb=4) + ["--reneg-sec", "2"]
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(server_ready_pattern("udp")), server.log()[-3000:]
        conf = tmp_path / "client.ovpn"
        conf.write_text(ov.client_config(pki, port, mode="p2mp"))
        code, events, stderr = run_connect(str(conf), runtime, pings=pings, timeout=60)
    assert code == 0, (events[-1:], stderr, server.log()[-3000:])
    key_ids = [e["key_id"] for e in events if e["event"] == "keys"]
    assert key_ids[0] == 0 and len(key_ids) >= 2, key_ids  # at least one renegotiation
    for a, b in zip(key_ids, key_ids[1:]):
        assert b == (1 if a == 7 else a + 1), key_ids  # 0 only first, then 1..7 wrapping to 1
    if runtime == "micropython":
        assert 7 in key_ids and key_ids.count(1) >= 2, "the key_id did not wrap: %s" % key_ids
    assert server.key_errors() == []
