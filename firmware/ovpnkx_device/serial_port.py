"""The board's serial line for ``ovpnkx_device.serial.SerialTransport``, opened from the
device settings: a UART (``machine.UART``, the board's data pins by default) or the REPL
port itself. Loaded to open the line once per session and dropped again (the REPL
port's reader, when used, keeps this module's code)."""

import select
import sys

from ovpnkx._compat import TYPE_CHECKING

from . import TransportError
from .serial import SerialTransport

if TYPE_CHECKING:
    from typing import Any

REPL = "repl"  # the "uart" setting that means the REPL port (USB-CDC / UART0)


def open_serial(uart: "Any", baud: int = 115200, data_uart: "Any" = None) -> SerialTransport:
    """The transport for a device setting: ``uart`` is an id, None (the board's
    data UART: ``data_uart`` = {"id", "tx", "rx"} or the sim's) or "repl"."""
    if uart == REPL:
        return SerialTransport(_ReplPort(), "serial:repl", repl=True, baud=0)
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
    return SerialTransport(port, "serial:uart%d" % uart, baud=baud)


class _ReplPort:
    """The REPL's stream as a byte port: raw stdout, stdin read without blocking."""

    def __init__(self) -> None:
        self._in = sys.stdin.buffer  # type: ignore
        self._out = sys.stdout.buffer  # type: ignore
        self.pollable = sys.stdin
        poll = select.poll()
        poll.register(sys.stdin, select.POLLIN)
        self._ipoll = getattr(poll, "ipoll", None)  # MicroPython: no list per call, as poll() makes
        self._poll = poll

    def _waiting(self) -> bool:
        if self._ipoll is None:
            return bool(self._poll.poll(0))
        for _ in self._ipoll(0):
            return True
        return False

    def read(self, n: int) -> "bytes | None":
        # stdin's read(n) blocks for n bytes: take one at a time while any are waiting; the
        # session loop reads at every turn, so a read that finds nothing allocates nothing
        if not self._waiting():
            return None
        out = bytearray()
        while len(out) < n:
            b = self._in.read(1)
            if not b:
                break
            out += b
            if not self._waiting():
                break
        return bytes(out) if out else None

    def write(self, data: "Any") -> int:
        self._out.write(data)
        return len(data)
