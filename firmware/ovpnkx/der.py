"""The DER and TLS framing that a client's reading of the server's certificates needs: the
config's checks of the server's own certificate (``servercheck``, ``certinfo``) and the
certificates' reader (``x509cert``). Apart from them so that a board holds one of them at
a time; the chain's signatures (``x509verify``) read their one DER structure themselves,
so that this code has left a board's heap when they are checked.

Every parser raises RemoteProtocolError for bad input.
"""

from .errors import RemoteProtocolError


def tlv(buf: bytes, pos: int, end: int) -> tuple:
    """(tag, value start, value end) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise RemoteProtocolError("DER: truncated element")
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 3 or pos + k > end:
            raise RemoteProtocolError("DER: bad length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise RemoteProtocolError("DER: element runs past its container")
    return tag, pos, pos + n


def children(buf: bytes, start: int, end: int) -> list:
    out = []
    while start < end:
        tag, vs, ve = tlv(buf, start, end)
        out.append((tag, vs, ve))
        start = ve
    return out


def expect(item: tuple, tag: int, what: str) -> tuple:
    if item[0] != tag:
        raise RemoteProtocolError("DER: %s has tag 0x%02x" % (what, item[0]))
    return item


def chain_from_message(msg: bytes) -> list:
    """The DER certificates of a TLS 1.2 Certificate handshake message, leaf first."""
    if len(msg) < 7:
        raise RemoteProtocolError("TLS Certificate message too short")
    total = int.from_bytes(msg[4:7], "big")
    if total + 7 != len(msg):
        raise RemoteProtocolError("malformed TLS Certificate message")
    out = []
    pos = 7
    while pos < len(msg):
        if pos + 3 > len(msg):
            raise RemoteProtocolError("malformed TLS Certificate message")
        n = int.from_bytes(msg[pos:pos + 3], "big")
        if n == 0 or pos + 3 + n > len(msg):
            raise RemoteProtocolError("malformed TLS Certificate message")
        out.append(msg[pos + 3:pos + 3 + n])
        pos += 3 + n
    return out


def handshake_messages(data: "bytes | bytearray") -> list:
    """Complete handshake messages at the front of ``data``: [(type, message bytes)]."""
    out = []
    pos = 0
    while pos + 4 <= len(data):
        n = 4 + int.from_bytes(data[pos + 1:pos + 4], "big")
        if pos + n > len(data):
            break
        out.append((data[pos], bytes(memoryview(data)[pos:pos + n])))
        pos += n
    return out


def utc_seconds(y: int, m: int, d: int, hh: int = 0, mi: int = 0, ss: int = 0) -> int:
    """Unix seconds of a UTC date (proleptic Gregorian; H. Hinnant's days_from_civil)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + hh * 3600 + mi * 60 + ss

