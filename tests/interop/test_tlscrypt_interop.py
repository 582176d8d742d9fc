"""tls-crypt and tls-crypt-v2 against an unmodified openvpn 2.6, both ways.

Keys are made by openvpn itself (``--genkey secret``, ``tls-crypt-v2-server``,
``tls-crypt-v2-client``) and used as they are, as files and as inline blocks.

- Our client (MicroPython and CPython) against a real openvpn p2mp server, UDP and
  TCP: pings decrypted both ways, no authentication or decrypt error in the
  server's log; over UDP with tls-crypt-v2 the server's log shows our
  P_CONTROL_WKC_V1 passing its stateless HMAC-cookie check.
- A real openvpn client against ``ovpnkx serve``: the client logs our pings
  decrypted; over UDP with tls-crypt-v2 it sent P_CONTROL_WKC_V1 (the 2.6 cookie flow).
- A tls-crypt-v2 client key made for another server key: the openvpn server drops
  every packet; our client fails after its hand-window naming tls-crypt-v2.
- ``ovpnkx serve``: an older (2.5) tls-crypt-v2 client, whose packet-ids do not
  announce early negotiation, gets a session at once, unless ``force-cookie``.
"""

import os
import socket
import subprocess
import time

import pytest

from ovpnkx import packet as pk
from ovpnkx.tlscrypt import TlsCrypt, parse_v2_client_key
from ovpnkx_host import openvpn as ov
from ovpnkx_host.crypto_host import HostCrypto

from harness import OvpnkxServer, need_tun, openvpn_client_args, run_connect, server_config, server_ready_pattern


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key files made by openvpn --genkey: static, v2 server, v2 client, and a v2 client
    key wrapped by another server key."""
    d = tmp_path_factory.mktemp("tlscrypt-keys")
    k = {n: str(d / n) for n in ("tc.key", "v2s.key", "v2c.key", "other-v2s.key", "other-v2c.key")}
    genkey = [ov.openvpn_binary(), "--genkey"]
    subprocess.run(genkey + ["secret", k["tc.key"]], check=True, capture_output=True)
    for server, client in (("v2s.key", "v2c.key"), ("other-v2s.key", "other-v2c.key")):
        subprocess.run(genkey + ["tls-crypt-v2-server", k[server]], check=True, capture_output=True)
        subprocess.run([ov.openvpn_binary(), "--tls-crypt-v2", k[server], "--genkey", "tls-crypt-v2-client",
                        k[client]], check=True, capture_output=True)
    return k


def _client_lines(kind: str, keys: dict, inline: bool, client_key: str = "v2c.key") -> str:
    directive, path = ("tls-crypt", keys["tc.key"]) if kind == "tls-crypt" else ("tls-crypt-v2", keys[client_key])
    if not inline:
        return "%s %s\n" % (directive, path)
    with open(path) as f:
        return "<%s>\n%s</%s>\n" % (directive, f.read(), directive)


CLIENT_CASES = [(runtime, kind, proto) for runtime in ("micropython", "cpython")
                for kind in ("tls-crypt", "tls-crypt-v2") for proto in ("udp", "tcp")]


@pytest.mark.parametrize("runtime,kind,proto", CLIENT_CASES, ids=["-".join(c) for c in CLIENT_CASES])
def test_our_client_against_openvpn_server(pki, keys, tmp_path, runtime, kind, proto):
    need_tun("p2mp")
    port = ov.free_port()
    wrap = ["--tls-crypt", keys["tc.key"]] if kind == "tls-crypt" else ["--tls-crypt-v2", keys["v2s.key"]]
    args = ov.server_args(pki, port, proto=proto, verb=9) + wrap + ["--keepalive", "1", "10"]
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(server_ready_pattern(proto)), server.log()[-3000:]
        conf = tmp_path / "client.ovpn"
        # inline blocks on one runtime, key files on the other
        conf.write_text(ov.client_config(pki, port, proto=proto)
                        + _client_lines(kind, keys, inline=runtime == "cpython"))
        code, events, stderr = run_connect(str(conf), runtime, pings=2)
        log = server.log()
    result = events[-1] if events else {}
    assert code == 0, "client failed: %s\n%s\nserver log tail:\n%s" % (result, stderr, log[-4000:])
    assert result["pings_received"] >= 2 and result["pings_sent"] >= 2
    assert result["dropped"] == 0
    assert [e["tls_wrap"] for e in events if e["event"] == "connecting"] == [kind]
    assert server.key_errors() == [] and "tls-crypt unwrapping failed" not in log
    assert len(ov.PING_DECRYPTED.findall(log)) >= 2, "server did not decrypt our pings"
    if kind == "tls-crypt-v2":
        assert "Control Channel: using tls-crypt-v2 key" in log
        if proto == "udp":
            assert "Valid packet (P_CONTROL_WKC_V1) with HMAC challenge" in log, log[-4000:]


SERVE_CASES = [(kind, proto) for kind in ("tls-crypt", "tls-crypt-v2") for proto in ("udp", "tcp")]


@pytest.mark.parametrize("kind,proto", SERVE_CASES, ids=["-".join(c) for c in SERVE_CASES])
def test_openvpn_client_against_ovpnkx_serve(pki, keys, tmp_path, kind, proto):
    conf = tmp_path / "server.conf"
    key_line = "tls-crypt %s\n" % keys["tc.key"] if kind == "tls-crypt" else "tls-crypt-v2 %s\n" % keys["v2s.key"]
    conf.write_text(server_config(pki, proto=proto).replace("keepalive 2 10", "keepalive 1 10") + key_line)
    server = OvpnkxServer(str(conf))
    port = server.listening[proto]
    wrap = ["--tls-crypt", keys["tc.key"]] if kind == "tls-crypt" else ["--tls-crypt-v2", keys["v2c.key"]]
    client = ov.OpenVpn(openvpn_client_args(pki, port, proto=proto) + wrap, str(tmp_path / "client.log"))
    try:
        assert client.wait_for("Initialization Sequence Completed", 20), client.log()[-3000:]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(ov.PING_DECRYPTED.findall(client.log())) < 2:
            time.sleep(0.2)
        time.sleep(1.5)  # let the client's own pings reach us
    finally:
        client.stop()
        events = server.stop()
    log = client.log()
    assert client.key_errors() == [] and "tls-crypt unwrapping failed" not in log
    assert len(ov.PING_DECRYPTED.findall(log)) >= 2, log[-3000:]
    assert len([e for e in events if e["event"] == "session"]) == 1, events
    assert any(e["event"] == "ping" for e in events), "no client ping decrypted by ovpnkx serve"
    assert not [e for e in events if e["event"] in ("decrypt_error", "dropped")], events
    if kind == "tls-crypt-v2" and proto == "udp":
        assert "P_CONTROL_WKC_V1" in log  # the client answered our stateless reply


def test_client_key_of_another_server_fails_naming_tls_crypt_v2(pki, keys, tmp_path):
    need_tun("p2mp")
    port = ov.free_port()
    args = ov.server_args(pki, port) + ["--tls-crypt-v2", keys["v2s.key"]]
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(server_ready_pattern("udp")), server.log()[-3000:]
        conf = tmp_path / "client.ovpn"
        conf.write_text(ov.client_config(pki, port).replace("hand-window 20", "hand-window 4")
                        + _client_lines("tls-crypt-v2", keys, False, "other-v2c.key"))
        code, events, _ = run_connect(str(conf), "cpython", pings=1)
        log = server.log()
    reason = events[-1]["reason"] if events else ""
    assert code == 1
    assert "nothing authenticated ever arrived" in reason and "tls-crypt-v2" in reason, reason
    assert "can not extract tls-crypt-v2 client key" in log, log[-3000:]
    assert "Initialization Sequence Completed" in log  # the server itself went on


def _old_v2_reset(keys) -> bytes:
    """A P_CONTROL_HARD_RESET_CLIENT_V3 as a 2.5 client sends it: packet-id 1, not 0x0f000001."""
    with open(keys["v2c.key"]) as f:
        kc, wkc = parse_v2_client_key(f.read())
    wrapper = TlsCrypt(kc, False, HostCrypto(), wkc=wkc)
    wrapper._send_id = 0  # no early-negotiation marker
    plain = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V3, 0, os.urandom(8), (), None, 0, b"")
    return wrapper.wrap(plain.to_bytes(), int(time.time() * 1000)), wrapper


@pytest.mark.parametrize("option", ["", " allow-noncookie", " force-cookie"])
def test_serve_and_an_older_v2_client(pki, keys, tmp_path, option):
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(pki, proto="udp") + "tls-crypt-v2 %s%s\n" % (keys["v2s.key"], option))
    server = OvpnkxServer(str(conf))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    try:
        reset, wrapper = _old_v2_reset(keys)
        sock.sendto(reset, ("127.0.0.1", server.listening["udp"]))
        try:
            answer = sock.recv(2048)
        except socket.timeout:
            answer = None
    finally:
        sock.close()
        events = server.stop()
    sessions = [e for e in events if e["event"] == "session"]
    if option == " force-cookie":
        assert answer is None and sessions == []
        return
    assert len(sessions) == 1, events  # state at once: this client cannot resend its key
    p = pk.parse_control(wrapper.unwrap(answer, int(time.time() * 1000)))
    assert p.opcode == pk.P_CONTROL_HARD_RESET_SERVER_V2 and p.acks == (0,)
    assert p.payload == b""  # an ordinary reset: no request to resend the key
