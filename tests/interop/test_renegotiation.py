"""Server-initiated renegotiation (P_CONTROL_SOFT_RESET_V1) with the real openvpn 2.6.

The server renegotiates every 2 s (`--reneg-sec 2`). Each new key_state runs a fresh
TLS handshake and key method 2 exchange under the same session ids; key_id goes
0, 1..7, then wraps to 1. The old key stays as lame duck, so no ping is lost.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host.runtime import micropython_binary, micropython_env

from harness import (OvpnkxServer, need_tun, openvpn_client_args, pings_decrypted_by_key, run_connect,
                     server_config, server_ready_pattern)


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


# -- issue 9 item 10: renegotiations started by us and by openvpn, data across each ----------------

CONNECT_WITH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "connect_with.py")


def _connect_with(conf: str, runtime: str, pings: int, *settings: str) -> tuple:
    """Our client with config attributes set (connect_with.py); (exit code, events, stderr)."""
    if runtime == "micropython":
        cmd, env = [micropython_binary(), CONNECT_WITH], micropython_env()
    else:
        cmd, env = [sys.executable, CONNECT_WITH], None
    proc = subprocess.run(cmd + [conf, str(pings), "60"] + list(settings), env=env,
                          capture_output=True, text=True, timeout=90)
    return proc.returncode, [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")], proc.stderr


def _pings_by_key(events: list) -> dict:
    out: dict = {}
    for e in events:
        if e["event"] == "ping":
            out[e["key_id"]] = out.get(e["key_id"], 0) + 1
    return out


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
@pytest.mark.parametrize("initiator", ["ovpnkx", "openvpn"])
def test_renegotiation_started_by_either_side(pki, tmp_path, runtime, initiator):
    """reneg-sec 3 on one side (0 on the other), pings every second: after each new key both
    sides decrypt pings under it (we count ours by key_id, openvpn logs its own at verb 9)."""
    need_tun("p2mp")
    port = ov.free_port()
    server_reneg = "3" if initiator == "openvpn" else "0"
    args = ov.server_args(pki, port, mode="p2mp", verb=9) + ["--keepalive", "1", "10", "--reneg-sec", server_reneg]
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(server_ready_pattern("udp")), server.log()[-3000:]
        conf = tmp_path / "client.ovpn"
        conf.write_text(ov.client_config(pki, port, mode="p2mp"))
        ours = "reneg_sec=3" if initiator == "ovpnkx" else "reneg_sec=0"
        code, events, stderr = _connect_with(str(conf), runtime, 8, ours)
        log = server.log()
    assert code == 0, (events[-3:], stderr, log[-3000:])
    key_ids = [e["key_id"] for e in events if e["event"] == "keys"]
    assert key_ids[:3] == [0, 1, 2], key_ids  # two renegotiations in 8 s
    started = [e for e in events if e["event"] == "renegotiate"]
    if initiator == "ovpnkx":
        assert len(started) >= 2 and all(e["reason"] == "reneg-sec 3" for e in started), started
    else:
        assert started == [], started
    for k in key_ids[:-1]:  # the last key may have come just before the end
        assert _pings_by_key(events).get(k), "no ping decrypted with key_id %d: %s" % (k, events)
        assert pings_decrypted_by_key(log).get(k), "openvpn decrypted no ping of ours with key_id %d" % k
    assert server.key_errors() == []
    assert events[-1]["decrypt_errors"] == 0


def test_openvpn_client_renegotiates_with_serve(pki, tmp_path):
    """An openvpn client with reneg-sec 3 against `ovpnkx serve`: its soft resets are answered."""
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(pki).replace("keepalive 2 10", "keepalive 1 10"))
    server = OvpnkxServer(str(conf))
    client = ov.OpenVpn(openvpn_client_args(pki, server.listening["udp"]) + ["--reneg-sec", "3"],
                        str(tmp_path / "client.log"))
    try:
        assert client.wait_for("Initialization Sequence Completed", 20), client.log()[-3000:]

        def two_new_keys_with_pings(evs):
            by_key = _pings_by_key(evs)
            return by_key.get(1) and by_key.get(2)

        server.wait_for(two_new_keys_with_pings, 15)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not {1, 2} <= set(pings_decrypted_by_key(client.log())):
            time.sleep(0.2)
    finally:
        client.stop()
        events = server.stop()
    log = client.log()
    assert [e["key_id"] for e in events if e["event"] == "keys"][:3] == [0, 1, 2], events
    assert [e for e in events if e["event"] == "renegotiate"] == []  # openvpn started them
    assert _pings_by_key(events).get(1) and _pings_by_key(events).get(2), events
    decrypted = pings_decrypted_by_key(log)
    assert decrypted.get(1) and decrypted.get(2), decrypted
    assert client.key_errors() == [] and not [e for e in events if e["event"] == "decrypt_error"]


def test_serve_renegotiates_with_openvpn_client(pki, tmp_path):
    """`ovpnkx serve` with reneg-sec 3 (set on its parsed config, as the directive will) against
    an openvpn client with reneg-sec 0: serve starts the soft resets."""
    from ovpnkx.config import parse_config
    from ovpnkx_host.server import Server, UdpListener

    text = server_config(pki).replace("keepalive 2 10", "keepalive 1 10")
    cfg = parse_config(text, "server.conf", lambda p: open(p).read(), server=True)
    cfg.reneg_sec = 3
    events: list = []

    async def run() -> str:
        loop = asyncio.get_running_loop()
        srv = Server(cfg, True, events.append)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        UdpListener(srv, sock).start(loop)
        port = sock.getsockname()[1]
        client = ov.OpenVpn(openvpn_client_args(pki, port) + ["--reneg-sec", "0"], str(tmp_path / "client.log"))
        try:
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                if {1, 2} <= set(pings_decrypted_by_key(client.log())) and \
                        _pings_by_key(events).get(1) and _pings_by_key(events).get(2):
                    break
                await asyncio.sleep(0.2)
        finally:
            srv.close_all("test over")
            loop.remove_reader(sock.fileno())
            sock.close()
            await loop.run_in_executor(None, client.stop)
        return client.log()

    log = asyncio.run(run())
    started = [e for e in events if e["event"] == "renegotiate"]
    assert len(started) >= 2 and started[0]["reason"].startswith("reneg-sec "), events
    assert [e["key_id"] for e in events if e["event"] == "keys"][:3] == [0, 1, 2], events
    assert _pings_by_key(events).get(1) and _pings_by_key(events).get(2), events
    decrypted = pings_decrypted_by_key(log)
    assert decrypted.get(1) and decrypted.get(2), (decrypted, log[-3000:])
    assert not [e for e in events if e["event"] == "decrypt_error"]
