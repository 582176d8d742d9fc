"""A serial line model: baud-rate pacing, latency, drop, duplicate and corrupt.

One ``LinkModel`` per direction. Bytes are judged when they enter (drop, then
corrupt, then duplicate, each with its own probability from a seeded PRNG, so a
run is reproducible for a given seed and input chunking) and leave no earlier than
``latency_ms`` after entering, one byte-time apart (8N1: 10 bits per byte).
"""

import random
from collections import deque

PARAMS = ("baud", "drop", "dup", "corrupt", "latency_ms", "seed")


class LinkModel:
    """One direction of a noisy, rate-limited serial line."""

    def __init__(self, baud: int = 115200, drop: float = 0.0, dup: float = 0.0,
                 corrupt: float = 0.0, latency_ms: float = 0.0, seed=None):
        self.baud = 0
        self.drop = self.dup = self.corrupt = 0.0
        self.latency_ms = 0.0
        self.seed = None
        self._rng = random.Random()
        self._queue: deque = deque()  # (due_time, byte)
        self._line_free = 0.0  # when the last queued byte has been sent
        self.stats = {"in": 0, "out": 0, "dropped": 0, "duplicated": 0, "corrupted": 0}
        self.set(baud=baud, drop=drop, dup=dup, corrupt=corrupt, latency_ms=latency_ms, seed=seed)

    def set(self, **params) -> None:
        """Change parameters (any of PARAMS); a new seed restarts the PRNG."""
        for key, value in params.items():
            if key not in PARAMS:
                raise ValueError("unknown link parameter %r" % key)
            if value is None and key != "seed":
                continue
            if key in ("drop", "dup", "corrupt"):
                value = float(value)
                if not 0.0 <= value <= 1.0:
                    raise ValueError("%s must be a probability in [0, 1], not %r" % (key, value))
            elif key == "baud":
                value = int(value)
                if value < 0:
                    raise ValueError("baud must be >= 0 (0: unlimited)")
            elif key == "latency_ms":
                value = float(value)
                if value < 0:
                    raise ValueError("latency_ms must be >= 0")
            setattr(self, key, value)
            if key == "seed":
                self._rng.seed(value)

    def settings(self) -> dict:
        return {k: getattr(self, k) for k in PARAMS}

    @property
    def byte_time(self) -> float:
        """Seconds one byte occupies the line (10 bits, 8N1); 0 when unlimited."""
        return 10.0 / self.baud if self.baud else 0.0

    def feed(self, data: bytes, now: float) -> None:
        """Bytes entering the line at time ``now`` (seconds)."""
        rng = self._rng
        start = max(now + self.latency_ms / 1000.0, self._line_free)
        t = self.byte_time
        for b in data:
            self.stats["in"] += 1
            if self.drop and rng.random() < self.drop:
                self.stats["dropped"] += 1
                continue
            if self.corrupt and rng.random() < self.corrupt:
                b ^= 1 << rng.randrange(8)
                self.stats["corrupted"] += 1
            copies = 1
            if self.dup and rng.random() < self.dup:
                copies = 2
                self.stats["duplicated"] += 1
            for _ in range(copies):
                start += t
                self._queue.append((start, b))
        self._line_free = max(self._line_free, start)

    def take(self, now: float) -> bytes:
        """The bytes that have arrived at the far end by ``now``."""
        q = self._queue
        out = bytearray()
        while q and q[0][0] <= now:
            out.append(q.popleft()[1])
        self.stats["out"] += len(out)
        return bytes(out)

    def next_due(self):
        """When the next byte arrives (None if the line is empty)."""
        return self._queue[0][0] if self._queue else None

    def pending(self) -> int:
        return len(self._queue)
