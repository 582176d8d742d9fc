"""UDP and TCP transports for the session loop (sockets + select.poll).

TCP carries every packet behind OpenVPN's 16-bit length (streambuf.frame /
StreamDeframer); UDP carries one packet per datagram.
"""

import select
import socket

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.errors import RemoteProtocolError, message
from ovpnkx.streambuf import STREAM_MAX_PACKET, StreamDeframer, frame

from . import TransportError  # noqa: F401  (re-exported: the transports raise it)

if TYPE_CHECKING:
    from typing import Any


_ECONNREFUSED = 111  # Linux; the unix port and lwIP boards use the same numbers
# Most packets (UDP) or 4 KB reads (TCP) taken per receive(): a flood waits in the
# socket's buffer (where the stack drops what does not fit), not in our heap.
MAX_BATCH = 32
_ECONNRESET = 104
_EPIPE = 32


def _refused(where: str) -> str:
    return message("connection refused by %s (nothing listening)" % where)


def _address(host: str, port: int, kind: int) -> tuple:
    info = socket.getaddrinfo(host, port, 0, kind)
    if not info:
        raise TransportError("cannot resolve %s" % host)
    return info[0][-1]


class _Refused(Exception):
    """ECONNREFUSED from a UDP recv: an ICMP port unreachable came back."""


def _recv_nowait(sock: "Any", buf: "bytearray | None", what: str, known: dict) -> "bytes | None":
    """One non-blocking recv: None when nothing waits; errnos in ``known`` get their message.

    With ``buf`` (a TCP stream) it reads into the transport's own buffer and copies
    out what came: ``sock.recv(4096)`` allocates 4 KB per call, and on a board's
    small heap a 4 KB block may not be free in one piece. A datagram socket gets
    None (MicroPython's readinto would fill the buffer from several datagrams) and
    one recv of at most STREAM_MAX_PACKET bytes, the largest packet taken anyway.
    On UDP (``known`` without ECONNREFUSED) ECONNREFUSED raises ``_Refused``.
    """
    try:
        if buf is None:
            return sock.recv(STREAM_MAX_PACKET)
        into = getattr(sock, "recv_into", None) or sock.readinto  # readinto: MicroPython (None: nothing waits)
        n = into(buf)
        return None if n is None else bytes(memoryview(buf)[:n])
    except OSError as exc:
        code = exc.args[0] if exc.args else None
        if code in (11, 35):  # EAGAIN / EWOULDBLOCK
            return None
        if code in known:
            raise TransportError(known[code])
        if code == _ECONNREFUSED and what == "UDP":
            raise _Refused()
        raise TransportError("%s receive failed: %s" % (what, exc))


class UdpTransport:
    """One UDP socket talking to one remote.

    An ICMP "port unreachable" (ECONNREFUSED on the connected socket) is not an
    end: the server may not be up yet, or the path may be down for a moment, and
    openvpn goes on retrying too. It is counted in ``refused``, and the first of a
    run is put in ``warnings`` for the session loop to report; the session's own
    timers (hand-window, ping-restart) decide when to give up.
    """

    name = "udp"

    def __init__(self, host: str, port: int) -> None:
        self.addr = _address(host, port, socket.SOCK_DGRAM)
        self.where = "%s:%d" % (host, port)  # MicroPython's addr is an opaque sockaddr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.sock.setblocking(False)
        self.refused = 0
        self.warnings = []  # type: list
        self._refusing = False

    def _note_refused(self) -> None:
        self.refused += 1
        if not self._refusing:  # one warning per run of refusals, not per packet
            self._refusing = True
            self.warnings.append(message("connection refused by %s: ICMP port unreachable (nothing listening yet, "
                                         "or the path is down); retrying" % self.where))

    def send(self, packet: bytes) -> None:
        """Send one packet (a pending ICMP error is noted and the send tried again)."""
        for _ in range(2):
            try:
                self.sock.send(packet)
                return
            except OSError as exc:
                if not (exc.args and exc.args[0] == _ECONNREFUSED):
                    raise TransportError("UDP send failed: %s" % exc)
                self._note_refused()  # reported by this call instead of a recv: the packet is not out yet

    def receive(self) -> list:
        """Packets available now, at most ``MAX_BATCH`` of them (never blocks)."""
        out = []  # type: list
        while len(out) < MAX_BATCH:
            try:
                data = _recv_nowait(self.sock, None, "UDP", {})
            except _Refused:
                self._note_refused()
                continue
            if data is None:
                break
            self._refusing = False
            out.append(data)
        return out

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class TcpTransport:
    """A TCP connection with OpenVPN's 16-bit length framing."""

    name = "tcp"

    def __init__(self, host: str, port: int) -> None:
        self.addr = _address(host, port, socket.SOCK_STREAM)
        self.where = "%s:%d" % (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._buf = bytearray(4096)
        try:
            self.sock.connect(self.addr)
        except OSError as exc:
            self.sock.close()
            if exc.args and exc.args[0] == _ECONNREFUSED:
                raise TransportError(_refused(self.where))
            raise TransportError("cannot connect to %s: %s" % (self.where, exc))
        self.sock.setblocking(False)
        self.deframer = StreamDeframer()

    def send(self, packet: bytes) -> None:
        """Send one packet, framed; blocks until all bytes are written."""
        data = frame(packet)
        view = memoryview(data)
        sent = 0
        poller = select.poll()
        poller.register(self.sock, select.POLLOUT)
        while sent < len(data):
            try:
                n = self.sock.send(view[sent:])
            except OSError as exc:
                if exc.args and exc.args[0] in (11, 35):
                    poller.poll(100)
                    continue
                if exc.args and exc.args[0] in (_ECONNRESET, _EPIPE):
                    raise TransportError("the server reset the TCP connection")
                raise TransportError("TCP send failed: %s" % exc)
            sent += n or 0

    def receive(self) -> list:
        """Complete packets available now (never blocks); at most ``MAX_BATCH`` reads."""
        out = []  # type: list
        for _ in range(MAX_BATCH):
            if len(out) >= MAX_BATCH:
                return out
            data = _recv_nowait(self.sock, self._buf, "TCP", {_ECONNRESET: "the server reset the TCP connection"})
            if data is None:
                return out
            if not data:
                if out:
                    return out
                raise TransportError("the server closed the TCP connection")
            try:
                out.extend(self.deframer.feed(data))
            except RemoteProtocolError as exc:
                raise TransportError("bad TCP framing from the server: %s" % exc)
        return out

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def input_waiter(sock: "Any") -> "Any":
    """``f(timeout_ms)`` that blocks until ``sock`` is readable or the timeout passes. The
    poll object is made once for the connection (the session loop waits at every turn) and
    waited on with ``ipoll`` where the port has it (MicroPython: ``poll()`` makes a list at
    each call, ``ipoll()`` nothing)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    wait = getattr(poller, "ipoll", poller.poll)
    return lambda timeout_ms: wait(timeout_ms if timeout_ms > 0 else 0)
