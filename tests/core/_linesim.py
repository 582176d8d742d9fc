"""A serial line between two seriallink.Link ends, in virtual time (both runtimes).

Each direction paces bytes at ``byte_us`` and, from its own LCG (the same stream on
CPython and MicroPython), drops a byte, flips one bit of it, or sends it twice,
each with a probability in parts per million. ``run`` steps a virtual clock from
event to event (bytes arriving, the ends' timers), so a test of a minute of line
time takes a fraction of a second and is the same on every run.
"""


class Lcg:
    """Deterministic pseudo-random numbers: the same on both runtimes."""

    def __init__(self, seed):
        self.x = seed & 0x7FFFFFFF

    def next(self):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x

    def below(self, n):
        return (self.next() >> 8) % n


class Line:
    """One direction: chunks of bytes with the arrival time of their first byte (µs),
    faults applied on entry; the bytes of a chunk arrive ``byte_us`` apart."""

    def __init__(self, byte_us=87, drop_ppm=0, corrupt_ppm=0, dup_ppm=0, seed=1):
        self.byte_us = byte_us
        self.drop, self.corrupt, self.dup = drop_ppm, corrupt_ppm, dup_ppm
        self.rng = Lcg(seed)
        self.chunks = []  # [first arrival µs, bytes]
        self.free_us = 0
        self.stats = {"in": 0, "dropped": 0, "corrupted": 0, "duplicated": 0}

    def put(self, data, now_us):
        rng = self.rng
        out = bytearray()
        for b in data:
            if self.drop and rng.below(1000000) < self.drop:
                self.stats["dropped"] += 1
                continue
            if self.corrupt and rng.below(1000000) < self.corrupt:
                b ^= 1 << rng.below(8)
                self.stats["corrupted"] += 1
            out.append(b)
            if self.dup and rng.below(1000000) < self.dup:
                out.append(b)
                self.stats["duplicated"] += 1
        self.stats["in"] += len(data)
        if not out:
            return
        t = self.free_us if self.free_us > now_us else now_us
        self.chunks.append([t + self.byte_us, bytes(out)])
        self.free_us = t + len(out) * self.byte_us

    def take(self, now_us):
        out = b""
        while self.chunks:
            first, data = self.chunks[0]
            if first > now_us:
                break
            n = (now_us - first) // self.byte_us + 1
            if n >= len(data):
                out += data
                self.chunks.pop(0)
            else:
                out += data[:n]
                self.chunks[0] = [first + n * self.byte_us, data[n:]]
                break
        return out

    def next_due(self):
        return self.chunks[0][0] if self.chunks else None


class Pair:
    """Two link ends joined by two Lines; ``got_a``/``got_b``: packets each end received."""

    def __init__(self, a, b, ab, ba):
        self.a, self.b, self.ab, self.ba = a, b, ab, ba
        self.now_ms = 0
        self.got_a, self.got_b = [], []
        self.hook = None  # called as hook(pair) once per step (e.g. to inject text)

    def step(self):
        now_us = self.now_ms * 1000
        data = self.ab.take(now_us)
        if data:
            self.got_b += self.b.receive(data, self.now_ms)
        data = self.ba.take(now_us)
        if data:
            self.got_a += self.a.receive(data, self.now_ms)
        if self.hook is not None:
            self.hook(self)
        out = self.a.bytes_to_send(self.now_ms)
        if out:
            self.ab.put(out, now_us)
        out = self.b.bytes_to_send(self.now_ms)
        if out:
            self.ba.put(out, now_us)

    def run(self, until_ms, done=None):
        """Step until ``done(pair)`` holds or virtual ``until_ms``; returns the virtual time."""
        while self.now_ms < until_ms:
            self.step()
            if done is not None and done(self):
                return self.now_ms
            nxt = until_ms
            for t in (self.a.get_timer(), self.b.get_timer()):
                if t is not None and t < nxt:
                    nxt = t
            for line in (self.ab, self.ba):
                due = line.next_due()
                if due is not None and (due + 999) // 1000 < nxt:
                    nxt = (due + 999) // 1000
            self.now_ms = nxt if nxt > self.now_ms else self.now_ms + 1
        return self.now_ms


def payloads(n, seed, sizes=(0, 1, 14, 40, 100, 300, 1250, 1300, 2048)):
    """``n`` packets of the given sizes in turn, filled from an LCG (every byte value occurs)."""
    rng = Lcg(seed)
    out = []
    for i in range(n):
        size = sizes[i % len(sizes)]
        out.append(bytes(rng.below(256) for _ in range(size)))
    return out
