"""OpenVPN's framing of a byte stream (TCP): a u16 big-endian length before every packet.

OpenVPN's stream_buf (socket.c). Its own module so that only a TCP transport loads it:
a board on UDP or on its serial link (``seriallink``) keeps it off its heap.
"""

import struct

from .errors import LocalProtocolError, RemoteProtocolError

# u16 big-endian length before every packet.
FRAME_MAX = 65535
# Default largest packet a StreamDeframer accepts. OpenVPN sizes its TCP stream
# buffer from the frame (no fixed number); 2048 is its TLS_CHANNEL_BUF_SIZE, the
# largest control packet buffer, and above the largest data packet at tun-mtu
# 1500 (P_DATA_V2 + AES-CBC + SHA512 HMAC: 4 + 64 + 16 + 1520 = 1604).
STREAM_MAX_PACKET = 2048


def _is_bytes(b: object) -> bool:
    return isinstance(b, (bytes, bytearray, memoryview))


def frame(packet: bytes) -> bytes:
    """``packet`` behind its u16 big-endian length, as OpenVPN frames TCP."""
    n = len(packet)
    if n == 0:
        raise LocalProtocolError("cannot frame an empty packet")
    if n > FRAME_MAX:
        raise LocalProtocolError("packet of %d bytes does not fit a 16-bit length" % n)
    return struct.pack(">H", n) + bytes(packet)


class StreamDeframer:
    """Splits a byte stream of length-prefixed packets back into packets.

    Partial input is kept across ``feed`` calls. A length of 0 or above
    ``max_packet`` is what OpenVPN calls a "Bad encapsulated packet length": a
    byte stream cannot resynchronise after it, so the deframer breaks for good.

    On that error ``feed`` is all-or-nothing: it raises RemoteProtocolError,
    returns no packet from that call, keeps exactly the bytes it held before
    the call (``pending``), and records the reason in ``broken``. Every later
    ``feed`` raises RemoteProtocolError again and takes nothing in. The owner
    drops the connection, as OpenVPN restarts it.
    """

    def __init__(self, max_packet: int = STREAM_MAX_PACKET) -> None:
        if not isinstance(max_packet, int) or not 1 <= max_packet <= FRAME_MAX:
            raise LocalProtocolError("max_packet must be 1..%d" % FRAME_MAX)
        self.max_packet = max_packet
        self.broken = None  # type: str | None
        self._buf = b""

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a complete packet."""
        return self._buf

    def feed(self, data: bytes) -> list:
        """Take more stream bytes; return the packets they complete, in order."""
        if not _is_bytes(data):
            raise LocalProtocolError("feed takes bytes")
        if self.broken is not None:
            raise RemoteProtocolError("stream already failed: " + self.broken)
        buf = self._buf + bytes(data)
        out = []
        pos = 0
        total = len(buf)
        while total - pos >= 2:
            n = (buf[pos] << 8) | buf[pos + 1]
            if n == 0 or n > self.max_packet:
                self.broken = "bad encapsulated packet length %d (must be 1..%d)" % (n, self.max_packet)
                raise RemoteProtocolError(self.broken)
            if total - pos - 2 < n:
                break
            out.append(buf[pos + 2:pos + 2 + n])
            pos += 2 + n
        self._buf = buf[pos:]
        return out
