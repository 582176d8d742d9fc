"""Server limits that hold across the worker processes of one ``ovpnkx serve``.

- ``max-clients``: as openvpn (multi.c), every client instance counts, mid-
  handshake or established; at the limit no new one is created (the UDP
  client's cookie-proven packet is dropped, a TCP connection is closed).
- ``connect-freq-initial N S``: as openvpn 2.6 (reflect_filter.c, mudp.c), at
  most N stateless replies to valid client resets per S seconds, for the whole
  server (openvpn's limit is global, not per source address); a reset whose
  cookie is then proven gives its count back, so only unfinished handshakes use
  up the budget.
- the ``ifconfig`` pool: each entry belongs to at most one client.

The counters live in one shared memory map (a temporary file, made before the
workers fork) under an ``fcntl`` lock, which the kernel releases if a worker
dies holding it. A worker owns its slot of counters and its pool entries; when
one dies, ``reclaim`` gives them back.
"""

import fcntl
import mmap
import struct
import tempfile

_HEADER = 2  # int64s: [period start s, replies in this period]


class Admission:
    """The shared limits; ``worker`` picks this process's slot (0..workers-1)."""

    def __init__(self, max_clients: int, freq_initial: tuple, pool_size: int, workers: int = 1) -> None:
        self.max_clients = max_clients
        self.freq_max, self.freq_period = freq_initial
        self.pool_size = pool_size
        self.workers = workers
        self.worker = 0
        self._counts_at = _HEADER * 8
        self._pool_at = self._counts_at + workers * 8
        size = self._pool_at + pool_size
        self._file = tempfile.TemporaryFile(prefix="ovpnkx-serve-")
        self._file.truncate(max(size, 1))
        self._map = mmap.mmap(self._file.fileno(), max(size, 1), mmap.MAP_SHARED)
        self._next_entry = 0

    # -- the lock ---------------------------------------------------------------
    def __enter__(self) -> "Admission":
        fcntl.lockf(self._file.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.lockf(self._file.fileno(), fcntl.LOCK_UN)

    def _get(self, offset: int) -> int:
        return struct.unpack_from("<q", self._map, offset)[0]

    def _put(self, offset: int, value: int) -> None:
        struct.pack_into("<q", self._map, offset, value)

    # -- connect-freq-initial ---------------------------------------------------------
    def initial_allowed(self, now_s: int) -> bool:
        """Count one stateless reply; False when it would exceed N per S seconds."""
        with self:
            if now_s > self._get(0) + self.freq_period:
                self._put(0, now_s)
                self._put(8, 0)
            count = self._get(8) + 1
            self._put(8, count)
        return count <= self.freq_max

    def initial_proven(self) -> None:
        """A cookie was proven: its reply does not count against the limit."""
        with self:
            count = self._get(8)
            if count > 0:
                self._put(8, count - 1)

    # -- max-clients ---------------------------------------------------------------------
    def clients(self) -> int:
        """Client instances of all workers."""
        return sum(self._get(self._counts_at + 8 * w) for w in range(self.workers))

    def admit(self) -> bool:
        """Take a client slot; False at max-clients."""
        with self:
            if self.clients() >= self.max_clients:
                return False
            at = self._counts_at + 8 * self.worker
            self._put(at, self._get(at) + 1)
        return True

    def release(self) -> None:
        """Give a client slot back."""
        with self:
            at = self._counts_at + 8 * self.worker
            self._put(at, max(0, self._get(at) - 1))

    # -- the ifconfig pool -------------------------------------------------------------------
    def acquire_address(self) -> int:
        """A free pool entry for this worker, or -1 when the pool is exhausted.

        Entries are handed out in turn (the next free one after the last given),
        so a released address is not reused at once.
        """
        if not self.pool_size:
            return -1
        owner = self.worker + 1
        lo, hi = self._pool_at, self._pool_at + self.pool_size
        with self:
            start = lo + self._next_entry % self.pool_size
            at = self._map.find(b"\x00", start, hi)
            if at < 0:
                at = self._map.find(b"\x00", lo, start)
            if at < 0:
                return -1
            self._map[at] = owner
        self._next_entry = at - lo + 1
        return at - lo

    def release_address(self, index: int) -> None:
        """Give pool entry ``index`` back."""
        if 0 <= index < self.pool_size:
            with self:
                self._map[self._pool_at + index] = 0

    def reclaim(self, worker: int) -> int:
        """Free everything ``worker`` held (it died); returns the clients it had."""
        owner = worker + 1
        with self:
            at = self._counts_at + 8 * worker
            had = self._get(at)
            self._put(at, 0)
            region = self._map[self._pool_at:self._pool_at + self.pool_size]
            self._map[self._pool_at:self._pool_at + self.pool_size] = bytes(
                0 if b == owner else b for b in region)
        return had

    def close(self) -> None:
        """Unmap (the temporary file goes with its last descriptor)."""
        self._map.close()
        self._file.close()

