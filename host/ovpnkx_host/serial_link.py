"""The host end of a device's serial line: packets over ``ovpnkx.seriallink``.

``SerialLink(url, baud)`` opens any pyserial URL (``/dev/ttyACM0``, a sim's PTY,
``socket://``, ``loop://``) with ``serial_for_url``. ``send(packet)`` queues a
packet on the link (small checked fragments, sent again when damaged); a reader
thread (``start(on_packet)``) feeds the link, hands every packet it completes to
``on_packet`` and keeps the link's timers (repeats, acknowledgements). Link messages
(``ovpnkx.linkmsg``: packets starting with 0x00) are the link's own: a device's time
request is answered with this host's clock, and none of them reaches ``on_packet``.
Bytes outside frames (the device's console text, when the line is its REPL port)
are split into lines: the event of each ``OVPNKX {json}`` line goes to ``on_line``.
"""

import asyncio
import json
import os
import sys
import threading
import time

import serial  # type: ignore[import-untyped]

from ovpnkx.linkmsg import is_link_message, is_time_request, time_reply
from ovpnkx.serialframe import DELIMITER
from ovpnkx.seriallink import Link

_TICK_S = 0.01  # the reader's longest sleep: the granularity of the link's timers


def console_event(line: bytes) -> "dict | None":
    """The event of one console line ``OVPNKX {json}`` (white space around it allowed);
    None for other output and for a line a reset broke."""
    line = line.strip()
    if not line.startswith(b"OVPNKX "):
        return None
    try:
        event = json.loads(line[7:])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class SerialLink:
    """A packet link over a serial port (thread-safe ``send``)."""

    def __init__(self, url: str, baud: int = 115200) -> None:
        self.url = url
        self.port = serial.serial_for_url(url, baudrate=baud, timeout=_TICK_S)
        self.link = Link(os.urandom(1)[0], byte_us=10_000_000 // baud if baud else 0)
        self.bytes_in = 0
        self.bytes_out = 0
        self.ctrl_c_out = 0  # 0x03 bytes sent: a REPL that took them for Ctrl-C would stop
        self.time_replies = 0  # the device's time requests answered
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._text = bytearray()
        self._warned_old = False

    @property
    def decoder(self):
        """The frame decoder (its ``errors`` count damaged frames)."""
        return self.link.decoder

    @property
    def frames_in(self) -> int:
        """Intact frames received."""
        return self.link.decoder.frames

    def _flush(self) -> None:
        # with the lock held
        data = self.link.bytes_to_send(_now_ms())
        if data:
            self.port.write(data)
            self.bytes_out += len(data)
            self.ctrl_c_out += data.count(3)

    def send(self, packet: bytes) -> None:
        """Queue one packet on the link and write what is due."""
        with self._lock:
            self.link.send(packet, _now_ms())
            self._flush()

    def feed(self, data: bytes, on_line=None) -> list:
        """Take received bytes; returns the packets they complete."""
        self.bytes_in += len(data)
        if on_line is not None:
            self._console(data, on_line)
        with self._lock:
            payloads = self.link.receive(data, _now_ms())
            self._flush()
        packets = []
        for payload in payloads:
            if not is_link_message(payload):
                packets.append(payload)
            elif is_time_request(payload):  # the board has no date: give it ours
                self.send(time_reply(int(time.time())))
                self.time_replies += 1
        if self.link.errors["old_framing"] and not self._warned_old:
            self._warned_old = True
            print("ovpnkx: the device on %s sends each packet as one frame (the framing of an older "
                  "firmware): flash this version's firmware (make flash)" % self.url, file=sys.stderr, flush=True)
        return packets

    def tick(self) -> None:
        """Send what the link's timers have made due."""
        with self._lock:
            self._flush()

    def _console(self, data: bytes, on_line) -> None:
        # console text lies between frames: 0x00 and newlines both end a line, and a
        # frame's bytes never start with the prefix in practice (and must parse after)
        self._text += data.replace(DELIMITER, b"\n")
        while b"\n" in self._text:
            line, _, rest = bytes(self._text).partition(b"\n")
            self._text = bytearray(rest)
            event = console_event(line)
            if event is not None:
                on_line(event)
        if len(self._text) > 4096:
            self._text = bytearray()

    def start(self, on_packet, on_line=None, on_error=None) -> None:
        """Read in a daemon thread; ``on_packet(bytes)`` is called from that thread."""
        def loop() -> None:
            try:
                while not self._stop.is_set():
                    data = self.port.read(max(1, self.port.in_waiting))
                    if data:
                        for packet in self.feed(data, on_line):
                            on_packet(packet)
                    else:
                        self.tick()
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._stop.is_set() and on_error is not None:
                    on_error(exc)

        self._thread = threading.Thread(target=loop, name="serial-link", daemon=True)
        self._thread.start()

    async def settle(self, quiet_s: float = 0.1, most_s: float = 1.0) -> None:
        """Wait until no byte has come in for ``quiet_s`` (at most ``most_s``).

        A stopping relay or server calls it first, so that the packets a device
        already put on the line (at 115200 baud a packet takes ~10 ms) are still
        delivered rather than lost.
        """
        seen, waited = self.bytes_in, 0.0
        while waited < most_s:
            await asyncio.sleep(quiet_s)
            waited += quiet_s
            if self.bytes_in == seen:
                return
            seen = self.bytes_in

    def stats(self) -> dict:
        """Counters: bytes each way, packets, fragments, repeats, dropped frames by kind."""
        st = self.link.stats
        return {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "frames_in": self.frames_in,
                "frames_out": st["fragments_out"] + st["acks_out"], "packets_in": st["packets_in"],
                "packets_out": st["packets_out"], "repeats": st["repeats"], "timeouts": st["timeouts"],
                "give_ups": st["give_ups"], "dropped": st["dropped"], "ctrl_c_out": self.ctrl_c_out,
                "time_replies": self.time_replies,
                "fragment": self.link.fragment_size(), "frame_errors": dict(self.link.decoder.errors),
                "link_errors": dict(self.link.errors)}

    def close(self) -> None:
        """Stop the reader and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.port.close()
