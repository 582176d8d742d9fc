"""UDP and TCP transports for the session loop (sockets + select.poll).

TCP carries every packet behind OpenVPN's 16-bit length (packet.frame /
StreamDeframer); UDP carries one packet per datagram.
"""

import select
import socket

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.errors import RemoteProtocolError
from ovpnkx.packet import STREAM_MAX_PACKET, StreamDeframer, frame

from . import TransportError  # noqa: F401  (re-exported: the transports raise it)

if TYPE_CHECKING:
    from typing import Any


_ECONNREFUSED = 111  # Linux; the unix port and lwIP boards use the same numbers
_ECONNRESET = 104
_EPIPE = 32


def _refused(where: str) -> str:
    return "connection refused by %s (nothing listening)" % where


def _address(host: str, port: int, kind: int) -> tuple:
    info = socket.getaddrinfo(host, port, 0, kind)
    if not info:
        raise TransportError("cannot resolve %s" % host)
    return info[0][-1]


def _recv_nowait(sock: "Any", buf: "bytearray | None", what: str, known: dict) -> "bytes | None":
    """One non-blocking recv: None when nothing waits; errnos in ``known`` get their message.

    With ``buf`` (a TCP stream) it reads into the transport's own buffer and copies
    out what came: ``sock.recv(4096)`` allocates 4 KB per call, and on a board's
    small heap a 4 KB block may not be free in one piece. A datagram socket gets
    None (MicroPython's readinto would fill the buffer from several datagrams) and
    one recv of at most STREAM_MAX_PACKET bytes, the largest packet taken anyway."""
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
        raise TransportError("%s receive failed: %s" % (what, exc))


class UdpTransport:
    """One UDP socket talking to one remote."""

    name = "udp"

    def __init__(self, host: str, port: int) -> None:
        self.addr = _address(host, port, socket.SOCK_DGRAM)
        self.where = "%s:%d" % (host, port)  # MicroPython's addr is an opaque sockaddr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.sock.setblocking(False)

    def send(self, packet: bytes) -> None:
        """Send one packet."""
        try:
            self.sock.send(packet)
        except OSError as exc:
            if exc.args and exc.args[0] == _ECONNREFUSED:  # an earlier ICMP port unreachable
                raise TransportError(_refused(self.where))
            raise TransportError("UDP send failed: %s" % exc)

    def receive(self) -> list:
        """Packets available now (never blocks)."""
        out = []  # type: list
        while True:
            # ECONNREFUSED: an ICMP port unreachable came back
            data = _recv_nowait(self.sock, None, "UDP", {_ECONNREFUSED: _refused(self.where)})
            if data is None:
                return out
            out.append(data)

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
        """Complete packets available now (never blocks)."""
        out = []  # type: list
        while True:
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

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def wait_readable(transport: "Any", timeout_ms: int) -> None:
    """Block until the transport's socket is readable or the timeout passes."""
    poller = select.poll()
    poller.register(transport.sock, select.POLLIN)
    poller.poll(max(0, timeout_ms))
