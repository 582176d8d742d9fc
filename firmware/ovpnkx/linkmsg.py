"""Messages of the serial link itself, beside the OpenVPN packets it carries.

A frame whose payload starts with 0x00 cannot be an OpenVPN packet (opcode 0 does
not exist), so such frames carry the link's own messages and never reach a session.
One kind so far, the time (a board's RTC starts at 2021-01-01 after a reset, and
mbedTLS refuses a certificate whose validity has not begun)::

    device -> host   00 'TIME?'                  the device asks for the date
    host -> device   00 'TIME' <8 bytes>         seconds since 1970-01-01 UTC, big-endian

The host side (``ovpnkx serve --serial``, ``ovpnkx relay``) answers every request with
its own clock. The device trusts that answer as it trusts the host with its packets:
a wrong date can only make certificate checks fail (or pass an expired certificate
that the CA signed), never forge one.
"""

from .errors import RemoteProtocolError

TIME_REQUEST = b"\x00TIME?"
_TIME_REPLY = b"\x00TIME"
_EARLIEST = 1735689600  # 2025-01-01: an earlier "now" is a reset clock, not a date


def is_link_message(payload: "bytes | bytearray") -> bool:
    """True for a link message (not an OpenVPN packet)."""
    return len(payload) > 0 and payload[0] == 0


def is_time_request(payload: "bytes | bytearray") -> bool:
    """True for the device's request for the date."""
    return bytes(payload) == TIME_REQUEST


def time_reply(unix_seconds: int) -> bytes:
    """The host's answer: ``unix_seconds`` (UTC)."""
    return _TIME_REPLY + int(unix_seconds).to_bytes(8, "big")


def parse_time_reply(payload: "bytes | bytearray") -> "int | None":
    """Seconds since 1970 from a time reply; None if ``payload`` is another message.

    RemoteProtocolError for a malformed reply or a date before 2025.
    """
    payload = bytes(payload)
    if not payload.startswith(_TIME_REPLY) or payload == TIME_REQUEST:
        return None
    if len(payload) != len(_TIME_REPLY) + 8:
        raise RemoteProtocolError("serial link: time reply of %d bytes, not %d" % (len(payload), len(_TIME_REPLY) + 8))
    secs = int.from_bytes(payload[len(_TIME_REPLY):], "big")
    if secs < _EARLIEST or secs >= 1 << 40:
        raise RemoteProtocolError("serial link: time reply %d is not a plausible date (before 2025)" % secs)
    return secs
