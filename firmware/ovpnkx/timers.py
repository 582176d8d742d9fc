"""The session's own deadlines (each key_state's retransmissions are its own).

Four timers, as OpenVPN keeps them in its event loop: the keepalive ping, the
ping-restart deadline (nothing heard from the peer), the PUSH_REQUEST retry
(kept by ``Negotiation``), and the hand-window of a session that has not opened
any key_state yet (a silent TCP peer). ``Timers`` holds the times; the session
decides what each one does when it fires.
"""


class Timers:
    """Deadlines in ms; None where a timer is off."""

    def __init__(self, now_ms: int, hand_window_ms: int) -> None:
        self.open_deadline_ms = now_ms + hand_window_ms  # until the first key_state exists
        self.last_rx_ms = now_ms
        self.ping_ms = 0
        self.ping_restart_ms = 0
        self.next_ping_ms = None  # type: int | None

    def heard(self, now_ms: int) -> None:
        """Something authentic arrived from the peer."""
        self.last_rx_ms = now_ms

    def keepalive(self, ping_ms: int, ping_restart_ms: int, now_ms: int) -> None:
        """Data keys exist: start pinging every ``ping_ms`` and expect the peer within ``ping_restart_ms``."""
        self.ping_ms = ping_ms
        self.ping_restart_ms = ping_restart_ms
        if ping_ms and self.next_ping_ms is None:
            self.next_ping_ms = now_ms + ping_ms
        self.last_rx_ms = now_ms

    def ping_restart_at(self) -> "int | None":
        """When the peer counts as gone, or None."""
        return self.last_rx_ms + self.ping_restart_ms if self.ping_restart_ms else None

    def ping_due(self, now_ms: int) -> bool:
        """True when a keepalive ping is due now (and schedules the next one)."""
        if self.next_ping_ms is None or now_ms < self.next_ping_ms:
            return False
        self.next_ping_ms = now_ms + self.ping_ms
        return True

    def stop(self) -> None:
        """The session ended: nothing more fires."""
        self.next_ping_ms = None
        self.ping_restart_ms = 0
