"""`ovpnkx serve` with many clients at once, and with hostile ones among them.

One server (UDP and TCP) takes our CPython and MicroPython clients and real
openvpn 2.6 clients concurrently; each must reach pings both ways. A client the
server refuses, and a peer that sends garbage, bad resets or broken TCP framing,
must end only its own session: the others go on, the server stays up and prints
no traceback.
"""

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from ovpnkx import packet as pk
from ovpnkx import streambuf as sb
from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod

from harness import OvpnkxServer, openvpn_client_args, server_config

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
HAND_WINDOW = 5  # the server's and our clients' hand-window (s)
MARGIN = 10  # generous: two busy cores


def _server(tmp, pki) -> OvpnkxServer:
    text = server_config(pki, proto="udp").replace("keepalive 2 10", "keepalive 1 10")
    conf = tmp / "server.conf"
    # every client here uses the one client certificate: openvpn (and serve) keep only the
    # newest session of a common name unless told duplicate-cn
    conf.write_text(text + "hand-window %d\nduplicate-cn\n" % HAND_WINDOW)
    return OvpnkxServer(str(conf), ("--proto", "both"))


def _client_conf(path, pki, port: int, proto: str, cert=None, key=None) -> str:
    text = ov.client_config(pki, port, proto=proto, inline=False).replace("hand-window 20",
                                                                            "hand-window %d" % HAND_WINDOW)
    if cert:
        text = text.replace("cert %s\n" % pki.client_cert, "cert %s\n" % cert)
        text = text.replace("key %s\n" % pki.client_key, "key %s\n" % key)
    path.write_text(text)
    return str(path)


class Ours:
    """`ovpnkx connect --json` in a subprocess."""

    def __init__(self, config: str, runtime: str, pings: int = 2) -> None:
        self.runtime = runtime
        self.started = time.monotonic()
        self.proc = subprocess.Popen([OVPNKX, "connect", "--config", config, "--runtime", runtime,
                                      "--pings", str(pings), "--json", "--timeout", "40"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self) -> "Ours":
        out, self.stderr = self.proc.communicate(timeout=60)
        self.elapsed = time.monotonic() - self.started  # an upper bound (waits are sequential)
        self.code = self.proc.returncode
        self.events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        self.result = self.events[-1] if self.events and self.events[-1]["event"] == "result" else {}
        return self

    def __repr__(self) -> str:
        return "Ours(%s, exit %s, %r)\nstderr: %s" % (self.runtime, getattr(self, "code", None),
                                                     getattr(self, "result", None),
                                                     getattr(self, "stderr", "")[-1500:])


class Theirs:
    """A real openvpn client; ``ok()`` once it logged 2 of our pings decrypted."""

    def __init__(self, tmp, name: str, pki, port: int, proto: str) -> None:
        self.ovpn = ov.OpenVpn(openvpn_client_args(pki, port, proto=proto), str(tmp / (name + ".log")))

    def wait(self, timeout_s: float = 25) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(ov.PING_DECRYPTED.findall(self.ovpn.log())) >= 2:
                break
            time.sleep(0.2)
        time.sleep(2.5)  # let its own pings reach the server
        self.ovpn.stop()
        log = self.ovpn.log()
        self.ok = ("Initialization Sequence Completed" in log and len(ov.PING_DECRYPTED.findall(log)) >= 2
                   and not self.ovpn.key_errors())
        return self.ok

    def __repr__(self) -> str:
        return self.ovpn.log()[-2000:]


def _peers_with(events, kind: str) -> set:
    return {e["peer"] for e in events if e["event"] == kind}


def _check_server(server: OvpnkxServer, events: list) -> None:
    assert server.proc.returncode in (0, -15), server.stderr[-2000:]
    assert "Traceback" not in server.stderr and "Exception" not in server.stderr, server.stderr[-3000:]
    assert not [e for e in events if e["event"] == "decrypt_error"], events


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("many")
    return tmp, pkimod.make_pki(str(tmp / "pki")), pkimod.make_pki(str(tmp / "other"))


def test_many_clients_at_once(pkis):
    """8 good clients of three kinds on UDP and TCP, plus one the server refuses."""
    tmp, pki, other = pkis
    server = _server(tmp, pki)
    udp, tcp = server.listening["udp"], server.listening["tcp"]
    try:
        ours = []
        for i, (runtime, proto) in enumerate([("cpython", "udp"), ("cpython", "udp"), ("cpython", "tcp"),
                                              ("micropython", "udp"), ("micropython", "udp"),
                                              ("micropython", "tcp")]):
            conf = _client_conf(tmp / ("c%d.ovpn" % i), pki, udp if proto == "udp" else tcp, proto)
            ours.append(Ours(conf, runtime))
        theirs = [Theirs(tmp, "ov-udp", pki, udp, "udp"), Theirs(tmp, "ov-tcp", pki, tcp, "tcp")]
        # trusts the server, but its own certificate comes from another CA: the server refuses it
        refused = Ours(_client_conf(tmp / "refused.ovpn", pki, udp, "udp", other.client_cert,
                                    other.client_key), "cpython")
        for c in ours:
            c.wait()
        results = [t.wait() for t in theirs]
        refused.wait()
    finally:
        events = server.stop()
    for c in ours:
        assert c.code == 0, c
        assert c.result["pings_received"] >= 2 and c.result["pings_sent"] >= 2, c
    for t, ok in zip(theirs, results):
        assert ok, t
    # the refused client: the server names the cause, the client ends by its hand-window
    assert refused.code == 1, refused
    assert "refused our certificate" in refused.result["reason"], refused
    assert refused.elapsed < HAND_WINDOW + MARGIN + 15, refused
    closed = [e for e in events if e["event"] == "closed" and e.get("error")]
    assert any("certificate verify failed" in e["reason"] for e in closed), closed
    assert len(closed) == 1, closed  # nobody else failed
    # 8 good sessions reached keys and decrypted client pings; one session per client
    keyed = _peers_with(events, "keys")
    pinged = _peers_with(events, "ping")
    assert len(keyed) == 8 and pinged == keyed, (keyed, pinged)
    assert len({e["peer_id"] for e in events if e["event"] == "keys"}) == 8
    _check_server(server, events)


# -- hostile peers -----------------------------------------------------------------------

def _rng_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))  # test garbage, not key material


def _udp_abuse(port: int, rng: random.Random) -> int:
    """Garbage, truncated and bogus resets, and forged control packets. Returns packets sent."""
    sent = 0
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    reset = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, b"A" * 8, (), None, 0, b"").to_bytes()
    try:
        for rnd in range(3):
            burst = [b""] + [_rng_bytes(rng, n) for n in (1, 2, 7, 9, 30, 100, 1200, 3000)]
            burst += [reset[:n] for n in range(1, len(reset))]  # truncated resets
            burst += [bytes([0x38]) + _rng_bytes(rng, n) for n in (8, 13, 40)]  # reset opcode, junk after
            burst += [bytes([(op << 3) | rng.randrange(8)]) + _rng_bytes(rng, 30) for op in range(32)]
            burst += [pk.ControlPacket(pk.P_CONTROL_V1, 0, _rng_bytes(rng, 8), (), None, 1,
                                       b"\x16\x03\x03junk").to_bytes()]
            burst += [pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, _rng_bytes(rng, 8), (),
                                       None, 0, b"").to_bytes() for _ in range(20)]  # unanswered resets
            for i, p in enumerate(burst):
                socks[i % len(socks)].sendto(p, ("127.0.0.1", port))
                sent += 1
                if i % 20 == 0:
                    time.sleep(0.005)
            time.sleep(0.5)
    finally:
        for s in socks:
            s.close()
    return sent


def _tcp_abuse(port: int, data: bytes, outcome: dict, name: str, wait_s: float) -> None:
    """Send ``data`` on a fresh TCP connection; record when the server closed it."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.2)
    closed_after = None
    try:
        if data:
            s.sendall(data)
        while time.monotonic() - t0 < wait_s:
            try:
                if not s.recv(4096):
                    closed_after = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except OSError:  # reset
                closed_after = time.monotonic() - t0
                break
    finally:
        s.close()
    outcome[name] = closed_after


def test_hostile_peers_do_not_disturb_others(pkis):
    tmp, pki, _ = pkis
    server = _server(tmp, pki)
    udp, tcp = server.listening["udp"], server.listening["tcp"]
    rng = random.Random(7)
    valid = pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, b"B" * 8, (), None, 0, b"").to_bytes()
    tcp_cases = {
        "oversized-length": struct.pack(">H", 0xFFFF) + _rng_bytes(rng, 100),
        "zero-length": b"\x00\x00" + _rng_bytes(rng, 10),
        "garbage-in-frames": b"".join(sb.frame(_rng_bytes(rng, n)) for n in (1, 5, 40, 300)),
        "reset-then-garbage": sb.frame(valid) + sb.frame(b"\x20" + _rng_bytes(rng, 50)),
        "silent": b"",
    }
    outcome: dict = {}
    try:
        good = [Ours(_client_conf(tmp / "h0.ovpn", pki, tcp, "tcp"), "cpython"),
                Ours(_client_conf(tmp / "h1.ovpn", pki, udp, "udp"), "micropython")]
        theirs = Theirs(tmp, "ov-hostile", pki, udp, "udp")
        threads = [threading.Thread(target=_tcp_abuse, args=(tcp, data, outcome, name, HAND_WINDOW + MARGIN))
                   for name, data in tcp_cases.items()]
        for t in threads:
            t.start()
        sent = _udp_abuse(udp, rng)
        for c in good:
            c.wait()
        ok = theirs.wait()
        for t in threads:
            t.join()
    finally:
        events = server.stop()
    for c in good:
        assert c.code == 0, c
        assert c.result["pings_received"] >= 2 and c.result["pings_sent"] >= 2, c
    assert ok, theirs
    assert sent > 100
    # broken framing: the connection goes at once; anything else: at the hand-window
    assert outcome["oversized-length"] is not None and outcome["oversized-length"] < MARGIN, outcome
    assert outcome["zero-length"] is not None and outcome["zero-length"] < MARGIN, outcome
    for name in ("garbage-in-frames", "reset-then-garbage", "silent"):
        assert outcome[name] is not None and outcome[name] < HAND_WINDOW + MARGIN, (name, outcome)
    reasons = [e["reason"] for e in events if e["event"] == "closed"]
    assert sum("bad TCP framing" in r for r in reasons) == 2, reasons
    assert sum("TLS key negotiation failed to occur within %d seconds" % HAND_WINDOW in r
               for r in reasons) >= 3, reasons
    keyed = _peers_with(events, "keys")
    assert len(keyed) == 3, keyed  # only the three real clients got keys
    assert _peers_with(events, "ping") == keyed
    _check_server(server, events)
