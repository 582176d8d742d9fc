"""Telling the server the client leaves, as openvpn's explicit-exit-notify does (sig.c).

Loaded by the client loop only when a stop request arrives (a board's heap holds
the code it imports). See ``ovpnkx_device.runner`` for when which notice is sent.
"""

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.datachannel import occ_exit_message

if TYPE_CHECKING:
    from typing import Any


class ExitNotification:
    """Telling the server we leave, as openvpn's explicit-exit-notify does (sig.c)."""

    def __init__(self, session: "Any", proto: str, seconds: int, emit: "Any") -> None:
        self.session = session
        self.proto = proto
        self.seconds = seconds
        self.emit = emit
        self.started = False
        self.signal = ""
        self.until = None  # type: int | None
        self.next_occ = None  # type: int | None

    def reason(self) -> str:
        return "stopped by %s" % self.signal

    def start(self, now: int, signal: str) -> None:
        """The stop request arrived: notify (or not) and plan the end."""
        self.started = True
        self.signal = signal
        s = self.session
        if s.closed:
            return
        if not s.data_ready or self.proto == "tcp":  # nothing to tell / the closing TCP connection tells
            s.close(now, self.reason(), notify=False)
            return
        if not self.seconds:
            s.close(now, self.reason() + " (exit notification sent)", notify=True)  # one OCC EXIT
            self.emit({"event": "exit_notify", "at_ms": now, "method": "occ", "seconds": 0})
            return
        cc_exit = s.negotiation is not None and s.negotiation.cc_exit  # pushed protocol-flags cc-exit (or both sides' IV_PROTO in p2p)
        method = "control" if cc_exit else "occ"
        self.emit({"event": "exit_notify", "at_ms": now, "method": method, "seconds": self.seconds})
        if cc_exit:  # the EXIT control message, reliable over the primary key_state's TLS
            s.multi.channels[s.multi.primary].write_message("EXIT")
        else:
            s.send_data(occ_exit_message())
            self.next_occ = now + 1000
        self.until = now + self.seconds * 1000

    def tick(self, now: int) -> None:
        """During the notification period: OCC EXIT every second, then the end."""
        s = self.session
        if s.closed or self.until is None:
            return
        if now >= self.until:
            s.close(now, self.reason() + " (exit notification sent)", notify=False)
        elif self.next_occ is not None and now >= self.next_occ:
            s.send_data(occ_exit_message())
            self.next_occ += 1000

    def next_ms(self) -> "int | None":
        """When ``tick`` has work next, or None."""
        if self.until is None or self.session.closed:
            return None
        return min(self.until, self.next_occ) if self.next_occ is not None else self.until
