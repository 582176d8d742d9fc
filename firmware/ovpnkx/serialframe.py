"""Self-synchronising framing for byte streams that lose, gain or corrupt bytes.

OpenVPN frames TCP with a 16-bit length prefix: one lost byte on a serial line and
every later length is read from the wrong place, for ever. Here each frame is::

    0x00  COBS(payload || CRC-32(payload), big-endian)  0x00

COBS removes every 0x00 from the frame, so 0x00 only ever delimits: after noise the
receiver is back in step at the next 0x00. The CRC-32 (``binascii.crc32``, as zlib and
Ethernet) rejects frames damaged in between. A delimiter on both sides costs one byte
per frame and means a lost or damaged delimiter never merges two frames: a single bad
byte costs at most the one frame it falls in. Empty frames (0x00 0x00) are ignored.

``FrameDecoder.feed`` never raises for bad bytes: framing exists to recover from
noise, so a bad frame is dropped and counted in ``errors`` (by kind) and the caller
decides, from the counters, when a line is too noisy to use. See docs/serial-framing.md.
"""

import binascii

from ._compat import TYPE_CHECKING, const
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from circuitpython_typing import ReadableBuffer

_CRC_LEN = const(4)
_BLOCK = const(254)  # COBS: longest run of non-zero bytes one code byte describes
DELIMITER = b"\x00"
MAX_PAYLOAD = 2048  # default receive limit: an OpenVPN packet for a 1500-byte MTU fits


def _crc(data: "bytes | bytearray") -> bytes:
    return (binascii.crc32(data) & 0xFFFFFFFF).to_bytes(_CRC_LEN, "big")


def encoded_size(payload_len: int) -> int:
    """Most bytes on the wire for a payload of ``payload_len`` bytes, delimiters
    included (COBS adds at most 1 + n // 254 bytes to n bytes)."""
    n = payload_len + _CRC_LEN
    return n + 1 + n // _BLOCK + 2


def cobs_encode(data: "bytes | bytearray") -> bytearray:
    """COBS-encode ``data``: the result holds no 0x00 and is at most 1 + n // 254
    bytes longer."""
    out = bytearray()
    n = len(data)
    i = 0
    while True:
        lim = i + _BLOCK
        if lim > n:
            lim = n
        z = data.find(DELIMITER, i, lim)
        if z >= 0:  # block ends at a zero, which the code byte stands for
            out.append(z - i + 1)
            out += data[i:z]
            i = z + 1
            continue
        out.append(lim - i + 1)
        out += data[i:lim]
        if lim == n:
            return out
        i = lim  # a full 254-byte block: no zero implied after it


def cobs_decode(enc: "bytes | bytearray") -> "bytearray | None":
    """Decode one COBS block sequence (no delimiters); None if it is malformed."""
    out = bytearray()
    mv = memoryview(enc)
    n = len(enc)
    i = 0
    while i < n:
        code = enc[i]
        end = i + code
        if code == 0 or end > n:  # a code byte pointing past the frame
            return None
        out.extend(mv[i + 1:end])
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return out


def encode_frame(payload: "bytes | bytearray | memoryview") -> bytes:
    """One frame on the wire: delimiter, COBS(payload || CRC-32 big-endian), delimiter."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise LocalProtocolError("payload must be bytes")
    payload = bytes(payload)
    body = cobs_encode(payload + _crc(payload))
    return DELIMITER + bytes(body) + DELIMITER


class FrameDecoder:
    """Turns a noisy byte stream back into the payloads of intact frames.

    ``feed(data)`` returns the payloads of every frame completed by ``data``, in order.
    Bytes before the first delimiter (joining mid-stream) are one bad frame at most.
    ``errors`` counts dropped frames by kind: ``"crc"`` (checksum wrong, or too short
    to hold one), ``"cobs"`` (malformed encoding), ``"oversize"`` (longer than
    ``max_payload``; its bytes are skipped, not buffered, up to the next delimiter).
    ``frames`` counts payloads delivered.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if max_payload < 0:
            raise LocalProtocolError("max_payload must not be negative")
        self.max_payload = max_payload
        self._max_encoded = encoded_size(max_payload) - 2
        self._buf = bytearray()
        self._skipping = False
        self.frames = 0
        self.errors = {"crc": 0, "cobs": 0, "oversize": 0}

    def reset(self) -> None:
        """Forget a partly received frame (e.g. after reopening the line)."""
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: "ReadableBuffer") -> list:
        """Take received bytes; return the list of good payloads (bytes) they complete."""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        out: list = []
        mv = memoryview(data)
        start = 0
        n = len(data)
        while start < n:
            z = data.find(DELIMITER, start)
            end = n if z < 0 else z
            if not self._skipping and end > start:
                if len(self._buf) + end - start > self._max_encoded:
                    self.errors["oversize"] += 1
                    self._skipping = True
                    self._buf = bytearray()
                else:
                    self._buf.extend(mv[start:end])
            if z < 0:
                break
            self._end_frame(out)
            start = z + 1
        return out

    def _end_frame(self, out: list) -> None:
        if self._skipping:  # already counted when it grew too long
            self._skipping = False
            return
        enc = self._buf
        if not enc:
            return  # back-to-back delimiters
        self._buf = bytearray()
        frame = cobs_decode(enc)
        if frame is None:
            self.errors["cobs"] += 1
            return
        size = len(frame) - _CRC_LEN
        if size < 0:
            self.errors["crc"] += 1
            return
        if size > self.max_payload:
            self.errors["oversize"] += 1
            return
        payload = bytes(memoryview(frame)[:size])
        if _crc(payload) != frame[size:]:
            self.errors["crc"] += 1
            return
        self.frames += 1
        out.append(payload)
