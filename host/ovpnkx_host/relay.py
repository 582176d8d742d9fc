"""`ovpnkx relay --serial PORT --remote HOST PORT [--proto udp|tcp]`.

Carries a device's OpenVPN packets between its serial line (one packet per
serialframe frame) and a real OpenVPN server, so a board without Wi-Fi reaches
any server: the relay is a dumb pipe, the session (TLS, keys, data channel) is
the device's alone. Each new device session (a P_CONTROL_HARD_RESET_CLIENT_V2,
or V3 with tls-crypt-v2, with a new session id) gets a fresh UDP socket or TCP connection, so the server
sees a fresh client as it would after the device rebooted. Over TCP packets go
behind OpenVPN's 16-bit length. The first line printed is one JSON object
(``{"event": "relaying", ...}``); then one line per event, and counters at the end.
Over a board's REPL port the device's ``OVPNKX`` console lines come through as
``{"event": "device", "record": {...}}``, as with ``ovpnkx serve --serial``.
"""

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from ovpnkx.errors import RemoteProtocolError
from ovpnkx.packet import P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3, opcode_key_id
from ovpnkx.streambuf import StreamDeframer, frame


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx relay`."""
    p.add_argument("--serial", required=True, metavar="PORT", help="the device's serial line (pyserial URL)")
    p.add_argument("--remote", required=True, nargs=2, metavar=("HOST", "PORT"), help="the OpenVPN server")
    p.add_argument("--proto", choices=("udp", "tcp"), default="udp", help="the server's protocol (default udp)")
    p.add_argument("--baud", type=int, default=115200, help="serial line rate (default 115200)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")


class _UdpSide(asyncio.DatagramProtocol):
    def __init__(self, relay: "Relay") -> None:
        self.relay = relay
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.relay.to_device(data, self)

    def error_received(self, exc: Exception) -> None:
        self.relay.emit({"event": "remote_error", "reason": str(exc)})


class Relay:
    """Serial frames <-> one UDP socket or TCP connection per device session."""

    def __init__(self, link, host: str, port: int, proto: str, emit) -> None:
        self.link = link
        self.host, self.port, self.proto = host, port, proto
        self.emit = emit
        self.session_id: bytes | None = None
        self.side: Any = None  # current _UdpSide, "connecting", or (reader task, writer) for TCP
        self.pending: list = []  # device packets waiting for the connection
        self.counts = {"to_server": 0, "to_device": 0, "dropped": 0, "sessions": 0}

    def from_device(self, data: bytes) -> None:
        """A packet from the serial line (runs in the event loop)."""
        try:
            opcode, key_id = opcode_key_id(data)
        except RemoteProtocolError:
            self.counts["dropped"] += 1
            return
        if opcode in (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3) and key_id == 0 \
                and data[1:9] != self.session_id:
            self.session_id = data[1:9]
            self._reconnect()
        if self.side is None:
            self.counts["dropped"] += 1  # no connection: wait for the device's (next) reset
            return
        if self.side == "connecting":
            self.pending.append(data)
            return
        self._send(data)

    def _send(self, data: bytes) -> None:
        self.counts["to_server"] += 1
        if self.proto == "udp":
            self.side.transport.sendto(data)
        else:
            self.side[1].write(frame(data))

    def to_device(self, data: bytes, side) -> None:
        """A packet from the server, if it came on the current connection."""
        if side is not self.side and not (isinstance(self.side, tuple) and side is self.side[1]):
            return
        self.counts["to_device"] += 1
        self.link.send(data)

    def _reconnect(self) -> None:
        self.close_side()
        self.counts["sessions"] += 1
        self.side = "connecting"
        self.pending = []
        self.emit({"event": "session", "session_id": (self.session_id or b"").hex(), "remote": "%s:%d" % (self.host, self.port),
                   "proto": self.proto})
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.proto == "udp":
                _, side = await loop.create_datagram_endpoint(lambda: _UdpSide(self),
                                                              remote_addr=(self.host, self.port))
                self.side = side
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.side = (loop.create_task(self._read_tcp(reader, writer)), writer)
        except OSError as exc:
            self.side = None
            self.session_id = None  # the device's next reset tries again
            self.emit({"event": "remote_error", "reason": "cannot reach %s:%d: %s" % (self.host, self.port, exc)})
            return
        for data in self.pending:
            self._send(data)
        self.pending = []

    async def _read_tcp(self, reader, writer) -> None:
        deframer = StreamDeframer()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self.emit({"event": "remote_closed", "reason": "the server closed the TCP connection"})
                    break
                for p in deframer.feed(data):
                    self.to_device(p, writer)
        except (ConnectionError, RemoteProtocolError) as exc:
            self.emit({"event": "remote_closed", "reason": str(exc)})
        if isinstance(self.side, tuple) and self.side[1] is writer:
            self.side = None
            self.session_id = None

    def close_side(self) -> None:
        """Close the current socket or connection."""
        side = self.side
        self.side = None
        if side is None or side == "connecting":
            return
        if self.proto == "udp":
            side.transport.close()
        else:
            side[0].cancel()
            side[1].close()


async def relay(link, host: str, port: int, proto: str, emit) -> dict:
    """Run until SIGINT/SIGTERM; returns the counters."""
    loop = asyncio.get_running_loop()
    r = Relay(link, host, port, proto, emit)
    stop = asyncio.Event()

    def on_error(exc: Exception) -> None:
        emit({"event": "serial_error", "reason": str(exc)})
        stop.set()

    def on_line(record: dict) -> None:
        # the device's console, when the line is its REPL port ("uart": "repl")
        emit({"event": "device", "record": record})

    link.start(lambda d: loop.call_soon_threadsafe(r.from_device, d),
               on_line=lambda t: loop.call_soon_threadsafe(on_line, t),
               on_error=lambda e: loop.call_soon_threadsafe(on_error, e))
    print(json.dumps({"event": "relaying", "serial": link.url, "remote": "%s:%d" % (host, port),
                      "proto": proto}), flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await link.settle()  # what the device already sent still goes through
    r.close_side()
    return dict(r.counts, **link.stats())


def run(args: argparse.Namespace) -> int:
    """Relay until stopped."""
    import serial  # type: ignore[import-untyped]

    from .serial_link import SerialLink

    try:
        port = int(args.remote[1])
    except ValueError:
        print("ovpnkx relay: --remote PORT must be a number, not %r" % args.remote[1], file=sys.stderr)
        return 2
    try:
        link = SerialLink(args.serial, args.baud)
    except (serial.SerialException, ValueError) as exc:
        print("ovpnkx relay: cannot open %s: %s" % (args.serial, exc), file=sys.stderr)
        return 2
    emit = (lambda r: print(json.dumps(r), flush=True)) if args.json else _print_text
    try:
        counts = asyncio.run(relay(link, args.remote[0], port, args.proto, emit))
    finally:
        link.close()
    emit(dict(counts, event="stats"))
    return 0


def _print_text(record: dict) -> None:
    rest = ", ".join("%s=%s" % (k, v) for k, v in record.items() if k != "event")
    print("%-13s %s" % (record.get("event"), rest), flush=True)
