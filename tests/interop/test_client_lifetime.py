"""`ovpnkx connect` lives like openvpn's client, against an unmodified openvpn 2.6.14.

- Compression stubs, configured and pushed (comp-lzo no, compress, compress stub-v2):
  pings decrypted both ways, framed as openvpn frames them (the server logs the
  framed plaintext at verb 9); real compression, configured or pushed, is refused.
- Failover from a dead first remote (UDP: silent, left by server-poll-timeout; TCP:
  connect refused) to a live second one; connect-retry-max ends the client.
- Without --pings: it runs until SIGTERM/SIGINT, then tells the server it leaves
  (OCC EXIT; with explicit-exit-notify and cc-exit, the EXIT control message) and
  exits 0; it reconnects after a ping-restart and lives through renegotiations.

The cases of a group run at once (module fixtures), as in test_failures.py.
"""

import re
import signal
import socket
import time

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod

from harness import Client, need_tun

RUNTIMES = ("cpython", "micropython")
MARGIN = 15  # generous: the suite may run on two busy cores

# the server's verb-9 log of our ping, framed per stub (AEAD: the payload alone)
FRAMED_PING = {
    None: ov.PING_DECRYPTED,
    "lzo-stub": re.compile(r"DECRYPT TO: fa2a187b f3641eb4 cb07ed2d 0a981fc7 48"),
    "stub": re.compile(r"DECRYPT TO: fb187bf3 641eb4cb 07ed2d0a 981fc748 2a"),
    "stub-v2": ov.PING_DECRYPTED,
}
COMP_ERRORS = re.compile(r"Bad (LZO|compression stub\w*) decompression header byte")


def _conf(tmp, name: str, pki, remotes, proto: str = "udp", extra=()) -> str:
    """A client .ovpn; ``remotes`` [(port, proto)] replace the one remote line."""
    text = ov.client_config(pki, remotes[0][0], proto=proto)
    lines = ["remote 127.0.0.1 %d %s" % (port, "udp" if p == "udp" else "tcp-client") for port, p in remotes]
    text = text.replace("remote 127.0.0.1 %d\n" % remotes[0][0], "\n".join(lines) + "\n")
    path = tmp / (name + ".ovpn")
    path.write_text(text + "".join(line + "\n" for line in extra))
    return str(path)


def _server(tmp, name: str, pki, proto: str = "udp", extra=(), verb: int = 4, keepalive=None) -> "ov.OpenVpn":
    port = ov.free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    args = ov.server_args(pki, port, proto=proto, verb=verb)
    if keepalive:
        i = args.index("--keepalive")
        args[i + 1:i + 3] = list(keepalive)
    server = ov.OpenVpn(args + list(extra), str(tmp / (name + ".log")))
    server.port = port
    return server


def _ready(server) -> None:
    assert server.wait_for(r"Initialization Sequence Completed", 20), server.log()[-3000:]


def _no_traceback(c: Client) -> None:
    assert "Traceback" not in c.stderr, c


# -- compression -----------------------------------------------------------------------

# name -> (server options, client lines, framing on the wire)
COMPRESSION = {
    "comp-lzo-no": (["--comp-lzo", "no"], ["comp-lzo no"], "lzo-stub"),
    "compress": (["--compress"], ["compress"], "stub"),
    "compress-stub-v2": (["--compress", "stub-v2"], ["compress stub-v2"], "stub-v2"),
    "pushed-comp-lzo-no": (["--comp-lzo", "no", "--push", "comp-lzo no"], [], "lzo-stub"),
    "pushed-compress": (["--compress", "--push", "compress"], [], "stub"),
    "pushed-compress-stub-v2": (["--compress", "stub-v2", "--push", "compress stub-v2"], [], "stub-v2"),
    # refused: the server pushes real LZO compression (allowed on its side)
    "pushed-lzo": (["--allow-compression", "yes", "--comp-lzo", "--push", "comp-lzo"], [], None),
    # the server frames, the client's config does not say so
    "unframed": (["--comp-lzo", "no"], [], None),
}


@pytest.fixture(scope="module")
def compression(tmp_path_factory):
    need_tun("p2mp")
    tmp = tmp_path_factory.mktemp("compression")
    pki = pkimod.make_pki(str(tmp / "pki"))
    servers, clients = {}, {}
    for rt in RUNTIMES:
        for name, (options, _, _) in COMPRESSION.items():
            servers[name, rt] = _server(tmp, "%s-%s" % (name, rt), pki, extra=options, verb=9)
    for s in servers.values():
        _ready(s)
    for (name, rt), s in servers.items():
        conf = _conf(tmp, "%s-%s" % (name, rt), pki, [(s.port, "udp")], extra=COMPRESSION[name][1])
        clients[name, rt] = Client(conf, rt, pings=2, timeout=60)
    for c in clients.values():
        c.wait()
    logs = {key: s.log() for key, s in servers.items()}
    for s in servers.values():
        s.stop()
    return clients, logs


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", [n for n in COMPRESSION if COMPRESSION[n][2] is not None])
def test_compression_stub_pings_both_ways(compression, name, runtime):
    clients, logs = compression
    c, log = clients[name, runtime], logs[name, runtime]
    assert c.code == 0, "%r\nserver log tail:\n%s" % (c, log[-3000:])
    assert c.result["pings_received"] >= 2 and c.result["pings_sent"] >= 2, c
    framing = COMPRESSION[name][2]
    assert len(FRAMED_PING[framing].findall(log)) >= 2, "server did not decrypt our framed pings:\n" + log[-3000:]
    assert not COMP_ERRORS.search(log), log[-3000:]
    assert not ov.KEY_ERRORS.search(log)
    assert "compression: '%s'" % ("stubv2" if framing == "stub-v2" else "stub") in log  # what the server runs
    _no_traceback(c)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pushed_real_compression_is_refused(compression, runtime):
    clients, logs = compression
    c, log = clients["pushed-lzo", runtime], logs["pushed-lzo", runtime]
    assert c.code == 1, c
    assert "server pushed compression settings that are not allowed (comp-lzo)" in c.reason, c
    assert "comp-lzo no or compress stub-v2" in c.reason, c
    assert c.result["pings_sent"] == 0 and c.of("keys") == [], c  # nothing was sent garbled
    assert not COMP_ERRORS.search(log), log[-3000:]
    _no_traceback(c)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_framing_server_with_an_unframed_config_is_named(compression, runtime):
    c = compression[0]["unframed", runtime]
    assert c.code == 1, c
    assert "the server frames every packet for compression (comp-lzo on its side)" in c.reason, c
    assert "add 'comp-lzo no'" in c.reason, c
    assert c.elapsed < 20, c  # at its first ping, not after a ping-restart
    _no_traceback(c)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("line", ("comp-lzo", "comp-lzo yes", "compress lz4"))
def test_configured_compression_is_refused_before_any_packet(tmp_path, runtime, line):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.3)
    pki = pkimod.make_pki(str(tmp_path / "pki"))
    conf = _conf(tmp_path, "c", pki, [(sink.getsockname()[1], "udp")], extra=[line])
    c = Client(conf, runtime).wait()
    try:
        with pytest.raises(socket.timeout):
            sink.recv(2048)
    finally:
        sink.close()
    assert c.code == 2, c
    text = c.stderr + c.reason
    assert "c.ovpn:" in text and line in text and "refused" in text, c


# -- failover --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def failover(tmp_path_factory):
    need_tun("p2mp")
    tmp = tmp_path_factory.mktemp("failover")
    pki = pkimod.make_pki(str(tmp / "pki"))
    # one server per proto for both runtimes: duplicate-cn, as both clients have the same certificate
    servers = {p: _server(tmp, p, pki, proto=p, verb=9, extra=["--duplicate-cn"]) for p in ("udp", "tcp")}
    for s in servers.values():
        _ready(s)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a dead UDP server: takes all, says nothing
    sink.bind(("127.0.0.1", 0))
    clients = {}
    for rt in RUNTIMES:
        clients["udp", rt] = Client(_conf(tmp, "udp-" + rt, pki, [(sink.getsockname()[1], "udp"),
                                                                   (servers["udp"].port, "udp")],
                                          extra=["server-poll-timeout 2"]), rt, timeout=60)
        refused = ov.free_port(socket.SOCK_STREAM)  # nothing listens
        clients["tcp", rt] = Client(_conf(tmp, "tcp-" + rt, pki, [(refused, "tcp"), (servers["tcp"].port, "tcp")],
                                          proto="tcp"), rt, timeout=60)
        # both remotes dead, retried for ever unless connect-retry-max says otherwise
        dead = [(ov.free_port(socket.SOCK_STREAM), "tcp"), (ov.free_port(socket.SOCK_STREAM), "tcp")]
        clients["max", rt] = Client(_conf(tmp, "max-" + rt, pki, dead, proto="tcp",
                                          extra=["connect-retry-max 2", "connect-retry 1"]), rt,
                                    pings=None, timeout=None)
    for c in clients.values():
        c.wait()
    sink.close()
    logs = {k: s.log() for k, s in servers.items()}
    for s in servers.values():
        s.stop()
    return clients, logs


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("proto", ("udp", "tcp"))
def test_failover_from_a_dead_first_remote(failover, proto, runtime):
    clients, logs = failover
    c = clients[proto, runtime]
    assert c.code == 0, "%r\n%s" % (c, logs[proto][-2000:])
    connecting = [e["remote"] for e in c.of("connecting")]
    assert len(connecting) == 2 and connecting[0] != connecting[1], c.events
    restarts = c.of("restart")
    assert len(restarts) == 1, c.events
    if proto == "udp":  # silence: left after server-poll-timeout, at once (no pause after a poll timeout)
        assert "server poll timeout: no answer from" in restarts[0]["reason"] and restarts[0]["in_s"] == 0
    else:  # refused: openvpn's connect-retry pause (1 s), then the next remote
        assert "connection refused" in restarts[0]["reason"] and restarts[0]["in_s"] == 1
    assert c.result["pings_received"] >= 2 and c.result["pings_sent"] >= 2 and c.result["restarts"] == 1, c
    assert c.elapsed < 2 + MARGIN, c
    log = logs[proto]  # one server for both runtimes' clients
    assert len(ov.PING_DECRYPTED.findall(log)) >= 4 and not ov.KEY_ERRORS.search(log), log[-2000:]
    _no_traceback(c)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_connect_retry_max_ends_the_client(failover, runtime):
    c = failover[0]["max", runtime]
    assert c.code == 1, c
    assert "All connections have been connect-retry-max (2) times unsuccessful" in c.reason, c
    assert len(c.of("connecting")) == 4 and len(c.of("restart")) == 3, c.events  # 2 remotes x 2
    assert [e["in_s"] for e in c.of("restart")] == [1, 1, 1], c.events
    _no_traceback(c)


# -- a client that stays up ---------------------------------------------------------------

class _Until:
    """on_event: when ``pred(client, ev)`` first holds, run ``then(client)`` once."""

    def __init__(self, pred, then) -> None:
        self.pred, self.then, self.done = pred, then, False

    def __call__(self, client, ev) -> None:
        if not self.done and self.pred(client, ev):
            self.done = True
            self.then(client)


def _after_pings(n: int, sig):
    return _Until(lambda c, ev: ev["event"] == "ping" and ev["count"] >= n, lambda c: c.signal(sig))


@pytest.fixture(scope="module")
def lifetime(tmp_path_factory):
    need_tun("p2mp")
    tmp = tmp_path_factory.mktemp("lifetime")
    pki = pkimod.make_pki(str(tmp / "pki"))
    servers, clients = {}, {}
    for rt in RUNTIMES:
        for name, proto, extra, keepalive in (("term", "udp", (), None), ("int", "udp", (), None),
                                              ("een", "udp", (), None), ("tcp", "tcp", (), None),
                                              ("reneg", "udp", ("--reneg-sec", "3"), ("1", "10")),
                                              ("restart", "udp", (), ("1", "3"))):
            servers[name, rt] = _server(tmp, "%s-%s" % (name, rt), pki, proto=proto, extra=extra,
                                        keepalive=keepalive)
    for s in servers.values():
        _ready(s)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a server that never answers
    sink.bind(("127.0.0.1", 0))
    for rt in RUNTIMES:
        # stopped before any key: nothing to tell the server, status 0 all the same
        clients["early", rt] = Client(_conf(tmp, "early-" + rt, pki, [(sink.getsockname()[1], "udp")]), rt,
                                      pings=None, timeout=None, on_event=_Until(
                                          lambda c, ev: ev["event"] == "state", lambda c: c.signal(signal.SIGTERM)))

        def conf(name, proto="udp", extra=()):
            return _conf(tmp, "%s-%s" % (name, rt), pki, [(servers[name, rt].port, proto)], proto=proto,
                         extra=extra)

        clients["term", rt] = Client(conf("term"), rt, pings=None, timeout=None,
                                     on_event=_after_pings(2, signal.SIGTERM))
        clients["int", rt] = Client(conf("int"), rt, pings=None, timeout=None,
                                    on_event=_after_pings(1, signal.SIGINT))
        clients["een", rt] = Client(conf("een", extra=["explicit-exit-notify 2"]), rt, pings=None, timeout=None,
                                    on_event=_after_pings(1, signal.SIGTERM))
        clients["tcp", rt] = Client(conf("tcp", "tcp"), rt, pings=None, timeout=None,
                                    on_event=_after_pings(1, signal.SIGTERM))
        # lives through two renegotiations the server starts, pinging on
        clients["reneg", rt] = Client(conf("reneg"), rt, pings=None, timeout=None, on_event=_Until(
            lambda c, ev: ev["event"] == "ping" and any(k["key_id"] >= 2 for k in c.of("keys")),
            lambda c: c.signal(signal.SIGTERM)))
        # the server freezes after our keys: ping-restart, then a new session once it is back
        srv = servers["restart", rt]

        def freeze(c, srv=srv):
            srv.proc.send_signal(signal.SIGSTOP)

        def thaw_then_stop(c, ev, srv=srv):
            if ev["event"] == "restart":
                srv.proc.send_signal(signal.SIGCONT)
            return ev["event"] == "keys" and len(c.of("keys")) >= 2

        stages = [_Until(lambda c, ev: ev["event"] == "keys", freeze),
                  _Until(thaw_then_stop, lambda c: c.signal(signal.SIGTERM))]
        clients["restart", rt] = Client(conf("restart"), rt, pings=None, timeout=None,
                                        on_event=lambda c, ev, stages=stages: [s(c, ev) for s in stages])
    deadline = time.monotonic() + 90
    for c in clients.values():
        while c.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if c.proc.poll() is None:  # never signalled: a failure, but leave no process behind
            c.proc.kill()
        c.wait()
    sink.close()
    for s in servers.values():
        s.proc.send_signal(signal.SIGCONT)
    time.sleep(1)  # the servers log what reached them
    logs = {k: s.log() for k, s in servers.items()}
    for s in servers.values():
        s.stop()
    return clients, logs


def _stopped_cleanly(c: Client, sig: str) -> None:
    assert c.code == 0, c
    assert c.result["ok"] is True and c.result["stopped"] == sig, c
    assert c.result["reason"].startswith("stopped by " + sig), c
    _no_traceback(c)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_sigterm_after_data_ready_exits_0_and_tells_the_server(lifetime, runtime):
    clients, logs = lifetime
    c = clients["term", runtime]
    _stopped_cleanly(c, "SIGTERM")
    assert c.of("exit_notify") == [dict(c.of("exit_notify")[0], method="occ", seconds=0)], c.events
    assert "OCC exit message received by peer" in logs["term", runtime], logs["term", runtime][-2000:]
    assert c.ended - c.signalled_at < 5, c  # no notification period asked for: at once
    assert not c.of("restart")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_stop_before_keys(lifetime, runtime):
    c = lifetime[0]["early", runtime]
    _stopped_cleanly(c, "SIGTERM")
    assert c.result["reason"] == "stopped by SIGTERM" and not c.of("exit_notify") and not c.of("keys"), c.events
    assert c.ended - c.signalled_at < 5, c


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_sigint_is_a_stop_too(lifetime, runtime):
    clients, logs = lifetime
    _stopped_cleanly(clients["int", runtime], "SIGINT")
    assert "OCC exit message received by peer" in logs["int", runtime]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_explicit_exit_notify_sends_exit_when_the_server_does_cc_exit(lifetime, runtime):
    clients, logs = lifetime
    c = clients["een", runtime]
    _stopped_cleanly(c, "SIGTERM")
    note = c.of("exit_notify")
    assert len(note) == 1 and note[0]["method"] == "control" and note[0]["seconds"] == 2, c.events
    assert "protocol-flags cc-exit" in " ".join(e.get("text", "") for e in c.of("message"))
    assert "CC-EEN exit message received by peer" in logs["een", runtime], logs["een", runtime][-2000:]
    assert 1.5 < c.ended - c.signalled_at < 2 + MARGIN, c  # openvpn waits out the notification period


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tcp_stop_closes_the_connection(lifetime, runtime):
    clients, logs = lifetime
    c = clients["tcp", runtime]
    _stopped_cleanly(c, "SIGTERM")
    assert not c.of("exit_notify"), c.events  # on TCP the closed connection says it
    log = logs["tcp", runtime]
    assert re.search(r"Connection reset, restarting|client-instance (exiting|restarting)", log), log[-2000:]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_lives_through_renegotiations(lifetime, runtime):
    clients, logs = lifetime
    c = clients["reneg", runtime]
    _stopped_cleanly(c, "SIGTERM")
    key_ids = [e["key_id"] for e in c.of("keys")]
    assert key_ids[:3] == [0, 1, 2], key_ids
    keys_at = c.events.index(c.of("keys")[-1])
    assert any(e["event"] == "ping" for e in c.events[keys_at:]), c.events  # pings go on with the new key
    assert not c.of("restart") and c.result["decrypt_errors"] == 0, c
    assert not ov.KEY_ERRORS.search(logs["reneg", runtime])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ping_restart_reconnects(lifetime, runtime):
    clients, logs = lifetime
    c = clients["restart", runtime]
    _stopped_cleanly(c, "SIGTERM")
    restarts = c.of("restart")
    assert restarts and "ping-restart" in restarts[0]["reason"], c.events
    assert restarts[0]["remote"] == c.of("connecting")[0]["remote"]  # the same remote first after a connection
    assert len(c.of("keys")) >= 2 and [e["key_id"] for e in c.of("keys")][-1] == 0, c.events  # a new session
    assert len(c.of("connecting")) == len(restarts) + 1, c.events
