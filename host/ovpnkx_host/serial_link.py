"""The host end of a device's serial line: one OpenVPN packet per serialframe frame.

``SerialLink(url, baud)`` opens any pyserial URL (``/dev/ttyACM0``, a sim's PTY,
``socket://``, ``loop://``) with ``serial_for_url``. ``send(packet)`` writes one
frame; a reader thread (``start(on_packet)``) feeds a ``FrameDecoder`` and hands
every intact payload to ``on_packet``; damaged frames are dropped and counted.
Link messages (``ovpnkx.linkmsg``: frames starting with 0x00) are the link's own:
a device's time request is answered with this host's clock, and none of them
reaches ``on_packet``. Bytes outside frames (the device's console text, when the line is its REPL
port) are split into lines: those starting with ``OVPNKX `` go to ``on_line``.
"""

import threading

import serial  # type: ignore[import-untyped]

import time

from ovpnkx.linkmsg import is_link_message, is_time_request, time_reply
from ovpnkx.serialframe import DELIMITER, FrameDecoder, encode_frame

_CONSOLE_PREFIX = b"OVPNKX "


class SerialLink:
    """A framed packet link over a serial port (thread-safe ``send``)."""

    def __init__(self, url: str, baud: int = 115200) -> None:
        self.url = url
        self.port = serial.serial_for_url(url, baudrate=baud, timeout=0.1)
        self.decoder = FrameDecoder()
        self.bytes_in = 0
        self.bytes_out = 0
        self.frames_out = 0
        self.ctrl_c_out = 0  # 0x03 bytes sent: a REPL that took them for Ctrl-C would stop
        self.time_replies = 0  # the device's time requests answered
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._text = bytearray()

    @property
    def frames_in(self) -> int:
        """Intact frames received."""
        return self.decoder.frames

    def send(self, packet: bytes) -> None:
        """Write one packet as one frame."""
        data = encode_frame(packet)
        with self._lock:
            self.port.write(data)
            self.bytes_out += len(data)
            self.frames_out += 1
            self.ctrl_c_out += data.count(3)

    def feed(self, data: bytes, on_line=None) -> list:
        """Decode received bytes; returns the packets they complete."""
        self.bytes_in += len(data)
        if on_line is not None:
            self._console(data, on_line)
        packets = []
        for payload in self.decoder.feed(data):
            if not is_link_message(payload):
                packets.append(payload)
            elif is_time_request(payload):  # the board has no date: give it ours
                self.send(time_reply(int(time.time())))
                self.time_replies += 1
        return packets

    def _console(self, data: bytes, on_line) -> None:
        # console text lies between frames: 0x00 and newlines both end a line, and a
        # frame's bytes never start with the prefix in practice (and must parse after)
        self._text += data.replace(DELIMITER, b"\n")
        while b"\n" in self._text:
            line, _, rest = bytes(self._text).partition(b"\n")
            self._text = bytearray(rest)
            line = line.strip(b"\r")
            if line.startswith(_CONSOLE_PREFIX):
                on_line(line[len(_CONSOLE_PREFIX):].decode("utf-8", "replace"))
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
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._stop.is_set() and on_error is not None:
                    on_error(exc)

        self._thread = threading.Thread(target=loop, name="serial-link", daemon=True)
        self._thread.start()

    def stats(self) -> dict:
        """Counters: bytes and frames each way, dropped frames by kind."""
        return {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "frames_in": self.frames_in,
                "frames_out": self.frames_out, "ctrl_c_out": self.ctrl_c_out, "time_replies": self.time_replies,
                "frame_errors": dict(self.decoder.errors)}

    def close(self) -> None:
        """Stop the reader and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.port.close()
