"""The client loop's lifetime rules in virtual time, on both runtimes.

``ClientRun`` with a fake clock and fake transports that hear nothing: no TLS
handshake happens, so the TLS engine is one that fails the test if it is used.
What is checked is openvpn's order of remotes, its pauses, server-poll-timeout,
connect-retry-max, ``--pings`` trying each remote once, the overall timeout, a
stop request (a signal, or KeyboardInterrupt on MicroPython) and the failure
hint fed by the transport's counters. Against real servers: tests/interop.
"""

from ovpnkx.config import ClientConfig
from ovpnkx.entropy import DeterministicEntropy
from ovpnkx_device.runner import ClientRun, Stop, TransportError

from _support import crypto_backend

A, B = ("10.0.0.1", 1194, "udp"), ("10.0.0.2", 443, "tcp")


class Clock:
    def __init__(self):
        self.t = 0

    def now_ms(self):
        return self.t

    def sleep_ms(self, ms):
        self.t += ms


class UnusedTls:
    """No peer answers in these tests: the TLS engine is never started (it has
    nothing to send); any other use fails the test."""

    handshake_complete = False

    def pending_ciphertext(self):
        return b""

    def __getattr__(self, name):
        raise AssertionError("the TLS engine was used: " + name)


class Silent:
    """A transport to a remote that never answers; ``wait`` lets virtual time pass."""

    def __init__(self, clock, name, on_wait=None):
        self.clock, self.name, self.on_wait = clock, name, on_wait
        self.sent = []
        self.closed = False

    def send(self, packet):
        self.sent.append(bytes(packet))

    def receive(self):
        return []

    def wait(self, ms):
        if self.on_wait is not None:
            self.on_wait(self)
        self.clock.t += max(ms, 1)

    def close(self):
        self.closed = True


def _cfg(remotes, **kw):
    cfg = ClientConfig("test.ovpn")
    cfg.p2mp = cfg.tls_client = True
    cfg.remotes = list(remotes)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _run(cfg, pings=0, timeout_s=0, refuse=(), stop=None, on_wait=None, transport=None):
    clock = Clock()
    opened, events = [], []

    def factory(host, port, proto):
        if (host, port, proto) in refuse:
            raise TransportError("connection refused by %s:%d (nothing listening)" % (host, port))
        t = Silent(clock, "%s:%d" % (host, port), on_wait)
        opened.append(t)
        return t

    run = ClientRun(cfg, DeterministicEntropy(b"loop"), crypto_backend(), UnusedTls, pings=pings,
                    timeout_s=timeout_s, emit=events.append, transport=transport, stop=stop, clock=clock,
                    sleep_ms=clock.sleep_ms, transport_factory=factory)
    code = run.run()
    return code, events, opened, clock


def clock_of(transport):
    return transport.clock.t


def _kind(events, kind):
    return [e for e in events if e["event"] == kind]


def test_server_poll_timeout_moves_on_at_once_until_connect_retry_max():
    cfg = _cfg([A, B], server_poll_timeout=2, connect_retry_max=2)
    code, events, opened, _ = _run(cfg)
    assert code == 1
    assert [(e["remote"], e["at_ms"]) for e in _kind(events, "connecting")] == [
        ("10.0.0.1:1194", 0), ("10.0.0.2:443", 2000), ("10.0.0.1:1194", 4000), ("10.0.0.2:443", 6000)]
    restarts = _kind(events, "restart")
    assert [r["in_s"] for r in restarts] == [0, 0, 0]  # no pause after a server poll timeout
    assert restarts[0]["reason"] == "server poll timeout: no answer from 10.0.0.1:1194 within 2 s"
    result = events[-1]
    assert result["event"] == "result" and not result["ok"] and result["restarts"] == 3
    assert result["reason"].startswith("All connections have been connect-retry-max (2) times unsuccessful; "
                                       "the last: server poll timeout: no answer from 10.0.0.2:443")
    assert all(t.closed for t in opened) and all(t.sent for t in opened)  # each sent its reset


def test_a_refused_connection_pauses_connect_retry_then_tries_the_next():
    cfg = _cfg([B, A], server_poll_timeout=1, connect_retry=(3, 300), connect_retry_max=1)
    code, events, opened, _ = _run(cfg, refuse=(B,))
    connecting = [(e["remote"], e["at_ms"]) for e in _kind(events, "connecting")]
    assert connecting == [("10.0.0.2:443", 0), ("10.0.0.1:1194", 3000)]
    assert _kind(events, "restart")[0]["reason"].startswith("connection refused by 10.0.0.2:443")
    assert [t.name for t in opened] == ["10.0.0.1:1194"] and code == 1


def test_pings_mode_tries_each_remote_once():
    cfg = _cfg([A, B], hand_window=1, connect_retry=(0, 300))
    code, events, opened, clock = _run(cfg, pings=2)
    assert code == 1 and len(opened) == 2
    reason = events[-1]["reason"]
    assert reason.startswith("all 2 remotes failed; the last: TLS key negotiation failed to occur within 1 seconds "
                             "(no answer from the peer; no packet ever arrived from 10.0.0.2:443"), reason
    assert clock.t < 2500


def test_the_overall_timeout():
    cfg = _cfg([A], connect_retry=(5, 300))
    code, events, _, clock = _run(cfg, timeout_s=3, refuse=(A,))  # refused, then pausing 5 s
    assert code == 1 and events[-1]["reason"].startswith("timed out after 3 s (state: waiting to reconnect")
    assert clock.t == 3000
    cfg = _cfg([A], server_poll_timeout=1)  # a poll timeout every second, no pause between
    code, events, _, clock = _run(cfg, timeout_s=3)
    assert code == 1 and events[-1]["reason"] == "timed out after 3 s (state: S_PRE_START)"
    assert len(_kind(events, "connecting")) == 3 and clock.t == 3000


def test_a_stop_before_keys_exits_0_without_a_notification():
    stop = Stop()
    cfg = _cfg([A])
    code, events, opened, clock = _run(cfg, stop=stop,
                                       on_wait=lambda t: stop.request("SIGTERM") if clock_of(t) > 500 else None)
    assert code == 0
    result = events[-1]
    assert result["ok"] and result["stopped"] == "SIGTERM" and result["reason"] == "stopped by SIGTERM"
    assert _kind(events, "exit_notify") == [] and len(opened[0].sent) == 1  # the reset, nothing more
    assert opened[0].closed


def test_keyboard_interrupt_is_a_stop_named_by_its_source():
    def interrupt(t):
        if t.clock.t >= 700:
            raise KeyboardInterrupt

    stop = Stop(lambda: "SIGTERM")  # what the parent of the MicroPython client wrote on its stdin
    code, events, _, _ = _run(_cfg([A]), stop=stop, on_wait=interrupt)
    assert code == 0 and events[-1]["stopped"] == "SIGTERM"
    code, events, _, _ = _run(_cfg([A]), stop=Stop(), on_wait=interrupt)
    assert code == 0 and events[-1]["stopped"] == "SIGINT"


class NoisyLine(Silent):
    """A serial line whose every frame arrives damaged."""

    def __init__(self, clock):
        Silent.__init__(self, clock, "serial:uart1")
        self.bytes_in = 0

        class Decoder:
            errors = {"crc": 0, "cobs": 0, "oversize": 0}
        self.decoder = Decoder()

    def wait(self, ms):
        self.bytes_in += 40
        self.decoder.errors["crc"] += 1
        Silent.wait(self, ms)


def test_the_hint_reads_the_transports_counters():
    clock = Clock()
    line = NoisyLine(clock)
    events = []
    cfg = _cfg([A], hand_window=2)
    run = ClientRun(cfg, DeterministicEntropy(b"loop"), crypto_backend(), UnusedTls, pings=1, emit=events.append,
                    transport=line, clock=clock, sleep_ms=clock.sleep_ms)
    assert run.run() == 1
    reason = events[-1]["reason"]
    assert "bytes arrived on serial:uart1 but no frame was intact (crc=" in reason, reason
    assert _kind(events, "connecting")[0]["remote"] == "serial:uart1" and line.closed
