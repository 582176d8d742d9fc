"""The client's connection list: which remote to try next, and how long to pause.

OpenVPN 2.6 (init.c: init_connection_list, next_connection_entry,
socket_restart_pause, initialization_sequence_completed) moves through the
``remote`` lines of a config like this:

- ``remote-random`` shuffles the list once, at start (a pass of swaps with
  random positions).
- Every (re)start takes the next entry, wrapping around, and counts one
  unsuccessful attempt, except the first restart after a connection that
  completed: that one tries the same remote again (``no_advance``). A completed
  connection also resets the count.
- ``connect-retry-max n``: once the count passes n times the list's length, the
  client gives up ("All connections have been connect-retry-max (n) times
  unsuccessful, exiting"). 0 means for ever.
- Before a restart it pauses ``connect-retry`` seconds (1 by default); after 5
  unsuccessful rounds of the list the pause doubles with each further round
  (shifted left by rounds - 4, at most 15), never beyond the ``connect-retry``
  maximum (300 by default). A restart after a server poll timeout does not pause.

Sans-IO like the rest of the core: the caller sleeps, and gives the random bytes.
"""

from ._compat import TYPE_CHECKING
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Any


class ConnectionListExhausted(LocalProtocolError):
    """connect-retry-max: every remote was tried that many times without success."""


class ConnectionList:
    """The remotes (host, port, proto) of one client and openvpn's rules for them."""

    def __init__(self, remotes: list, remote_random: bool = False, random_bytes: "Any" = None,
                 connect_retry: tuple = (1, 300), connect_retry_max: int = 0) -> None:
        """``random_bytes(n)`` (needed for ``remote_random``) gives n random bytes."""
        if not remotes:
            raise LocalProtocolError("a connection list needs at least one remote")
        first, longest = connect_retry
        if first < 0 or longest < first or connect_retry_max < 0:
            raise LocalProtocolError("connect-retry needs 0 <= first <= max, connect-retry-max >= 0")
        self.entries = list(remotes)
        if remote_random and len(self.entries) > 1:
            if random_bytes is None:
                raise LocalProtocolError("remote-random needs a source of random bytes")
            self._shuffle(random_bytes)
        self.connect_retry = (first, longest)
        self.connect_retry_max = connect_retry_max
        self.current = -1
        self.unsuccessful_attempts = 0
        self.no_advance = False

    def _shuffle(self, random_bytes: "Any") -> None:
        n = len(self.entries)
        rnd = random_bytes(4 * n)
        for i in range(n):
            j = int.from_bytes(rnd[4 * i:4 * i + 4], "big") % n
            self.entries[i], self.entries[j] = self.entries[j], self.entries[i]

    def next(self) -> tuple:
        """The entry to (re)connect to now; ConnectionListExhausted past connect-retry-max."""
        if self.no_advance and self.current >= 0:
            self.no_advance = False
        else:
            self.unsuccessful_attempts += 1
            self.current = (self.current + 1) % len(self.entries)
        limit = self.connect_retry_max
        if limit and self.unsuccessful_attempts > len(self.entries) * limit:
            raise ConnectionListExhausted("All connections have been connect-retry-max (%d) times unsuccessful"
                                          % limit)
        return self.entries[self.current]

    def connected(self) -> None:
        """The current entry completed a connection (data keys): retry it first, count afresh."""
        self.unsuccessful_attempts = 0
        self.no_advance = True

    def restart_pause_s(self, no_pause: bool = False) -> int:
        """Seconds to wait before the next attempt (``no_pause``: a server poll timeout)."""
        if no_pause:
            return 0
        first, longest = self.connect_retry
        sec = first
        backoff = self.unsuccessful_attempts // len(self.entries) - 4
        if backoff > 0:
            sec = max(sec, 1) << min(backoff, 15)
        return min(sec, longest)
