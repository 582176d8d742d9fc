"""`ovpnkx serve` over UDP answers resets statelessly (the 2.6 cookie flow).

A flood of client resets gets answers but creates no session; a client that
proves the cookie (acks the stateless reset, names its session id) gets one.
"""

import os
import socket

from ovpnkx import packet as pk

from harness import OvpnkxServer, server_config


def test_reset_flood_creates_no_session_until_the_cookie_is_proven(pki, tmp_path):
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(pki, proto="udp"))
    server = OvpnkxServer(str(conf))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    addr = ("127.0.0.1", server.listening["udp"])
    try:
        answers = []
        for _ in range(50):
            sid = os.urandom(8)
            reset = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, sid, (), None, 0, b"")
            sock.sendto(reset.to_bytes(), addr)
            answers.append((sid, pk.parse_control(sock.recv(2048))))
        for sid, answer in answers:
            assert answer.opcode == pk.P_CONTROL_HARD_RESET_SERVER_V2
            assert answer.acks == (0,) and answer.remote_session_id == sid
        # a P_CONTROL_V1 without the ack, or naming a wrong cookie, is dropped
        sid, answer = answers[-1]
        bad = pk.ControlPacket(pk.P_CONTROL_V1, 0, sid, (0,), b"\x01" * 8, 1, b"\x16\x03\x01")
        sock.sendto(bad.to_bytes(), addr)
        # the proof: ack 0, the server's stateless session id, msg packet-id 1
        good = pk.ControlPacket(pk.P_CONTROL_V1, 0, sid, (0,), answer.session_id, 1, b"\x16\x03\x01")
        sock.sendto(good.to_bytes(), addr)
        sock.recv(2048)  # the session acks (or answers) the proven client
    finally:
        sock.close()
        events = server.stop()
    sessions = [e for e in events if e["event"] == "session"]
    assert len(sessions) == 1, sessions

