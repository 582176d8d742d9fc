"""Serial transport for the session loop: one OpenVPN packet per serialframe frame.

A UART (``machine.UART``) or the REPL port itself (USB-CDC on a Pico:
``sys.stdin``/``sys.stdout``) carries COBS+CRC32 frames (``ovpnkx.serialframe``)
to the host's ``ovpnkx serve --serial`` or ``ovpnkx relay --serial``. The line
may lose or corrupt bytes: a damaged frame is dropped and the reliable layer
retransmits. On the REPL port binary data would contain 0x03, which the REPL
takes for Ctrl-C, so Ctrl-C is disabled while the transport is open.
"""

import select
import sys

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.serialframe import FrameDecoder, encode_frame
from ovpnkx.errors import RemoteProtocolError
from ovpnkx.linkmsg import is_link_message, parse_time_reply

try:
    from .transport import TransportError
except ImportError:  # no socket module on this board: the same class, defined here
    class TransportError(Exception):  # type: ignore
        """The transport failed."""

if TYPE_CHECKING:
    from typing import Any

REPL = "repl"  # the "uart" setting that means the REPL port (USB-CDC / UART0)
_RX_CHUNK = 512


def _kbd_intr(char: int) -> None:
    try:
        import micropython

        micropython.kbd_intr(char)  # type: ignore
    except (ImportError, AttributeError):
        pass


class SerialTransport:
    """Packets over a byte stream, framed by ``serialframe``.

    ``port`` is a ``machine.UART`` or anything with ``read(n) -> bytes | None``
    (never blocking) and ``write(b)``; ``SerialTransport.open(uart, baud)``
    builds one from the device settings. ``name`` says what the line is.
    """

    def __init__(self, port: "Any", name: str = "serial", repl: bool = False) -> None:
        self.port = port
        self.name = name
        self.repl = repl
        self.decoder = FrameDecoder()
        self.bytes_in = 0
        self.bytes_out = 0
        self.host_time = None  # type: int | None  # Unix seconds the host sent (linkmsg)
        self._poll = _poller(getattr(port, "pollable", port))
        if repl:
            _kbd_intr(-1)  # binary data: 0x03 is not Ctrl-C

    @classmethod
    def open(cls, uart: "Any", baud: int = 115200, data_uart: "Any" = None) -> "SerialTransport":
        """The transport for a device setting: ``uart`` is an id, None (the board's
        data UART: ``data_uart`` = {"id", "tx", "rx"} or the sim's) or "repl"."""
        if uart == REPL:
            return cls(_ReplPort(), "serial:repl", repl=True)
        import machine  # type: ignore[import-not-found,unused-ignore]  # boards and the sim

        pins = {}  # type: dict
        if uart is None:
            if data_uart is None:
                try:
                    import simboard  # type: ignore

                    data_uart = {"id": simboard.data_uart_id()}
                except ImportError:
                    raise TransportError("no data UART known for this board: set \"uart\" in ovpnkx.json")
            uart = data_uart["id"]
            for k in ("tx", "rx"):
                if data_uart.get(k) is not None:
                    pins[k] = machine.Pin(data_uart[k])
        try:
            port = machine.UART(uart, baud, timeout=0, rxbuf=4096, **pins)  # type: ignore
        except TypeError:  # a port without rxbuf=
            port = machine.UART(uart, baud, timeout=0, **pins)  # type: ignore
        except ValueError as exc:
            raise TransportError("cannot open UART %r: %s" % (uart, exc))
        return cls(port, "serial:uart%d" % uart)

    def send(self, packet: bytes) -> None:
        """Send one packet as one frame (blocks until the port took it)."""
        data = encode_frame(packet)
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            n = self.port.write(view[sent:])
            if n is None:  # no room yet (a non-blocking stream)
                continue
            sent += n
        self.bytes_out += len(data)

    def receive(self) -> list:
        """Packets whose frames are complete now (never blocks)."""
        out = []  # type: list
        while True:
            data = self.port.read(_RX_CHUNK)
            if not data:
                return out
            self.bytes_in += len(data)
            for packet in self.decoder.feed(data):
                if is_link_message(packet):  # the link's own message, not for the session
                    try:
                        secs = parse_time_reply(packet)
                    except RemoteProtocolError:
                        secs = None
                    if secs is not None:
                        self.host_time = secs
                    continue
                out.append(packet)

    def wait(self, timeout_ms: int) -> None:
        """Block until bytes arrive or ``timeout_ms`` passes."""
        if self._poll is not None:
            self._poll.poll(max(0, timeout_ms))
            return
        import time

        time.sleep(min(max(0, timeout_ms), 5) / 1000)

    def close(self) -> None:
        """Give Ctrl-C back to the REPL; a UART stays as it is."""
        if self.repl:
            _kbd_intr(3)


def _poller(obj: "Any") -> "Any":
    """A poll object watching ``obj`` for input, or None (then wait() sleeps)."""
    for target in (obj, getattr(obj, "fileno", None)):
        if target is None:
            continue
        try:
            if callable(target):  # the unix port (the sim) polls plain fds
                target = target()
            poller = select.poll()
            poller.register(target, select.POLLIN)
            return poller
        except (TypeError, OSError, AttributeError, ValueError):
            pass
    return None


class _ReplPort:
    """The REPL's stream as a byte port: raw stdout, stdin read without blocking."""

    def __init__(self) -> None:
        self._in = sys.stdin.buffer  # type: ignore
        self._out = sys.stdout.buffer  # type: ignore
        self.pollable = sys.stdin
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)

    def read(self, n: int) -> "bytes | None":
        # stdin's read(n) blocks for n bytes: take one at a time while any are waiting
        out = bytearray()
        while len(out) < n and self._poll.poll(0):
            b = self._in.read(1)
            if not b:
                break
            out += b
        return bytes(out) if out else None

    def write(self, data: "Any") -> int:
        self._out.write(data)
        return len(data)
