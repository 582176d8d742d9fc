"""How `ovpnkx connect` fails, on both runtimes, against a real openvpn 2.6 and fakes.

Every case asserts the exit status, that the reason names the cause, a generous
upper bound on the time to fail (computed from the client's ``hand-window``), and
that the other side keeps working (a good client still gets through the same
openvpn server; the server process is still up).

The slow cases (each waits for a hand-window or a ping-restart) all run at once in
two module fixtures, so the whole file takes about two hand-windows of wall time.
"""

import json
import random
import select
import signal
import socket
import threading
import time

import pytest

from ovpnkx import packet as pk
from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod

from harness import Client, need_tun

RUNTIMES = ("cpython", "micropython")
HAND_WINDOW = 5  # the clients' hand-window (s)
PING_RESTART = 3  # what the "stops answering" servers push (keepalive 1 3)
MARGIN = 10  # generous: the suite may run on two busy cores
HAND_BOUND = HAND_WINDOW + MARGIN


def _config(path, pki, port: int, proto: str = "udp", tls_auth: bool = False, ca=None, tls_auth_key=None,
            extra=()) -> str:
    """A client .ovpn with hand-window 5; ``ca``/``tls_auth_key`` swap in other files."""
    text = ov.client_config(pki, port, proto=proto, tls_auth=tls_auth, inline=False)
    text = text.replace("hand-window 20", "hand-window %d" % HAND_WINDOW)
    if ca:
        text = text.replace("ca %s\n" % pki.ca, "ca %s\n" % ca)
    if tls_auth_key:
        text = text.replace("tls-auth %s\n" % pki.tls_auth, "tls-auth %s\n" % tls_auth_key)
    path.write_text(text + "".join(line + "\n" for line in extra))
    return str(path)


def _server(tmp, name: str, pki, proto: str = "udp", tls_auth: bool = False, keepalive=("2", "10"),
            extra=()) -> "ov.OpenVpn":
    port = ov.free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    args = ov.server_args(pki, port, proto=proto, tls_auth=tls_auth)
    i = args.index("--keepalive")
    args[i + 1:i + 3] = list(keepalive)
    server = ov.OpenVpn(args + list(extra), str(tmp / (name + ".log")))
    server.port = port
    return server


class CorruptingRelay(threading.Thread):
    """A UDP relay for one client that flips a bit in the server's first ``n`` data packets."""

    def __init__(self, server_port: int, n: int = 1) -> None:
        super().__init__(daemon=True)
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.down.bind(("127.0.0.1", 0))
        self.port = self.down.getsockname()[1]
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(("127.0.0.1", server_port))
        self.left = n
        self.client = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            ready, _, _ = select.select([self.down, self.up], [], [], 0.1)
            for sock in ready:
                try:
                    data, addr = sock.recvfrom(4096)
                except OSError:
                    continue
                if sock is self.down:
                    self.client = addr
                    self.up.send(data)
                elif self.client is not None:
                    if data[0] >> 3 in (pk.P_DATA_V1, pk.P_DATA_V2) and self.left > 0:
                        self.left -= 1
                        data = data[:-1] + bytes([data[-1] ^ 0x01])
                    self.down.sendto(data, self.client)

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)
        self.down.close()
        self.up.close()


def _ready(server) -> None:
    assert server.wait_for(r"Initialization Sequence Completed", 20), server.log()[-3000:]


# -- against a real openvpn server ---------------------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Start every failing case against real openvpn servers at once; wait for all."""
    need_tun("p2mp")
    tmp = tmp_path_factory.mktemp("failures")
    good = pkimod.make_pki(str(tmp / "good"))
    other = pkimod.make_pki(str(tmp / "other"))  # another CA and another tls-auth key
    cexp = pkimod.make_pki(str(tmp / "cexp"), client_expired=True)
    sexp = pkimod.make_pki(str(tmp / "sexp"), server_expired=True)
    servers = {
        "tls_auth": _server(tmp, "tls_auth", good, tls_auth=True),
        "plain": _server(tmp, "plain", good, extra=["--duplicate-cn"]),  # several clients, one certificate
        "cexp": _server(tmp, "cexp", cexp),
        "sexp": _server(tmp, "sexp", sexp),
        "auth": _server(tmp, "auth", good, extra=["--auth-user-pass-verify", "/bin/false", "via-env",
                                                  "--script-security", "2"]),
    }
    for rt in RUNTIMES:
        servers["stop-" + rt] = _server(tmp, "stop-" + rt, good, keepalive=("1", str(PING_RESTART)))
        servers["term-" + rt] = _server(tmp, "term-" + rt, good, proto="tcp")
    for s in servers.values():
        _ready(s)

    signalled = {}

    def stop_on_keys(sig):
        def on_event(client, ev):
            if ev["event"] == "keys" and client not in signalled:
                target = client.server
                signalled[client] = time.monotonic()
                target.proc.send_signal(sig)
        return on_event

    clients = {}
    relays, sinks = [], []
    for rt in RUNTIMES:
        clients["wrong-tls-auth-" + rt] = Client(_config(
            tmp / ("wta-%s.ovpn" % rt), good, servers["tls_auth"].port, tls_auth=True,
            tls_auth_key=other.tls_auth), rt)
        clients["wrong-ca-" + rt] = Client(_config(
            tmp / ("wca-%s.ovpn" % rt), good, servers["plain"].port, ca=other.ca), rt)
        clients["client-expired-" + rt] = Client(_config(tmp / ("cexp-%s.ovpn" % rt), cexp, servers["cexp"].port), rt)
        clients["server-expired-" + rt] = Client(_config(tmp / ("sexp-%s.ovpn" % rt), sexp, servers["sexp"].port), rt)
        clients["auth-failed-" + rt] = Client(_config(
            tmp / ("auth-%s.ovpn" % rt), good, servers["auth"].port,
            extra=["<auth-user-pass>", "alice", "not-the-password", "</auth-user-pass>"]), rt)
        clients["refused-udp-" + rt] = Client(_config(tmp / ("ru-%s.ovpn" % rt), good, ov.free_port()), rt)
        clients["refused-tcp-" + rt] = Client(_config(
            tmp / ("rt-%s.ovpn" % rt), good, ov.free_port(socket.SOCK_STREAM), proto="tcp"), rt)
        # the server goes silent (SIGSTOP) / exits (SIGTERM) once our data keys exist
        for kind, sig, proto in (("stop", signal.SIGSTOP, "udp"), ("term", signal.SIGTERM, "tcp")):
            name = "%s-%s" % (kind, rt)
            c = Client.__new__(Client)
            c.server = servers[name]
            Client.__init__(c, _config(tmp / (name + ".ovpn"), good, servers[name].port, proto=proto), rt,
                            pings=1000, on_event=stop_on_keys(sig))
            clients["server-" + name] = c
        # a data packet from the server corrupted on the way: counted, and the run fails for it
        relay = CorruptingRelay(servers["plain"].port)
        relay.start()
        relays.append(relay)
        clients["decrypt-error-" + rt] = Client(_config(tmp / ("de-%s.ovpn" % rt), good, relay.port), rt)
        # --timeout shorter than the hand-window, against a port that swallows everything
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sinks.append(sink)
        clients["timeout-" + rt] = Client(_config(tmp / ("to-%s.ovpn" % rt), good, sink.getsockname()[1]), rt,
                                          timeout=2)
    # good clients on the same servers, at the same time: the failures must not disturb them
    clients["good-tls-auth"] = Client(_config(tmp / "g-ta.ovpn", good, servers["tls_auth"].port,
                                              tls_auth=True), "cpython")
    clients["good-plain"] = Client(_config(tmp / "g-plain.ovpn", good, servers["plain"].port), "micropython")
    for c in clients.values():
        c.wait()
    for relay in relays:
        relay.stop()
    for sink in sinks:
        sink.close()
    for s in servers.values():
        s.proc.send_signal(signal.SIGCONT)
    alive = {name: s.proc.poll() is None for name, s in servers.items()}
    for s in servers.values():
        s.stop()
    yield {"clients": clients, "servers": servers, "alive": alive, "signalled": signalled}


def _check(c: Client, *words, bound: float = HAND_BOUND) -> None:
    assert c.code == 1, c
    assert c.result and c.result["ok"] is False, c
    for w in words:
        assert w in c.reason, (w, c)
    assert "Traceback" not in c.stderr, c
    assert c.elapsed < bound, c


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_tls_auth_key(real, runtime):
    c = real["clients"]["wrong-tls-auth-" + runtime]
    _check(c, "within %d seconds" % HAND_WINDOW, "no answer from the peer", "tls-auth key")
    assert c.elapsed >= HAND_WINDOW - 0.5, c  # it did wait for the hand-window (no false early end)
    assert c.result["packets_in"] == 0, c
    log = real["servers"]["tls_auth"].log()
    assert "TLS Error: incoming packet authentication failed" in log


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_ca(real, runtime):
    c = real["clients"]["wrong-ca-" + runtime]
    _check(c, "certificate verify failed")
    assert "signature" in c.reason or "signed" in c.reason or "issuer" in c.reason, c


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_expired_client_certificate(real, runtime):
    c = real["clients"]["client-expired-" + runtime]
    _check(c, "within %d seconds" % HAND_WINDOW, "refused our certificate", "expired")
    assert "certificate has expired" in real["servers"]["cexp"].log()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_expired_server_certificate(real, runtime):
    c = real["clients"]["server-expired-" + runtime]
    _check(c, "certificate verify failed", "expired")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_auth_failed(real, runtime):
    c = real["clients"]["auth-failed-" + runtime]
    _check(c, "auth failed", "username/password")
    assert "not-the-password" not in c.reason and "not-the-password" not in json.dumps(c.events)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("proto", ("udp", "tcp"))
def test_nothing_listening(real, runtime, proto):
    c = real["clients"]["refused-%s-%s" % (proto, runtime)]
    if proto == "tcp":
        _check(c, "connection refused by 127.0.0.1:", "nothing listening", bound=MARGIN)
        return
    # UDP: an ICMP port unreachable does not end the client (openvpn retries too, issue 9
    # item 7): it warns at once, goes on to its hand-window and then names the refusal
    _check(c, "within %d seconds" % HAND_WINDOW, "connection refused by 127.0.0.1:", "ICMP port unreachable")
    assert c.elapsed >= HAND_WINDOW - 0.5, c
    warnings = [e for e in c.events if e["event"] == "warning" and "ICMP port unreachable" in e.get("reason", "")]
    assert len(warnings) == 1, c.events


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_stops_answering(real, runtime):
    c = real["clients"]["server-stop-" + runtime]
    stopped = real["signalled"].get(c)
    assert stopped is not None, c
    _check(c, "ping-restart", "nothing from the peer for %d s" % PING_RESTART)
    assert c.ended - stopped < PING_RESTART + MARGIN, c


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_exits_tcp(real, runtime):
    c = real["clients"]["server-term-" + runtime]
    stopped = real["signalled"].get(c)
    assert stopped is not None, c
    _check(c, "the server")
    assert "closed the TCP connection" in c.reason or "reset the TCP connection" in c.reason, c
    assert c.ended - stopped < MARGIN, c


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_decrypt_error(real, runtime):
    # one corrupted data packet is dropped and counted, as openvpn does: the session goes on and succeeds
    c = real["clients"]["decrypt-error-" + runtime]
    assert c.code == 0 and c.result["ok"], c
    assert c.result["decrypt_errors"] == 1, c
    assert c.result["pings_received"] >= 2 and c.result["pings_sent"] >= 2, c  # the session went on
    errors = [e for e in c.events if e["event"] == "decrypt_error"]
    assert len(errors) == 1 and errors[0]["reason"], c.events


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_timed_out(real, runtime):
    c = real["clients"]["timeout-" + runtime]
    _check(c, "timed out after 2 s", "S_PRE_START", bound=MARGIN)


def test_other_clients_and_servers_keep_working(real):
    for name in ("good-tls-auth", "good-plain"):
        c = real["clients"][name]
        assert c.code == 0, c
        assert c.result["pings_received"] >= 2 and c.result["pings_sent"] >= 2, c
    for name in ("tls_auth", "plain", "cexp", "sexp", "auth"):
        assert real["alive"][name], "openvpn server %s exited:\n%s" % (name, real["servers"][name].log()[-2000:])
        assert real["servers"][name].key_errors() == [] or name == "tls_auth"


# -- malformed packets from a fake UDP server ----------------------------------------------

def _reset_reply(data: bytes, *, ack_sid=None, key_id: int = 0, sid: bytes = b"S" * 8) -> bytes:
    """A server hard reset answering the client's (or acking someone else's session)."""
    client = pk.parse_control(data)
    return pk.ControlPacket(pk.P_CONTROL_HARD_RESET_SERVER_V2, key_id, sid, [0],
                            ack_sid or client.session_id, 0, b"").to_bytes()


def _answers(behaviour: str, data: bytes, rng: random.Random) -> list:
    """What the fake server says to one client packet."""
    try:
        opcode, _ = pk.opcode_key_id(data)
    except Exception:
        return []
    if opcode != pk.P_CONTROL_HARD_RESET_CLIENT_V2:
        return []
    if behaviour == "garbage":
        return [b""] + [bytes(rng.getrandbits(8) for _ in range(n)) for n in (1, 2, 9, 14, 40, 200, 1400)]
    if behaviour == "truncated":
        reply = _reset_reply(data)
        return [reply[:n] for n in range(1, len(reply))]
    if behaviour == "wrong-session":
        foreign = bytes(rng.getrandbits(8) for _ in range(8))
        return [_reset_reply(data, ack_sid=foreign),  # acks a session that is not the client's
                _reset_reply(data, key_id=3),  # a first reset must be key_id 0
                pk.ControlPacket(pk.P_CONTROL_V1, 0, b"T" * 8, (), None, 1, b"hello").to_bytes()]
    if behaviour == "bad-tls":  # a proper reset, then a TLS stream that is not TLS
        return [_reset_reply(data),
                pk.ControlPacket(pk.P_CONTROL_V1, 0, b"S" * 8, (), None, 1,
                                 b"\x99not a TLS record, at all" * 3).to_bytes()]
    if behaviour == "alert":  # a proper reset, then the TLS alert a server sends to a ClientHello it refuses
        return [_reset_reply(data),
                pk.ControlPacket(pk.P_CONTROL_V1, 0, b"S" * 8, (), None, 1, TLS_ALERT).to_bytes()]
    raise AssertionError(behaviour)


class FakeUdpServer(threading.Thread):
    """Answers every client hard reset with ``behaviour``'s packets; counts what it sent."""

    def __init__(self, behaviour: str) -> None:
        super().__init__(daemon=True)
        self.behaviour = behaviour
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.received = 0
        self.stopped = threading.Event()
        self.rng = random.Random(behaviour)  # test garbage, not key material

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            self.received += 1
            for p in _answers(self.behaviour, data, self.rng):
                self.sock.sendto(p, addr)
                self.sent += 1
                time.sleep(0.001)  # stay well inside the client's socket buffer

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)
        self.sock.close()


BEHAVIOURS = ("garbage", "truncated", "wrong-session", "bad-tls", "alert")
# a plaintext TLS record: fatal (2) handshake_failure (40)
TLS_ALERT = bytes.fromhex("15030300020228")


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """Every fake server with a client of each runtime, all at once."""
    tmp = tmp_path_factory.mktemp("fakes")
    pki = pkimod.make_pki(str(tmp / "pki"))
    runs = {}
    for behaviour in BEHAVIOURS:
        for rt in RUNTIMES:
            server = FakeUdpServer(behaviour)
            server.start()
            conf = _config(tmp / ("%s-%s.ovpn" % (behaviour, rt)), pki, server.port)
            runs[(behaviour, rt)] = (server, Client(conf, rt))
    for server, client in runs.values():
        client.wait()
        server.stop()
    return runs


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("behaviour", ("garbage", "truncated", "wrong-session"))
def test_malformed_packets_are_dropped_and_counted(fakes, behaviour, runtime):
    server, c = fakes[(behaviour, runtime)]
    _check(c, "within %d seconds" % HAND_WINDOW, "no answer from the peer", "last dropped packet")
    assert server.sent > 0
    res = c.result
    # every packet that arrived was dropped and counted, none ended the session early
    assert res["dropped"] == res["packets_in"] > 0, c
    assert res["dropped"] <= server.sent, c
    assert c.elapsed >= HAND_WINDOW - 0.5, c
    drops = [e for e in c.events if e["event"] == "dropped"]
    assert len(drops) == res["dropped"] and all(e["reason"] for e in drops)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_not_tls_from_the_peer_ends_the_session(fakes, runtime):
    server, c = fakes[("bad-tls", runtime)]
    # the peer that answered our reset is the peer: its broken TLS ends the session at once
    _check(c, "TLS", bound=MARGIN)
    assert c.elapsed < HAND_WINDOW, c
    assert "within %d seconds" % HAND_WINDOW not in c.reason, c


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_tls_alert_from_the_peer_is_read_for_its_cause(fakes, runtime):
    server, c = fakes[("alert", runtime)]
    _check(c, "alert", "handshake failure" if runtime == "cpython" else "handshake_failure", bound=MARGIN)
    assert "(the peer ended the TLS handshake with this alert: no TLS version, cipher suite or group in " \
           "common" in c.reason, c
    assert c.elapsed < HAND_WINDOW, c
