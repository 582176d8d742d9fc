"""tls-auth interop with the real openvpn 2.6 (p2p tls-server on 127.0.0.1).

We send a P_CONTROL_HARD_RESET_CLIENT_V2 wrapped by our TlsAuth (direction 1);
the server must answer with a P_CONTROL_HARD_RESET_SERVER_V2 that our unwrap
accepts. With a wrong key the server must log the tls-auth failure and stay silent.
"""

import os
import shutil
import socket
import time

import pytest

from ovpnkx.errors import RemoteProtocolError
from ovpnkx.tlswrap import TlsAuth
from ovpnkx.wrapconfig import parse_static_key
from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki, write_tls_auth_key

OPENVPN = shutil.which("openvpn") or "/usr/sbin/openvpn"
pytestmark = pytest.mark.skipif(not os.path.exists(OPENVPN), reason="openvpn not installed")

HARD_RESET_CLIENT_V2 = 7
HARD_RESET_SERVER_V2 = 8


class _Server:
    """A p2p openvpn tls-server with tls-auth on 127.0.0.1."""

    def __init__(self, tmp, auth, direction):
        self.pki = make_pki(str(tmp / "pki"))
        self.port = ov.free_port()
        cmd = [OPENVPN, "--dev", "null", "--ifconfig-noexec", "--route-noexec", "--proto", "udp4",
               "--local", "127.0.0.1", "--port", str(self.port), "--tls-server",
               "--ca", self.pki.ca, "--cert", self.pki.server_cert, "--key", self.pki.server_key,
               "--dh", "none", "--tls-auth", self.pki.tls_auth] + direction + ["--auth", auth, "--verb", "4"]
        self.openvpn = ov.OpenVpn(cmd, str(tmp / "openvpn.log"))
        if not self.openvpn.wait_for(r"link local \(bound\)", 10):
            self.stop()
            raise AssertionError("openvpn did not start:\n" + self.text())

    def text(self) -> str:
        return self.openvpn.log()

    def stop(self):
        self.openvpn.stop()


# (--auth, server key-direction, our direction, a direction that sends / receives wrongly)
@pytest.fixture(params=[("SHA1", 0, 1, 0, 0), ("SHA256", 0, 1, 0, 0), ("SHA512", 0, 1, 0, 0),
                        ("SHA1", None, None, 1, 0)], ids=["SHA1", "SHA256", "SHA512", "SHA1-nodir"])
def server(request, tmp_path):
    auth, sdir, cdir, wrong_send, wrong_recv = request.param
    srv = _Server(tmp_path, auth, [] if sdir is None else [str(sdir)])
    srv.auth, srv.cdir, srv.wrong_send, srv.wrong_recv = auth, cdir, wrong_send, wrong_recv
    yield srv
    srv.stop()


def _hard_reset(session_id: bytes) -> bytes:
    # op|key_id, session_id, ack count 0, msg packet-id 0, empty payload
    return bytes([HARD_RESET_CLIENT_V2 << 3]) + session_id + b"\x00" + bytes(4)


def _exchange(port, wire, timeout=2.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.sendto(wire, ("127.0.0.1", port))
        data, _ = sock.recvfrom(2048)
        return data
    except socket.timeout:
        return None
    finally:
        sock.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_openvpn_answers_our_tls_auth_reset(server):
    with open(server.pki.tls_auth) as f:
        key = parse_static_key(f.read())
    ta = TlsAuth(key, server.cdir, server.auth)
    sid = os.urandom(8)
    reply = _exchange(server.port, ta.wrap(_hard_reset(sid), _now_ms()))
    assert reply is not None, "no answer from openvpn:\n" + server.text()
    plain = ta.unwrap(reply, _now_ms())
    assert plain[0] >> 3 == HARD_RESET_SERVER_V2
    # the server acks our msg packet-id 0 and names our session
    assert plain[9] == 1 and plain[10:14] == bytes(4) and plain[14:22] == sid
    assert len(reply) == len(plain) + ta.overhead
    # and the reply does not pass a second time (replay window)
    with pytest.raises(RemoteProtocolError, match="replay"):
        ta.unwrap(reply, _now_ms())
    # nor with the other direction's key
    with pytest.raises(RemoteProtocolError, match="authentication failed"):
        TlsAuth(key, server.wrong_recv, server.auth).unwrap(reply, _now_ms())


def test_openvpn_rejects_wrong_tls_auth_key(server, tmp_path):
    other = str(tmp_path / "other.key")
    write_tls_auth_key(other)
    with open(other) as f:
        ta = TlsAuth(parse_static_key(f.read()), server.cdir, server.auth)
    assert _exchange(server.port, ta.wrap(_hard_reset(os.urandom(8)), _now_ms()), timeout=1.0) is None
    deadline = time.monotonic() + 5
    while "TLS Error: incoming packet authentication failed" not in server.text():
        assert time.monotonic() < deadline, server.text()
        time.sleep(0.05)


def test_openvpn_rejects_wrong_direction(server):
    with open(server.pki.tls_auth) as f:
        ta = TlsAuth(parse_static_key(f.read()), server.wrong_send, server.auth)
    assert _exchange(server.port, ta.wrap(_hard_reset(os.urandom(8)), _now_ms()), timeout=1.0) is None
