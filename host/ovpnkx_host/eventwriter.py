"""`ovpnkx serve`'s event output: one line per event, never stalling the sessions."""

import asyncio
import json
import os
import threading
import time


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
