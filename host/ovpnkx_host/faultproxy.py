"""A seeded UDP proxy on 127.0.0.1 that drops, duplicates, reorders and corrupts.

``FaultProxy(upstream_port, seed=S, drop=0.1, ...)`` listens on a port of its own
(``port``) and forwards each datagram of one client to ``127.0.0.1:upstream_port``
and back. Every fault is judged per datagram and per direction from its own PRNG
(``random.Random(seed)`` for the client's direction, ``seed + 1`` for the server's),
so the same seed gives the same fault pattern to every client that sends the same
sequence of datagrams (the bench runs all its clients with the same seeds):

- ``drop``: the datagram is lost;
- ``dup``: it is sent twice;
- ``reorder``: it is held back and sent after the next datagram in that direction
  (or after ``hold_ms`` if none follows);
- ``corrupt``: one bit of one byte, both chosen by the PRNG, is flipped.

``outage(seconds)`` closes the client-facing socket for that long and then binds
the same port again: datagrams the client sends meanwhile get an ICMP "port
unreachable", as when a server or a NAT on the path goes away; the server's
datagrams are dropped. Tests use it to cut the path; nothing but 127.0.0.1 is used.
"""

import random
import selectors
import socket
import threading
import time

FAULTS = ("drop", "dup", "reorder", "corrupt")


class _Direction:
    """Fault decisions for one direction: one PRNG, counters, a held datagram."""

    def __init__(self, seed: "int | None", faults: dict) -> None:
        self.rng = random.Random(seed)
        self.faults = faults
        self.held: "bytes | None" = None
        self.held_at = 0.0
        self.stats = {"in": 0, "out": 0, "dropped": 0, "duplicated": 0, "reordered": 0, "corrupted": 0}

    def judge(self, data: bytes, now: float) -> list:
        """The datagrams to send now for one that arrived (0, 1, 2 or 3 of them)."""
        self.stats["in"] += 1
        f, rng = self.faults, self.rng
        # one draw per fault per datagram, always in the same order: the pattern
        # depends only on the seed and the datagram's position
        r_drop, r_dup, r_reorder, r_corrupt = rng.random(), rng.random(), rng.random(), rng.random()
        where = rng.randrange(1 << 30)
        out = []
        if r_drop < f["drop"]:
            self.stats["dropped"] += 1
        else:
            if r_corrupt < f["corrupt"] and data:
                buf = bytearray(data)
                buf[where % len(buf)] ^= 1 << (where >> 20) % 8
                data = bytes(buf)
                self.stats["corrupted"] += 1
            copies = [data, data] if r_dup < f["dup"] else [data]
            if len(copies) == 2:
                self.stats["duplicated"] += 1
            if r_reorder < f["reorder"] and self.held is None:
                self.held, self.held_at = copies.pop(0), now
                self.stats["reordered"] += 1
            out = copies
        if self.held is not None and out:
            out.append(self.held)  # the held datagram goes after this one
            self.held = None
        self.stats["out"] += len(out)
        return out

    def release(self, now: float, hold_s: float) -> list:
        """The held datagram, once it has waited ``hold_s``."""
        if self.held is not None and now - self.held_at >= hold_s:
            held, self.held = self.held, None
            self.stats["out"] += 1
            return [held]
        return []


class FaultProxy:
    """One client <-> 127.0.0.1:upstream_port, through seeded faults (a thread)."""

    def __init__(self, upstream_port: int, seed: "int | None" = 0, drop: float = 0.0, dup: float = 0.0,
                 reorder: float = 0.0, corrupt: float = 0.0, hold_ms: float = 50.0, port: int = 0) -> None:
        faults = {"drop": drop, "dup": dup, "reorder": reorder, "corrupt": corrupt}
        for name, p in faults.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError("%s must be a probability in [0, 1], not %r" % (name, p))
        self.upstream = ("127.0.0.1", upstream_port)
        self.hold_s = hold_ms / 1000.0
        self.up = _Direction(seed, faults)  # client -> server
        self.down = _Direction(None if seed is None else seed + 1, faults)  # server -> client
        self.client: "tuple | None" = None
        self.front = self._bind(port)
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.back.connect(self.upstream)
        self.back.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.front, selectors.EVENT_READ, "front")
        self._sel.register(self.back, selectors.EVENT_READ, "back")
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._stop = threading.Event()
        self.first_packet_at: "float | None" = None  # monotonic time of the client's first datagram
        self.outages = 0
        self._thread = threading.Thread(target=self._loop, name="fault-proxy", daemon=True)
        self._thread.start()

    @staticmethod
    def _bind(port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        s.setblocking(False)
        return s

    def outage(self, seconds: float) -> None:
        """Close the client-facing port for ``seconds`` (ICMP port unreachable), then reopen it."""
        with self._lock:
            self._sel.unregister(self.front)
            self.front.close()
            self._down_until = time.monotonic() + seconds
            self.outages += 1

    def stats(self) -> dict:
        """Counters per direction: in, out, dropped, duplicated, reordered, corrupted."""
        return {"to_server": dict(self.up.stats), "to_client": dict(self.down.stats), "outages": self.outages}

    def _send_front(self, packets: list) -> None:
        if self.client is None or self._down_until:
            return
        for p in packets:
            try:
                self.front.sendto(p, self.client)
            except OSError:
                pass  # the client went away: UDP does not care

    def _send_back(self, packets: list) -> None:
        for p in packets:
            try:
                self.back.send(p)
            except OSError:
                pass  # nothing listening upstream (yet): lost, as on a path

    def _loop(self) -> None:
        while not self._stop.is_set():
            events = self._sel.select(min(self.hold_s, 0.05) or 0.05)
            now = time.monotonic()
            with self._lock:
                if self._down_until and now >= self._down_until:
                    self.front = self._bind(self.port)
                    self._sel.register(self.front, selectors.EVENT_READ, "front")
                    self._down_until = 0.0
                for key, _ in events:
                    if key.data == "front" and not self._down_until:
                        self._from_client(now)
                    elif key.data == "back":
                        self._from_server(now)
                self._send_back(self.up.release(now, self.hold_s))
                self._send_front(self.down.release(now, self.hold_s))

    def _from_client(self, now: float) -> None:
        while True:
            try:
                data, addr = self.front.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if self.client is None:
                self.first_packet_at = now
            self.client = addr
            self._send_back(self.up.judge(data, now))

    def _from_server(self, now: float) -> None:
        while True:
            try:
                data = self.back.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ICMP from upstream (server not up yet): nothing to forward
            if self._down_until:
                self.down.stats["in"] += 1
                self.down.stats["dropped"] += 1
                continue
            self._send_front(self.down.judge(data, now))

    def close(self) -> None:
        """Stop the thread and close the sockets."""
        self._stop.set()
        self._thread.join(2)
        self._sel.close()
        for s in (self.front, self.back):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
