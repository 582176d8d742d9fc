"""`ovpnkx serve --config FILE`: the CPython peer as an OpenVPN 2.6 p2mp server.

One sans-IO ``Session`` per client (``server.Server``). With ``--workers N``
the server runs N processes that share the port (``SO_REUSEPORT``: the kernel
keeps each client address on one worker), the cookie secret (any worker can
answer a first contact) and the limits (``admission``). ``--reuseport`` with
``--cookie-secret FILE`` lets several ``serve`` instances share one port or sit
behind one L4 balancer (docs/fleet.md).

A client's failure ends only its own session. The first line printed is one
JSON object with the bound ports, so scripts and tests can find the server;
then one line per event (``--events`` picks which kinds).
"""

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import sys
import threading
import time

from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import LocalProtocolError
from ovpnkx.tlswrap import parse_static_key

from .configfile import load_config
from .server import Server, TcpClient, UdpListener, server_admission, serve_serial

# `ovpnkx run` drives a Server over a serial line itself
_serve_serial = serve_serial

EVENT_KINDS = ("session", "state", "keys", "ping", "data", "message", "dropped", "decrypt_error", "closed",
               "refused", "limited", "warning", "worker_exit", "serial_error", "serial_stats",
               "device", "dropped_events")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx serve`."""
    p.add_argument("--config", required=True, help="OpenVPN-style server config")
    p.add_argument("--proto", choices=("udp", "tcp", "both"), help="override the config's proto")
    p.add_argument("--port", type=int, help="override the config's port (0 = any free port)")
    p.add_argument("--no-ekm", action="store_true", help="never grant tls-ekm (derive with the PRF)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--events", default="all", metavar="KINDS",
                   help="event kinds to print, comma-separated (default all; 'none': only the first line)")
    p.add_argument("--workers", default="1", metavar="N",
                   help="processes sharing the port (SO_REUSEPORT); 'auto': one per CPU (default 1)")
    p.add_argument("--reuseport", action="store_true",
                   help="bind with SO_REUSEPORT, so that other serve instances may share the port")
    p.add_argument("--cookie-secret", metavar="FILE",
                   help="the UDP cookie secret, shared with other instances (hex, or an OpenVPN static key)")
    p.add_argument("--serial", metavar="PORT",
                   help="serve a device on a serial line (pyserial URL); binds no network port "
                        "unless --proto or --port asks for one")
    p.add_argument("--baud", type=int, default=115200, help="serial line rate (default 115200)")


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class EventWriter:
    """Event lines to stdout, written by a thread: a slow reader never stalls the sessions.

    The event loop only appends lines to a buffer. A writer thread (one per
    process, started on first use, so each forked worker has its own) writes
    them out, each write at most PIPE_BUF bytes of whole lines, so the lines
    of several workers sharing one pipe never interleave. When the reader
    falls more than ``LIMIT`` bytes behind, further lines are dropped and
    counted, and a ``dropped_events`` line says how many once it catches up.
    Without an event loop (the supervisor) lines are written at once.
    """

    CHUNK = 4096
    LIMIT = 16 << 20

    def __init__(self, as_json: bool, kinds: "set | None", fd: int = 1) -> None:
        self.as_json = as_json
        self.kinds = kinds
        self.fd = fd
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: list = []
        self._size = 0  # bytes pending or being written
        self._dropped = 0
        self._writing = False
        self._owner = 0  # pid whose writer thread runs

    def wants(self, kind: str) -> bool:
        """Whether events of ``kind`` are printed (the server skips building the others)."""
        return self.kinds is None or kind in self.kinds

    def __call__(self, record: dict) -> None:
        if self.kinds is not None and record.get("event") not in self.kinds:
            return
        line = ((json.dumps(record) if self.as_json else _text(record)) + "\n").encode()
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop to protect (the supervisor): at once
            _write_all(self.fd, line)
            return
        with self._lock:
            if self._size + len(line) > self.LIMIT:
                self._dropped += 1
                return
            self._pending.append(line)
            self._size += len(line)
            if self._owner != os.getpid():
                self._owner = os.getpid()
                threading.Thread(target=self._run, name="events", daemon=True).start()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._dropped:
                    self._changed.wait()
                lines, self._pending = self._pending, []
                dropped, self._dropped = self._dropped, 0
                self._writing = True
            if dropped:
                lines.append((json.dumps({"event": "dropped_events", "count": dropped,
                                          "reason": "stdout was read too slowly"}) + "\n").encode())
            size = sum(len(x) for x in lines) - (len(lines[-1]) if dropped else 0)
            self._write(lines)
            with self._lock:
                self._size -= size
                self._writing = False
                self._changed.notify_all()

    def _write(self, lines: list) -> None:
        chunk: list = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > self.CHUNK:
                _write_all(self.fd, b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            _write_all(self.fd, b"".join(chunk))

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait (at most ``timeout_s``) until every line was written."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while (self._size or self._dropped or self._writing) and self._owner == os.getpid():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BrokenPipeError:
            return
        data = data[n:]


def _text(record: dict) -> str:
    rest = ", ".join("%s=%s" % (k, v) for k, v in record.items() if k not in ("event", "peer", "at_ms"))
    return "%-21s %-13s %s" % (record.get("peer", ""), record.get("event"), rest)


def read_cookie_secret(path: str) -> bytes:
    """A shared cookie secret: hex text (>= 16 bytes) or an OpenVPN static key file."""
    with open(path) as f:
        text = f.read()
    if "BEGIN OpenVPN Static key" in text:
        return parse_static_key(text)
    try:
        secret = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise LocalProtocolError("%s: not hex and not an OpenVPN static key" % path)
    if len(secret) < 16:
        raise LocalProtocolError("%s: %d bytes; a cookie secret needs at least 16" % (path, len(secret)))
    return secret


class Claims:
    """duplicate-cn across workers: one datagram socket pair per worker.

    Worker i reads ``inbox[i]``; announcing writes to every other worker's pair.
    """

    def __init__(self, workers: int) -> None:
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(workers)]
        for a, b in self.pairs:
            a.setblocking(False)
            b.setblocking(False)
        self.worker = 0

    def announce(self, cn: str, at_ns: int) -> None:
        """Tell the other workers that ``cn`` was accepted at ``at_ns``."""
        msg = json.dumps([cn, at_ns]).encode()
        for i, (send, _) in enumerate(self.pairs):
            if i != self.worker:
                try:
                    send.send(msg)
                except OSError:
                    pass  # that worker is gone, or busy beyond its buffer: it keeps both

    def listen(self, loop, server: Server) -> None:
        """Close this worker's older sessions of every name another worker accepted."""
        inbox = self.pairs[self.worker][1]

        def readable() -> None:
            while True:
                try:
                    cn, at_ns = json.loads(inbox.recv(65536))
                except (BlockingIOError, ValueError):
                    return
                server.cn_claimed(cn, at_ns)

        loop.add_reader(inbox.fileno(), readable)


def _bind(kind: int, host: str, port: int, reuseport: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


def _listeners(cfg, proto: str, port: int, workers: int, reuseport: bool) -> list:
    """One (udp, tcp) socket pair per worker, all on one port (the first picks it when 0)."""
    out = []
    for _ in range(workers):
        udp = tcp = None
        if proto in ("udp", "both"):
            udp = _bind(socket.SOCK_DGRAM, cfg.local, port, reuseport)
            port = udp.getsockname()[1]
        if proto in ("tcp", "both"):
            tcp = _bind(socket.SOCK_STREAM, cfg.local, port, reuseport)
            port = tcp.getsockname()[1]
        out.append((udp, tcp))
    return out


FULL_GC_S = 600


def young_gc_only(loop) -> None:
    """Garbage collection for a process holding thousands of sessions.

    A full collection walks every live object: with 5,000 sessions that stops
    them all for about 0.1 s, and during a ramp Python runs one each time the
    old objects grew by a quarter. Ended sessions are freed by reference
    counting (their parts hold no cycles), so only young collections run on
    their own; what exists at start is frozen, and a full collection runs every
    FULL_GC_S seconds for whatever cycles remain.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1 << 30)

    def full() -> None:
        gc.collect()
        loop.call_later(FULL_GC_S, full)

    loop.call_later(FULL_GC_S, full)


async def _worker(cfg, ask_ekm: bool, emit, socks: tuple, admission, secret: bytes, worker: int,
                  workers: int, claims, serial_link=None) -> None:
    """One server process: its sockets, until SIGTERM or SIGINT."""
    server = Server(cfg, ask_ekm, emit, admission, secret, worker, workers, claims)
    loop = asyncio.get_running_loop()
    young_gc_only(loop)
    udp, tcp = socks
    if udp is not None:
        UdpListener(server, udp).start(loop)
    if tcp is not None:
        await loop.create_server(lambda: TcpClient(server), sock=tcp)
    if serial_link is not None:
        serve_serial(server, serial_link, loop)
    if claims is not None:
        claims.listen(loop, server)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close_all("server shutting down")
    if serial_link is not None:
        emit(dict(serial_link.stats(), event="serial_stats", peer="serial:" + serial_link.url))
    await asyncio.sleep(0)  # the event writer's last pass


def _parse_workers(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise ValueError("--workers must be 1..256 or auto")
    return n


def run(args: argparse.Namespace) -> int:
    """Start the server; runs until SIGINT/SIGTERM."""
    if args.port is not None and not 0 <= args.port <= 65535:
        print("ovpnkx serve: --port must be 0..65535 (0: any free port)", file=sys.stderr)
        return 2
    try:
        workers = _parse_workers(args.workers)
    except ValueError as exc:
        print("ovpnkx serve: %s" % exc, file=sys.stderr)
        return 2
    kinds = None
    if args.events != "all":
        kinds = {k for k in args.events.split(",") if k and k != "none"}
        unknown = sorted(kinds - set(EVENT_KINDS))
        if unknown:
            print("ovpnkx serve: --events: unknown kind %s (kinds: %s)" % (", ".join(unknown), ", ".join(EVENT_KINDS)),
                  file=sys.stderr)
            return 2
    cfg = load_config(args.config, "ovpnkx serve", server=True)
    if cfg is None:
        return 2
    if args.serial and workers > 1:
        print("ovpnkx serve: --serial serves one device: it needs --workers 1", file=sys.stderr)
        return 2
    try:
        secret = read_cookie_secret(args.cookie_secret) if args.cookie_secret else HostEntropy().random_bytes(32)
    except (OSError, LocalProtocolError) as exc:
        print("ovpnkx serve: --cookie-secret: %s" % (exc.strerror if isinstance(exc, OSError) else exc),
              file=sys.stderr)
        return 2
    # --serial alone binds no network port
    network = not args.serial or args.proto is not None or args.port is not None
    proto = (args.proto or cfg.proto) if network else "none"
    port = cfg.port if args.port is None else args.port
    emit = EventWriter(args.json, kinds)
    link = None
    if args.serial:
        import serial  # type: ignore[import-untyped]

        from .serial_link import SerialLink
        try:
            link = SerialLink(args.serial, args.baud)
        except (serial.SerialException, ValueError) as exc:
            print("ovpnkx serve: cannot open %s: %s" % (args.serial, exc), file=sys.stderr)
            return 2
    try:
        socks = _listeners(cfg, proto, port, workers, workers > 1 or args.reuseport)
    except OSError as exc:
        print("ovpnkx serve: cannot listen on %s:%d: %s" % (cfg.local, port, exc.strerror), file=sys.stderr)
        if link is not None:
            link.close()
        return 1
    listening: dict = {"event": "listening", "local": cfg.local}
    udp, tcp = socks[0]
    if udp is not None:
        listening["udp"] = udp.getsockname()[1]
    if tcp is not None:
        listening["tcp"] = tcp.getsockname()[1]
    if link is not None:
        listening["serial"] = link.url
    admission = server_admission(cfg, workers)
    try:
        if workers == 1:
            listening["pid"] = os.getpid()
            print(json.dumps(listening), flush=True)
            asyncio.run(_worker(cfg, not args.no_ekm, emit, socks[0], admission, secret, 0, 1, None, link))
            emit.flush()
            return 0
        return _supervise(cfg, not args.no_ekm, emit, socks, admission, secret, listening)
    finally:
        if link is not None:
            link.close()
        admission.close()


def _supervise(cfg, ask_ekm: bool, emit: EventWriter, socks: list, admission, secret: bytes,
               listening: dict) -> int:
    """Fork one worker per socket pair; wait for them; SIGTERM/SIGINT stop them all.

    A worker that dies is not restarted: a new socket would make the kernel
    re-spread clients over the workers, and move sessions that are fine.
    Its clients reconnect to the others; its share of the limits is given back.
    """
    workers = len(socks)
    claims = Claims(workers)
    children: dict = {}
    for i, pair in enumerate(socks):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for j, other in enumerate(socks):
                    if j != i:
                        for s in other:
                            if s is not None:
                                s.close()
                admission.worker = claims.worker = i
                asyncio.run(_worker(cfg, ask_ekm, emit, pair, admission, secret, i, workers, claims))
                emit.flush()
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children[pid] = i
    for pair in socks:  # the workers own them: a socket left here would get its share of clients
        for s in pair:
            if s is not None:
                s.close()
    listening["pid"] = os.getpid()
    listening["workers"] = workers
    listening["worker_pids"] = sorted(children, key=lambda p: children[p])
    print(json.dumps(listening), flush=True)
    stopping = {"now": False}

    def stop(signum, frame) -> None:
        stopping["now"] = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        worker = children.pop(pid, None)
        if worker is None:
            continue
        if not stopping["now"]:
            failed = True
            had = admission.reclaim(worker)
            code = os.waitstatus_to_exitcode(status)
            emit({"event": "worker_exit", "worker": worker, "status": code, "clients": had,
                  "reason": "worker %d exited (%s); its clients reconnect to the other workers"
                            % (worker, "signal %d" % -code if code < 0 else "status %d" % code)})
            emit.flush()
    return 1 if failed and not stopping["now"] else 0
