"""The simulated devices of ``ovpnkx load``: many client Sessions in one process.

Each device is a real ``Session`` (the sans-IO core, client, p2mp) with its own
UDP socket or TCP connection from 127.0.0.1, so the server sees one peer per
device. One epoll loop and one timer heap drive every device of the process.

A device arrives (at ``rate`` per second, while fewer than ``concurrency`` are
alive), runs the handshake to data-channel keys, holds (keepalive pings at the
interval the server pushed, a renegotiation every ``reneg_s``), and leaves with
OCC EXIT. ``Fleet.run`` reports progress and, at the end, what happened.
"""

import copy
import gc
import json
import os
import resource
import selectors
import socket
import time

from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ovpnkx.streambuf import StreamDeframer, frame
from ovpnkx.config import engine_args, engine_options
from ovpnkx.session import Session
from ovpnkx.wrapconfig import control_wrap_factory
from ovpnkx_device.session_options import session_config

from .crypto_host import HostCrypto
from .tls_openssl import OpenSslContext
from .timerheap import TimerHeap

PROGRESS_MS = 250


def now_ms() -> int:
    """The monotonic clock every process of a run shares (CLOCK_MONOTONIC), in ms."""
    return time.monotonic_ns() // 1_000_000


class Plan:
    """What the devices of one run do (the same in every process of the run)."""

    def __init__(self, devices: int, concurrency: int, rate: float, hold_s: float, together: bool,
                 reneg_s: float, proto: str, remote: tuple, t0_ms: int) -> None:
        self.devices = devices
        self.concurrency = concurrency
        self.rate = rate
        self.hold_ms = int(hold_s * 1000)
        self.together = together  # hold until hold_s after the whole fleet is up
        self.reneg_ms = int(reneg_s * 1000)
        self.proto = proto
        self.remote = remote
        self.t0_ms = t0_ms

    def arrival_ms(self, index: int) -> int:
        """When device ``index`` may start at the earliest."""
        return self.t0_ms + (int(index * 1000 / self.rate) if self.rate > 0 else 0)


def cause_of(reason: str) -> str:
    """A failure reason with its particulars (numbers, peers) cut, to count by cause."""
    for cut in (" (", ": "):
        if cut in reason and not reason.startswith("socket"):
            reason = reason[:reason.index(cut)]
    return "".join("N" if ch.isdigit() else ch for ch in reason).replace("NN", "N").replace("NN", "N")


class Device:
    """One simulated device: its socket, session and what it saw."""

    __slots__ = ("index", "sock", "session", "started_ms", "keys_ms", "leave_ms", "next_reneg_ms",
                 "last_ping_ms", "ping_interval_ms", "pings", "lost", "renegs", "outbuf", "deframer",
                 "connected", "done")

    def __init__(self, index: int) -> None:
        self.index = index
        self.sock = None  # type: socket.socket | None
        self.session = None  # type: Session | None
        self.started_ms = 0
        self.keys_ms = 0
        self.leave_ms = 0
        self.next_reneg_ms = 0
        self.last_ping_ms = 0
        self.ping_interval_ms = 0
        self.pings = 0
        self.lost = 0
        self.renegs = 0
        self.outbuf = bytearray()
        self.deframer = None  # type: StreamDeframer | None
        self.connected = False
        self.done = False


class Fleet:
    """The devices of one process: ``indices`` of the run's devices."""

    def __init__(self, plan: Plan, cfg, indices: list, concurrency: int, identities: "list | None",
                 report, commands=None, groups: "str | None" = None) -> None:
        self.plan = plan
        self.cfg = cfg
        self.pending = list(reversed(indices))  # next to arrive at the end
        self.concurrency = concurrency
        self.report = report  # report(dict): progress and the final record
        self.commands = commands  # a multiprocessing Connection from the parent, or None
        self.crypto = HostCrypto()
        self.entropy = HostEntropy()
        self.scfg = session_config(cfg, self.crypto, True, "linux")
        # tls-auth, tls-crypt or tls-crypt-v2: the keys parsed once, a wrapper (replay window) per device
        self.wrap_factory = control_wrap_factory(cfg, False, self.crypto)
        # one TLS context for every device, with the config's checks of the server
        ca, cert, key = engine_args(cfg)
        self.tls = OpenSslContext(False, ca, cert, key, groups=groups, **engine_options(cfg))
        self.identities = identities  # [(cert_pem, key_pem)] used round-robin, or None
        self._parsed: dict = {}
        self.sel = selectors.DefaultSelector()
        self.timers = TimerHeap()
        self.live: set = set()  # devices not yet ended
        self.alive = 0
        self.established = 0
        self.hold_until_ms = None  # type: int | None  # together: set by the parent
        self.stopping = False
        # results
        self.started = self.keyed = self.completed = self.failed = 0
        self.ttk: list = []
        self.causes: dict = {}
        self.pings = self.pings_lost = self.renegs = self.icmp_refused = 0
        self.hs_packets_in = self.hs_packets_out = 0  # datagrams until keys, summed over devices
        self.first_start_ms = self.last_keys_ms = 0

    # -- devices ---------------------------------------------------------------
    def _identity(self, index: int):
        if not self.identities:
            return None
        i = index % len(self.identities)
        ident = self._parsed.get(i)
        if ident is None:
            ident = self._parsed[i] = OpenSslContext.identity(*self.identities[i])
        return ident

    def _start(self, index: int, now: int) -> None:
        dev = Device(index)
        self.live.add(dev)
        self.started += 1
        self.alive += 1
        if not self.first_start_ms:
            self.first_start_ms = now
        dev.started_ms = now
        ident = self._identity(index)
        tls = self.tls
        try:
            dev.session = Session(self._session_config(), self.entropy, self.crypto,
                                  lambda: tls.engine(ident), now)
            kind = socket.SOCK_STREAM if self.plan.proto == "tcp" else socket.SOCK_DGRAM
            sock = dev.sock = socket.socket(socket.AF_INET, kind)
            sock.setblocking(False)
            if kind == socket.SOCK_DGRAM:
                sock.bind(("127.0.0.1", 0))
                sock.connect(self.plan.remote)
                dev.connected = True
                self.sel.register(sock, selectors.EVENT_READ, dev)
            else:
                dev.deframer = StreamDeframer()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                err = sock.connect_ex(self.plan.remote)
                if err not in (0, 115):  # EINPROGRESS
                    raise OSError(err, os.strerror(err))
                self.sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, dev)
        except (OSError, ProtocolError) as exc:
            self._end(dev, now, "socket: %s" % exc)
            return
        self._pump(dev, now)

    def _session_config(self):
        if self.wrap_factory is None:
            return self.scfg  # shared: a session never changes its config
        c = copy.copy(self.scfg)  # the control-channel wrapper keeps a replay window per device
        c.tls_auth = self.wrap_factory()
        return c

    def _send(self, dev: Device, packets: list) -> None:
        sock = dev.sock
        if sock is None:
            return
        if self.plan.proto == "tcp":
            dev.outbuf += b"".join(frame(p) for p in packets)
            self._flush(dev)
            return
        for p in packets:
            try:
                sock.send(p)
            except (BlockingIOError, ConnectionRefusedError):
                pass  # a lost datagram: the reliable layer or the next ping covers it

    def _flush(self, dev: Device) -> None:
        if not dev.connected or not dev.outbuf or dev.sock is None:
            return
        try:
            n = dev.sock.send(dev.outbuf)
            del dev.outbuf[:n]
        except BlockingIOError:
            pass
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if dev.outbuf else 0)
        self.sel.modify(dev.sock, events, dev)

    def _pump(self, dev: Device, now: int) -> None:
        s = dev.session
        if s is None or dev.done:
            return
        if self.stopping:
            self._leave(dev, now)
            return
        if dev.keys_ms:
            if now >= (self.hold_until_ms or now + 1 if self.plan.together else dev.leave_ms):
                self._leave(dev, now)
                return
            if dev.next_reneg_ms and now >= dev.next_reneg_ms:
                try:
                    s.renegotiate(now)
                except LocalProtocolError:
                    pass  # the last one is still running: try again an interval later
                dev.next_reneg_ms = now + self.plan.reneg_ms
        packets = s.packets_to_send(now)
        if packets:
            self._send(dev, packets)
        for ev in s.events():
            kind = ev.kind
            if kind == "keys":
                self._keys(dev, ev, now)
            elif kind == "ping":
                self._ping(dev, now)
            elif kind == "closed":  # we did not leave: whatever ended it is a failure
                self._end(dev, now, str(ev.fields["reason"]))
                return
        if dev.done:
            return
        when = s.get_timer()
        if dev.keys_ms:
            stop = self.hold_until_ms if self.plan.together else dev.leave_ms
            for t in (stop, dev.next_reneg_ms or None):
                if t is not None and (when is None or t < when):
                    when = t
        if when is not None:
            self.timers.arm(dev, when)

    def _keys(self, dev: Device, ev, now: int) -> None:
        if ev.fields["key_id"] != 0:
            dev.renegs += 1
            self.renegs += 1
            return
        dev.keys_ms = dev.last_ping_ms = now
        self.keyed += 1
        self.established += 1
        self.last_keys_ms = now
        self.ttk.append(now - dev.started_ms)
        s = dev.session
        if s is not None:  # the interval the server pushed, else our config's
            dev.ping_interval_ms = s.negotiated().ping_ms()
            self.hs_packets_in += s.stats["packets_in"]
            self.hs_packets_out += s.stats["packets_out"]
        dev.leave_ms = now + self.plan.hold_ms
        if self.plan.reneg_ms:
            dev.next_reneg_ms = now + self.plan.reneg_ms

    def _ping(self, dev: Device, now: int) -> None:
        dev.pings += 1
        self.pings += 1
        dev.lost += _missed(now - dev.last_ping_ms, dev.ping_interval_ms)
        dev.last_ping_ms = now

    def _leave(self, dev: Device, now: int) -> None:
        s = dev.session
        if s is None:
            return
        if dev.keys_ms:
            dev.lost += _missed(now - dev.last_ping_ms, dev.ping_interval_ms)
        s.close(now, "hold done")
        if not dev.keys_ms:
            self._end(dev, now, "stopped before keys")
            return
        packets = s.packets_to_send(now)
        if packets:
            self._send(dev, packets)
        self._end(dev, now, None)

    def _end(self, dev: Device, now: int, failure: "str | None") -> None:
        if dev.done:
            return
        dev.done = True
        self.live.discard(dev)
        self.alive -= 1
        if dev.keys_ms:
            self.established -= 1
        self.pings_lost += dev.lost
        if failure is None:
            self.completed += 1
        else:
            self.failed += 1
            cause = cause_of(failure)
            self.causes[cause] = self.causes.get(cause, 0) + 1
        self.timers.cancel(dev)
        if dev.sock is not None:
            try:
                self.sel.unregister(dev.sock)
            except (KeyError, ValueError):
                pass
            dev.sock.close()
            dev.sock = None
        dev.session = None

    # -- I/O ---------------------------------------------------------------------
    def _readable(self, dev: Device, now: int) -> None:
        s, sock = dev.session, dev.sock
        if s is None or sock is None:
            return
        if self.plan.proto == "tcp":
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                s.close(now, "socket: %s" % exc)
                self._end(dev, now, "socket: %s" % exc.strerror)
                return
            if not data:
                self._end(dev, now, "socket: server closed the connection")
                return
            try:
                packets = dev.deframer.feed(data) if dev.deframer is not None else []
            except RemoteProtocolError as exc:
                self._end(dev, now, "bad TCP framing: %s" % exc)
                return
            for p in packets:
                s.receive(p, now)
        else:
            for _ in range(64):
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    self.icmp_refused += 1  # ICMP port unreachable: the server may come back
                    continue
                s.receive(data, now)
        self._pump(dev, now)

    def _writable(self, dev: Device, now: int) -> None:
        if not dev.connected and dev.sock is not None:
            err = dev.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._end(dev, now, "socket: %s" % os.strerror(err))
                return
            dev.connected = True
        self._flush(dev)

    def _command(self) -> None:
        try:
            msg = self.commands.recv()
        except EOFError:
            self.stopping = True
            return
        if msg.get("cmd") == "hold_until":
            self.hold_until_ms = msg["t"]
            for dev in self.live:
                self.timers.arm(dev, msg["t"])
        elif msg.get("cmd") == "stop":
            self.stopping = True
            for dev in self.live:
                self.timers.arm(dev, 0)

    # -- the loop ------------------------------------------------------------------
    def run(self) -> dict:
        """Run every device of this process to its end; returns the final record."""
        if self.commands is not None:
            self.sel.register(self.commands.fileno(), selectors.EVENT_READ, None)
        next_report = 0
        while True:
            now = now_ms()
            # arrivals
            while self.pending and self.alive < self.concurrency and not self.stopping:
                index = self.pending[-1]
                if self.plan.arrival_ms(index) > now:
                    break
                self.pending.pop()
                self._start(index, now)
                now = now_ms()
            for dev in self.timers.pop_due(now):
                self._pump(dev, now)
            if now >= next_report:
                self.report(self._progress())
                next_report = now + PROGRESS_MS
            if (not self.pending or self.stopping) and self.alive == 0:
                break
            deadline = self.timers.next_deadline()
            if self.pending and self.alive < self.concurrency:
                arrival = self.plan.arrival_ms(self.pending[-1])
                deadline = arrival if deadline is None else min(deadline, arrival)
            wait = PROGRESS_MS if deadline is None else max(0, min(PROGRESS_MS, deadline - now))
            for key, mask in self.sel.select(wait / 1000):
                dev = key.data
                now = now_ms()
                if dev is None:
                    self._command()
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._writable(dev, now)
                if mask & selectors.EVENT_READ:
                    self._readable(dev, now)
        self.sel.close()
        return self._final()

    def _progress(self) -> dict:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {"kind": "progress", "cpu_s": ru.ru_utime + ru.ru_stime, "started": self.started, "keyed": self.keyed,
                "established": self.established, "alive": self.alive, "completed": self.completed,
                "failed": self.failed, "pending": len(self.pending), "pings": self.pings,
                "pings_lost": self.pings_lost, "last_keys_ms": self.last_keys_ms}

    def _final(self) -> dict:
        record = self._progress()
        record.update(kind="final", ttk=self.ttk, causes=self.causes, renegs=self.renegs,
                      hs_packets_in=self.hs_packets_in, hs_packets_out=self.hs_packets_out,
                      icmp_refused=self.icmp_refused, first_start_ms=self.first_start_ms,
                      max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return record


def _missed(gap_ms: int, interval_ms: int) -> int:
    """Pings the server should have sent in a silent gap of ``gap_ms`` (half an interval of slack)."""
    if interval_ms <= 0 or gap_ms <= interval_ms * 3 // 2:
        return 0
    return -(-(gap_ms - interval_ms * 3 // 2) // interval_ms)


def worker_main(plan: Plan, cfg, indices: list, concurrency: int, identities, conn,
                groups: "str | None" = None) -> None:
    """Entry of one load process: run its devices, send progress and the final record."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop

    def report(record: dict) -> None:
        conn.send(record)

    fleet = Fleet(plan, cfg, indices, concurrency, identities, report, conn, groups)
    # as serve does: no automatic full collections (they would stall every device), the
    # devices' sessions are freed by reference counting; a run is short, one collection ends it
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1 << 30)
    try:
        conn.send(fleet.run())
    except BrokenPipeError:
        pass


def encode(record: dict) -> str:
    """One JSON line (tests and debugging)."""
    return json.dumps(record)
