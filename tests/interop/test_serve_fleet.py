"""`ovpnkx serve` for a fleet: real openvpn clients, limits, restarts, several processes on a port.

- 20 real openvpn 2.6 clients at once, each with its own certificate: every
  keepalive ping a client encrypts is decrypted by serve, and every client
  decrypts serve's pings.
- A client restarting from the same address and port gets back in at once (it
  used to wait out its old session's 60 s).
- max-clients holds for UDP and for idle TCP connections; connect-freq-initial
  bounds the stateless replies; without duplicate-cn the newer session of a
  common name replaces the older one.
- The pushed ifconfig is the one openvpn's own server pushes.
- `--serial` alone binds no network port.
- Two serve processes share one UDP port (SO_REUSEPORT, one cookie secret);
  when the one holding a client dies, the client reconnects to the other. The
  same for two workers of one serve.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from ovpnkx import packet as pk
from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod

from harness import OvpnkxServer, need_tun

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
ENCRYPTED_PING = re.compile(r"ENCRYPT FROM: (?:[0-9a-f]{8} )?2a187bf3 641eb4cb 07ed2d0a 981fc748")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    pki = pkimod.make_pki(str(tmp / "pki"))
    devices = pkimod.make_client_certs(pki, str(tmp / "devices"), 20)
    return tmp, pki, devices


def _conf(tmp, pki, name: str, extra: str = "", keepalive: str = "2 10", netmask: str = "255.255.0.0") -> str:
    path = tmp / name
    path.write_text("\n".join([
        "server 10.8.0.0 %s" % netmask, "proto udp", "port 0", "local 127.0.0.1", "ca %s" % pki.ca,
        "cert %s" % pki.server_cert, "key %s" % pki.server_key, "keepalive %s" % keepalive,
        "data-ciphers AES-256-GCM", "hand-window 10", extra, ""]))
    return str(path)


def _client(pki, port: int, devices: str, n: int, log: str, lport: "int | None" = None, verb: int = 9,
            extra=()) -> ov.OpenVpn:
    """A real openvpn p2mp client with device n's certificate; no tun, no routes."""
    cert = os.path.join(devices, "device-%05d" % n)
    args = [ov.openvpn_binary(), "--client", "--dev", "null", "--proto", "udp4",
            "--remote", "127.0.0.1", str(port), "--ca", pki.ca, "--cert", cert + ".crt", "--key", cert + ".key",
            "--remote-cert-tls", "server", "--data-ciphers", "AES-256-GCM", "--verb", str(verb),
            "--ifconfig-noexec", "--route-noexec", "--hand-window", "10", "--connect-retry", "1", "1"]
    args += ["--lport", str(lport)] if lport else ["--nobind"]
    return ov.OpenVpn(args + list(extra), log)


def _wait(pred, timeout_s: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def _by(events: list, kind: str) -> list:
    return [e for e in events if e["event"] == kind]


def _no_trouble(server: OvpnkxServer) -> None:
    assert "Traceback" not in server.stderr and "Exception" not in server.stderr, server.stderr[-3000:]


# -- real clients -------------------------------------------------------------------------

def test_twenty_real_openvpn_clients_every_ping_answered(fleet):
    tmp, pki, devices = fleet
    server = OvpnkxServer(_conf(tmp, pki, "twenty.conf"))
    port = server.listening["udp"]
    lports = ov.free_ports(20)  # 20 different ones: a client whose --lport is taken exits
    clients = []
    try:
        clients = [_client(pki, port, devices, i, str(tmp / ("c%02d.log" % i)), lport=lports[i],
                           extra=("--explicit-exit-notify", "1")) for i in range(20)]
        assert _wait(lambda: all("Initialization Sequence Completed" in c.log() for c in clients), 40), \
            [c.log()[-1500:] for c in clients if "Initialization Sequence Completed" not in c.log()][:1]
        # a hold of several keepalive intervals (2 s) with all 20 up, until each has sent and
        # decrypted 4 pings (its own ping timer runs apart from serve's: it may lag by one)
        assert _wait(lambda: all(len(ov.PING_DECRYPTED.findall(c.log())) >= 4
                                 and len(ENCRYPTED_PING.findall(c.log())) >= 4 for c in clients), 30)
    finally:
        for c in clients:
            c.stop()
        time.sleep(0.3)
        events = server.stop()
    _no_trouble(server)
    assert not _by(events, "decrypt_error")
    pings_at_serve: dict = {}
    for e in _by(events, "ping"):
        pings_at_serve[e["peer"]] = pings_at_serve.get(e["peer"], 0) + 1
    addresses = set()
    for i, c in enumerate(clients):
        log = c.log()
        assert c.key_errors() == [], log[-2000:]
        # pings sent until the client was told to stop; while it says goodbye (OCC EXIT, after
        # which serve ends the session) it may send one more
        sent = len(ENCRYPTED_PING.findall(log.split("SIGTERM")[0]))
        sent_all = len(ENCRYPTED_PING.findall(log))
        peer = "127.0.0.1:%d" % lports[i]
        assert sent >= 4, log[-2000:]
        # every ping the client encrypted was decrypted by serve; every client decrypted serve's pings
        assert sent <= pings_at_serve.get(peer, 0) <= sent_all, (peer, sent, sent_all, pings_at_serve.get(peer))
        assert len(ov.PING_DECRYPTED.findall(log)) >= 4
        pushed = re.search(r"PUSH_REPLY,[^']*", log).group(0)
        addresses.add(re.search(r"ifconfig (\S+) ", pushed).group(1))
    assert len(addresses) == 20  # one pool address each
    # serve freed each session's TLS engine after its handshake (so no cc-exit was offered):
    # the clients said goodbye on the data channel
    exits = [e for e in _by(events, "closed") if e["reason"] == "peer sent OCC EXIT"]
    assert len(exits) == 20, _by(events, "closed")
    assert len({e["peer_id"] for e in _by(events, "keys")}) == 20


@pytest.mark.parametrize("duplicate_cn", [False, True], ids=["one-per-cn", "duplicate-cn"])
def test_openvpn_client_restarting_from_the_same_port_gets_back_in(fleet, duplicate_cn):
    """A device that crashes and restarts from the same address and port: its new reset
    gets a cookie reply, and its proof must reach a new session, not the dead one.

    The old session ends when the new one is accepted (one session per common name),
    or, with duplicate-cn, when the new one has its keys."""
    tmp, pki, devices = fleet
    server = OvpnkxServer(_conf(tmp, pki, "restart.conf", "duplicate-cn" if duplicate_cn else "",
                                keepalive="10 60"))
    port = server.listening["udp"]
    lport = ov.free_port()
    first = _client(pki, port, devices, 0, str(tmp / "restart-1.log"), lport=lport, verb=4)
    second = None
    try:
        assert first.wait_for("Initialization Sequence Completed", 20), first.log()[-2000:]
        first.proc.send_signal(signal.SIGKILL)  # no exit notification: a crash
        first.stop()
        t0 = time.monotonic()
        second = _client(pki, port, devices, 0, str(tmp / "restart-2.log"), lport=lport)
        assert second.wait_for("Initialization Sequence Completed", 15), second.log()[-2000:]
        took = time.monotonic() - t0
        assert second.wait_for(ov.PING_DECRYPTED.pattern, 15), second.log()[-2000:]
    finally:
        if second is not None:
            second.stop()
        events = server.stop()
    _no_trouble(server)
    assert took < 5, "the restarted client needed %.1f s" % took
    peer = "127.0.0.1:%d" % lport
    keys = [e for e in _by(events, "keys") if e["peer"] == peer]
    assert len(keys) == 2, events
    ended = [e["reason"] for e in _by(events, "closed") if e["peer"] == peer]
    assert ended == ["replaced by a new session from the same peer" if duplicate_cn else
                     "a new session of common name device-00000 replaces this one (duplicate-cn allows several)",
                     "server shutting down"], ended
    assert [e for e in _by(events, "ping") if e["peer"] == peer and e["at_ms"] > keys[1]["at_ms"]]


# -- limits --------------------------------------------------------------------------------

def _load(config: str, port: int, *args) -> dict:
    proc = subprocess.run([OVPNKX, "load", "--config", config, "--remote", "127.0.0.1:%d" % port,
                           "--no-progress", *args], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _client_config(tmp, pki, name: str, hand_window: int = 6) -> str:
    path = tmp / name
    text = ov.client_config(pki, 1, inline=False).replace("hand-window 20", "hand-window %d" % hand_window)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("workers", [1, 2])
def test_max_clients_holds_for_udp_and_idle_tcp(fleet, workers):
    tmp, pki, devices = fleet
    conf = _conf(tmp, pki, "max.conf", "max-clients 3\nproto udp", keepalive="1 10")
    server = OvpnkxServer(conf, ("--proto", "both", "--workers", str(workers)))
    udp, tcp = server.listening["udp"], server.listening["tcp"]
    idle = []
    try:
        summary = _load(_client_config(tmp, pki, "max.ovpn"), udp, "-n", "5", "--hold", "3", "--together",
                        "--certs", devices)
        # the 3 sessions have ended (OCC EXIT); now idle TCP connections: 3 get sessions, the rest is closed
        time.sleep(0.5)
        for _ in range(6):
            s = socket.create_connection(("127.0.0.1", tcp))
            s.settimeout(1.0)
            idle.append(s)
        time.sleep(0.5)
        closed = 0
        for s in idle:
            try:
                closed += s.recv(100) == b""
            except socket.timeout:
                pass
            except OSError:
                closed += 1
    finally:
        for s in idle:
            s.close()
        events = server.stop()
    _no_trouble(server)
    assert summary["handshakes"] == 3, summary
    assert summary["failed"] == 2 and list(summary["failures"]) == \
        ["TLS key negotiation failed to occur within N seconds"], summary
    refused = _by(events, "refused")
    assert refused and all("max-clients 3 reached" in e["reason"] for e in refused)
    assert closed == 3, "%d idle TCP connections were closed, expected 3 of 6" % closed
    assert len([e for e in _by(events, "session") if e["proto"] == "tcp"]) == 3


def _reset(sid: bytes) -> bytes:
    return pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, sid, (), None, 0, b"").to_bytes()


def test_connect_freq_initial_bounds_stateless_replies(fleet):
    tmp, pki, _ = fleet
    server = OvpnkxServer(_conf(tmp, pki, "freq.conf", "connect-freq-initial 5 30"))
    addr = ("127.0.0.1", server.listening["udp"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    replies = []
    try:
        for _ in range(5):
            sock.sendto(_reset(os.urandom(8)), addr)
        while True:
            try:
                replies.append(pk.parse_control(sock.recv(2048)))
            except socket.timeout:
                break
        assert len(replies) == 5, replies
        # a proven cookie gives its count back (openvpn: a finished three-way handshake does not count)
        first = replies[0]
        proof = pk.ControlPacket(pk.P_CONTROL_V1, 0, first.remote_session_id, (0,), first.session_id, 1,
                                 b"\x16\x03\x01")
        sock.sendto(proof.to_bytes(), addr)
        time.sleep(0.3)
        while True:
            try:
                sock.recv(2048)  # the new session's acks
            except socket.timeout:
                break
        sock.sendto(_reset(os.urandom(8)), addr)
        again = pk.parse_control(sock.recv(2048))
        assert again.opcode == pk.P_CONTROL_HARD_RESET_SERVER_V2
        # the budget is spent: every further reset in this period goes unanswered
        for _ in range(7):
            sock.sendto(_reset(os.urandom(8)), addr)
        with pytest.raises(socket.timeout):
            sock.recv(2048)
    finally:
        sock.close()
        events = server.stop()
    _no_trouble(server)
    limited = _by(events, "limited")
    assert limited and "connect-freq-initial 5 30" in limited[0]["reason"]
    assert len(_by(events, "session")) == 1


@pytest.mark.parametrize("duplicate_cn,workers,devices", [(False, 1, 2), (True, 1, 2), (False, 2, 4)],
                         ids=["one-per-cn", "duplicate-cn", "one-per-cn-two-workers"])
def test_a_common_name_holds_one_session_unless_duplicate_cn(fleet, duplicate_cn, workers, devices):
    """Devices with the one client certificate, 1 s apart. With two workers the kernel puts
    them on either: a worker that accepts the name tells the other."""
    tmp, pki, _ = fleet
    server = OvpnkxServer(_conf(tmp, pki, "dup.conf", "duplicate-cn" if duplicate_cn else "", keepalive="1 10"),
                          ("--workers", str(workers)))
    try:
        summary = _load(_client_config(tmp, pki, "dup.ovpn"), server.listening["udp"], "-n", str(devices),
                        "-r", "1", "--hold", "4", "--together")
    finally:
        events = server.stop()
    _no_trouble(server)
    assert summary["handshakes"] == devices, summary
    replaced = [e for e in _by(events, "closed") if "replaces this one" in e["reason"]]
    opened = [e["peer"] for e in _by(events, "session")]
    if duplicate_cn:
        assert not replaced and summary["pings_lost"] == 0 and summary["failed"] == 0, summary
    else:
        # openvpn drops the older session without a word; that device hears nothing more
        assert sorted(e["peer"] for e in replaced) == sorted(opened[:-1]), (opened, replaced)
        assert all(e["silent"] for e in replaced)
        assert summary["pings_lost"] >= 2 * (devices - 1), summary


@pytest.mark.parametrize("topology", ["subnet", "net30"])
def test_pushed_ifconfig_is_what_openvpn_pushes(fleet, topology):
    tmp, pki, devices = fleet
    need_tun("p2mp")
    port = ov.free_port()
    theirs = ov.OpenVpn([ov.openvpn_binary(), "--local", "127.0.0.1", "--port", str(port), "--proto", "udp4",
                         "--dev", "tun", "--ifconfig-noexec", "--route-noexec", "--topology", topology,
                         "--server", "10.8.0.0", "255.255.255.0", "--ca", pki.ca, "--cert", pki.server_cert,
                         "--key", pki.server_key, "--dh", "none", "--keepalive", "2", "10",
                         "--data-ciphers", "AES-256-GCM", "--verb", "3"], str(tmp / ("ov-%s.log" % topology)))
    pushed = {}
    try:
        assert theirs.wait_for(r"Initialization Sequence Completed", 10), theirs.log()
        c = _client(pki, port, devices, 3, str(tmp / ("push-ov-%s.log" % topology)), verb=4)
        assert c.wait_for("PUSH_REPLY", 15), c.log()[-2000:]
        c.stop()
    finally:
        theirs.stop()
    pushed["openvpn"] = re.search(r"PUSH_REPLY,[^']*", c.log()).group(0)
    ours = OvpnkxServer(_conf(tmp, pki, "push-%s.conf" % topology, "topology %s" % topology,
                              netmask="255.255.255.0"))
    try:
        c = _client(pki, ours.listening["udp"], devices, 3, str(tmp / ("push-ours-%s.log" % topology)), verb=4)
        assert c.wait_for("Initialization Sequence Completed", 15), c.log()[-2000:]
        c.stop()
    finally:
        ours.stop()
    pushed["ovpnkx"] = re.search(r"PUSH_REPLY,[^']*", c.log()).group(0)

    def addressing(reply: str) -> list:
        return [o for o in reply.split(",") if o.split()[0] in ("ifconfig", "route", "route-gateway", "topology")]

    assert addressing(pushed["ovpnkx"]) == addressing(pushed["openvpn"]), pushed
    assert "ifconfig 10.8.0." in pushed["ovpnkx"]


def test_serial_alone_binds_no_network_port(fleet):
    tmp, pki, _ = fleet
    conf = _conf(tmp, pki, "serial.conf")
    alone = OvpnkxServer(conf, ("--serial", "loop://"))
    asked = OvpnkxServer(conf, ("--serial", "loop://", "--proto", "udp"))
    try:
        inet = _inet_sockets(alone.proc.pid)
        inet_asked = _inet_sockets(asked.proc.pid)
    finally:
        alone.stop()
        asked.stop()
    assert "udp" not in alone.listening and "tcp" not in alone.listening and alone.listening["serial"] == "loop://"
    assert inet == 0
    assert asked.listening["udp"] and inet_asked == 1


def _inet_sockets(pid: int) -> int:
    """IPv4/IPv6 UDP and TCP sockets the process holds."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("udp", "tcp", "udp6", "tcp6"):
        with open("/proc/net/%s" % table) as f:
            next(f)
            count += sum(1 for line in f if line.split()[9] in inodes)
    return count


# -- several processes on one port -----------------------------------------------------------

def _holder(servers: list, peer_count: int = 1) -> int:
    """Index of the server whose events (read so far) show the client's keys."""
    for i, s in enumerate(servers):
        if any('"keys"' in line for line in s.lines):
            return i
    return -1


class _Reader:
    """`ovpnkx serve --json` whose stdout is read as it comes (for a test that kills it)."""

    def __init__(self, args: list) -> None:
        self.proc = subprocess.Popen([OVPNKX, "serve", "--json", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.listening = json.loads(self.proc.stdout.readline())
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.lines: list = []

    def poll(self) -> list:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return self.lines
            self.lines.append(line)

    def stop(self) -> list:
        self.poll()
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.set_blocking(self.proc.stdout.fileno(), True)
        self.lines += self.proc.stdout.read().splitlines(True)
        self.stderr = self.proc.stderr.read()
        return [json.loads(x) for x in self.lines if x.startswith("{")]


@pytest.mark.parametrize("kind", ["processes", "workers"])
def test_a_client_survives_the_loss_of_its_server_process(fleet, kind):
    """Two serve processes (sharing port and cookie secret), or two workers of one serve:
    the one holding the client dies without a word; the client's ping-restart fires and
    it reconnects to the other."""
    tmp, pki, devices = fleet
    conf = _conf(tmp, pki, "pair.conf", keepalive="1 4")
    secret = tmp / "cookie.key"
    secret.write_text(os.urandom(32).hex() + "\n")
    if kind == "processes":
        first = _Reader(["--config", conf, "--reuseport", "--cookie-secret", str(secret)])
        port = first.listening["udp"]
        second = _Reader(["--config", conf, "--reuseport", "--cookie-secret", str(secret), "--port", str(port)])
        servers = [first, second]
    else:
        whole = _Reader(["--config", conf, "--workers", "2"])
        port = whole.listening["udp"]
        servers = [whole]
    client = _client(pki, port, devices, 5, str(tmp / ("survivor-%s.log" % kind)))
    try:
        assert client.wait_for("Initialization Sequence Completed", 20), client.log()[-2000:]
        assert _wait(lambda: any('"keys"' in line for s in servers for line in s.poll()), 5)
        if kind == "processes":
            lost = _holder(servers)
            servers[lost].proc.send_signal(signal.SIGKILL)
            survivor = servers[1 - lost]
        else:
            keys = [json.loads(x) for x in whole.lines if '"keys"' in x][0]
            os.kill(whole.listening["worker_pids"][keys["worker"]], signal.SIGKILL)
            survivor = whole
        before = len(survivor.poll())
        # ping-restart 4 s, then a fresh session on the survivor
        assert _wait(lambda: client.log().count("Initialization Sequence Completed") >= 2, 20), client.log()[-3000:]
        assert _wait(lambda: any('"keys"' in line for line in survivor.poll()[before:]), 5)
        decrypted_before = len(ov.PING_DECRYPTED.findall(client.log()))
        assert _wait(lambda: len(ov.PING_DECRYPTED.findall(client.log())) >= decrypted_before + 2, 10)
    finally:
        client.stop()
        results = [s.stop() for s in servers]
    log = client.log()
    assert "Inactivity timeout (--ping-restart)" in log
    assert client.key_errors() == []
    events = results[0] if kind == "workers" else results[1 - lost]
    if kind == "workers":
        exits = _by(events, "worker_exit")
        assert len(exits) == 1 and exits[0]["worker"] == keys["worker"] and exits[0]["clients"] == 1, exits
        assert [e for e in _by(events, "keys") if e["worker"] != keys["worker"]]
    else:
        assert _by(events, "keys") and _by(events, "ping")
