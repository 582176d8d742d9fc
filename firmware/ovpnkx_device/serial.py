"""Serial transport for the session loop: packets over ``ovpnkx.seriallink``.

A UART (``machine.UART``) or the REPL port itself (USB-CDC on a Pico:
``sys.stdin``/``sys.stdout``) carries the link's small checked fragments
(COBS + CRC-32 frames, ``ovpnkx.serialframe``) to the host's ``ovpnkx serve
--serial`` or ``ovpnkx relay --serial``. The line may lose or corrupt bytes: a
damaged fragment is sent again by the link, so a packet gets through whole. On
the REPL port binary data would contain 0x03, which the REPL takes for Ctrl-C, so
Ctrl-C is disabled while the transport is open.
"""

import select

from ovpnkx._compat import TYPE_CHECKING, unload
from ovpnkx.seriallink import Link

from .clock import Clock

if TYPE_CHECKING:
    from typing import Any

_RX_CHUNK = 512
_RX_READS = 8  # most reads per receive(): 4 KB, the UART's buffer; the rest waits there


def _epoch() -> int:
    """A fresh link epoch: random, so that a reboot starts a new sequence space."""
    try:
        import os

        return os.urandom(1)[0]
    except (ImportError, AttributeError, OSError):
        import time

        return time.ticks_us() & 0xFF  # type: ignore


def _kbd_intr(char: int) -> None:
    try:
        import micropython

        micropython.kbd_intr(char)  # type: ignore
    except (ImportError, AttributeError):
        pass


class SerialTransport:
    """Packets over a byte stream, through a ``seriallink.Link``.

    ``port`` is a ``machine.UART`` or anything with ``read(n) -> bytes | None``
    (never blocking) and ``write(b)``; ``ovpnkx_device.serial_port.open_serial(uart,
    baud)`` builds one from the device settings. ``name`` says what the line is.
    The link's repeats and acknowledgements go out from ``send``, ``receive``
    and ``wait``; ``wait`` wakes up for the link's timer.
    """

    def __init__(self, port: "Any", name: str = "serial", repl: bool = False, baud: int = 115200,
                 epoch: "int | None" = None, clock: "Any" = None) -> None:
        self.port = port
        self.name = name
        self.repl = repl
        self.clock = clock if clock is not None else Clock()
        # a board's heap is small: at most 6 KB of packets wait (the session's largest
        # flight), the rest is dropped and resent by the session as on a lossy network
        self.link = Link(_epoch() if epoch is None else epoch, byte_us=10000000 // baud if baud else 0,
                         max_queue_bytes=6144)
        self.bytes_in = 0
        self.bytes_out = 0
        self.host_time = None  # type: int | None  # Unix seconds the host sent (linkmsg)
        self._wait_input = _input_waiter(getattr(port, "pollable", port))
        if repl:
            _kbd_intr(-1)  # binary data: 0x03 is not Ctrl-C

    @property
    def decoder(self) -> "Any":
        """The frame decoder (its ``errors`` count damaged frames)."""
        return self.link.decoder

    def _flush(self) -> None:
        """Write what the link has due now (blocks until the port took it)."""
        data = self.link.bytes_to_send(self.clock.now_ms())
        if not data:
            return
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            n = self.port.write(view[sent:])
            if n is None:  # no room yet (a non-blocking stream)
                continue
            sent += n
        self.bytes_out += len(data)

    def send(self, packet: bytes) -> None:
        """Queue one packet on the link (a full queue drops it: the session resends)."""
        self.link.send(packet, self.clock.now_ms())
        self._flush()

    def receive(self) -> list:
        """Packets completed now (never blocks; at most 4 KB read per call). The link's
        own messages (``linkmsg``: the host's date, into ``host_time``) are kept aside."""
        out = []  # type: list
        for _ in range(_RX_READS):
            data = self.port.read(_RX_CHUNK)
            if not data:
                break
            self.bytes_in += len(data)
            for packet in self.link.receive(data, self.clock.now_ms()):
                if packet and packet[0] == 0:  # linkmsg.is_link_message: the link's own, not the session's
                    self._link_message(packet)
                    continue
                out.append(packet)
        self._flush()
        return out

    def _link_message(self, packet: bytes) -> None:
        # one time reply per session: linkmsg's code is in the heap only while it is read
        from ovpnkx.errors import RemoteProtocolError
        from ovpnkx.linkmsg import parse_time_reply

        try:
            secs = parse_time_reply(packet)
        except RemoteProtocolError:
            secs = None
        finally:
            unload("linkmsg")
        if secs is not None:
            self.host_time = secs

    def wait(self, timeout_ms: int) -> None:
        """Block until bytes arrive, the link's timer is due or ``timeout_ms`` passes."""
        timer = self.link.get_timer()
        if timer is not None:
            timeout_ms = min(timeout_ms, timer - self.clock.now_ms())
        timeout_ms = max(0, timeout_ms)
        if self._wait_input is not None:
            self._wait_input(timeout_ms)
        else:
            import time

            time.sleep(min(timeout_ms, 5) / 1000)
        self._flush()

    def close(self, linger_ms: int = 1000) -> None:
        """Wait (at most ``linger_ms``) until the host has acknowledged what we sent,
        and take its last acknowledgements off the line, so that the session's last
        packets arrive and, on the REPL port, no frame reaches the REPL after us;
        then give Ctrl-C back to the REPL. A UART stays open."""
        end = self.clock.now_ms() + linger_ms
        quiet_at = -1
        while True:
            now = self.clock.now_ms()
            if now >= end:
                break
            if self.link.idle:
                if quiet_at < 0:
                    quiet_at = now + 50  # a repeat of ours may still draw one more acknowledgement
                elif now >= quiet_at:
                    break
            self.wait(min(20, end - now))
            self.receive()
        if self.repl:
            _kbd_intr(3)


def _input_waiter(obj: "Any") -> "Any":
    """``f(timeout_ms)`` that blocks until ``obj`` has input or the timeout passes, or None
    if ``obj`` cannot be polled (then wait() sleeps): a poll object's ``ipoll`` where the port
    has it (MicroPython: it allocates nothing, where ``poll()`` makes a list at each call),
    else its ``poll``."""
    for target in (obj, getattr(obj, "fileno", None)):
        if target is None:
            continue
        try:
            if callable(target):  # the unix port (the sim) polls plain fds
                target = target()
            poller = select.poll()
            poller.register(target, select.POLLIN)
            return getattr(poller, "ipoll", poller.poll)
        except (TypeError, OSError, AttributeError, ValueError):
            pass
    return None
