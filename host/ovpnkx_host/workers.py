"""The processes of one `ovpnkx serve`: sockets on one port, workers, their supervisor.

Every worker binds the server's port with ``SO_REUSEPORT`` (the kernel keeps
a client's address on one worker) and runs one ``server.Server`` on asyncio.
The supervisor forks them, forwards SIGTERM and SIGINT, and reports a worker
that dies. ``Claims`` carries "one session per common name" between workers.
"""

import asyncio
import gc
import json
import os
import signal
import socket

from .eventwriter import EventWriter
from .server import Server, TcpClient, UdpListener, serve_serial


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


def listeners(cfg, proto: str, port: int, workers: int, reuseport: bool) -> list:
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


async def run_worker(cfg, ask_ekm: bool, emit, socks: tuple, admission, secret: bytes, worker: int,
                  workers: int, claims, serial_link=None, key_fingerprint: bool = False) -> None:
    """One server process: its sockets, until SIGTERM or SIGINT."""
    server = Server(cfg, ask_ekm, emit, admission, secret, worker, workers, claims, key_fingerprint)
    loop = asyncio.get_running_loop()
    young_gc_only(loop)
    udp, tcp = socks
    listener = None
    if udp is not None:
        listener = UdpListener(server, udp)
        listener.start(loop)
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
    if serial_link is not None:
        await serial_link.settle()  # packets already on the line reach their session first
    server.close_all("server shutting down")
    if listener is not None and (listener.queued or listener.dropped):
        emit(dict(listener.stats(), event="udp_stats", reason="datagrams that found the send buffer full"))
    if serial_link is not None:
        emit(dict(serial_link.stats(), event="serial_stats", peer="serial:" + serial_link.url))
    await asyncio.sleep(0)  # the event writer's last pass



def supervise(cfg, ask_ekm: bool, emit: EventWriter, socks: list, admission, secret: bytes,
              listening: dict, key_fingerprint: bool = False) -> int:
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
                asyncio.run(run_worker(cfg, ask_ekm, emit, pair, admission, secret, i, workers, claims,
                                       key_fingerprint=key_fingerprint))
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
