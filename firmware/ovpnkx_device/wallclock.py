"""The date on the device: mbedTLS checks certificate validity against the RTC.

A board's RTC starts at 2021-01-01 (rp2) or earlier after a reset, and with a
certificate issued later mbedTLS refuses the handshake. ``ensure_date`` gets a date
before any session, from (in this order):

1. the RTC, when it already holds one (any year from 2025 on: an earlier reading is
   a reset value, not a date);
2. the host peer over the serial link (``linkmsg``: ``serve`` and ``relay`` answer);
3. NTP over Wi-Fi (``"ntp": "host[:port]"`` in /ovpnkx.json, default pool.ntp.org).

Without a date it raises ``NoDateError`` saying so: the validity check is never
skipped. Dates are converted here (not with ``time.gmtime``) so the port's epoch
(1970 or 2000) does not matter.
"""

import struct
import time

from ovpnkx.errors import LocalProtocolError

MIN_YEAR = 2025
NTP_PORT = 123
_NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01


class NoDateError(LocalProtocolError):
    """The device has no date, so it cannot check certificates."""


def _days(y: int, m: int, d: int) -> int:
    # days since 1970-01-01 (proleptic Gregorian; H. Hinnant's days_from_civil)
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil(secs: int) -> tuple:
    """(year, month, day, hour, minute, second, weekday 0=Monday) of Unix seconds."""
    days, rem = divmod(int(secs), 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return (y, m, d, rem // 3600, rem // 60 % 60, rem % 60, (days + 3) % 7)


def unix_seconds(y: int, m: int, d: int, hh: int = 0, mi: int = 0, ss: int = 0) -> int:
    """Unix seconds of a UTC date."""
    return _days(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss


def _rtc() -> "object":
    import machine  # type: ignore[import-not-found,unused-ignore]  # boards and the sim

    return machine.RTC()  # type: ignore[attr-defined,unused-ignore]


def rtc_now() -> "int | None":
    """The RTC as Unix seconds, or None when it holds no date (a reset value)."""
    try:
        dt = _rtc().datetime()  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        return None
    if dt[0] < MIN_YEAR:
        return None
    return unix_seconds(dt[0], dt[1], dt[2], dt[4], dt[5], dt[6])


def set_rtc(secs: int) -> None:
    """Set the RTC to Unix seconds ``secs`` (UTC)."""
    y, m, d, hh, mi, ss, wd = civil(secs)
    _rtc().datetime((y, m, d, wd, hh, mi, ss, 0))  # type: ignore[attr-defined]


def date_text(secs: "int | None") -> str:
    """ISO text of Unix seconds, for events."""
    if secs is None:
        return "none"
    y, m, d, hh, mi, ss, _ = civil(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, hh, mi, ss)


def ntp_request() -> bytes:
    """An SNTP v4 client request (RFC 4330): 48 bytes, mode 3."""
    return b"\x23" + bytes(47)


def parse_ntp_reply(data: bytes) -> int:
    """Unix seconds of an SNTP server reply's transmit timestamp."""
    if len(data) < 48 or data[0] & 0x07 not in (4, 5):
        raise LocalProtocolError("NTP: not a server reply (%d bytes)" % len(data))
    secs = struct.unpack("!I", data[40:44])[0] - _NTP_DELTA
    if secs < unix_seconds(MIN_YEAR, 1, 1):
        raise LocalProtocolError("NTP: server sent no usable time (%d)" % secs)
    return secs


def ntp_time(server: str, timeout_ms: int = 3000, tries: int = 3) -> int:
    """Unix seconds from an NTP server ``host[:port]`` over UDP."""
    import socket

    host, _, port = server.partition(":")
    addr = socket.getaddrinfo(host, int(port or NTP_PORT))[0][-1]
    last = "no reply"
    for _ in range(tries):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout_ms / 1000)
            s.sendto(ntp_request(), addr)
            return parse_ntp_reply(s.recv(64))
        except OSError as exc:
            last = str(exc) or "timed out"
        finally:
            s.close()
    raise NoDateError("no date: NTP server %s did not answer (%s)" % (server, last))


def serial_time(transport: "object", timeout_ms: int = 10000, every_ms: int = 1000) -> int:
    """Unix seconds from the host peer over the serial link (``linkmsg``)."""
    from ovpnkx.linkmsg import TIME_REQUEST

    start = time.ticks_ms()  # type: ignore[attr-defined]
    asked = None
    while time.ticks_diff(time.ticks_ms(), start) < timeout_ms:  # type: ignore[attr-defined]
        now = time.ticks_ms()  # type: ignore[attr-defined]
        if asked is None or time.ticks_diff(now, asked) >= every_ms:  # type: ignore[attr-defined]
            transport.send(TIME_REQUEST)  # type: ignore[attr-defined]
            asked = now
        transport.receive()  # type: ignore[attr-defined]  # keeps link messages aside
        if transport.host_time is not None:  # type: ignore[attr-defined]
            return int(transport.host_time)  # type: ignore[attr-defined]
        transport.wait(50)  # type: ignore[attr-defined]
    raise NoDateError("no date: the host on the serial line did not answer the time request in %d s "
                      "(run `ovpnkx serve --serial` or `ovpnkx relay` on it)" % (timeout_ms // 1000))


def ensure_date(transport: "object" = None, ntp: "str | None" = None) -> tuple:
    """(Unix seconds, source) after making sure the RTC holds a date.

    ``transport``: the serial transport (asks the host); ``ntp``: an NTP server for
    Wi-Fi boards. NoDateError when none gives a date.
    """
    now = rtc_now()
    if now is not None:
        return now, "rtc"
    if transport is not None:
        secs = serial_time(transport)
        set_rtc(secs)
        return secs, "host"
    if ntp:
        secs = ntp_time(ntp)
        set_rtc(secs)
        return secs, "ntp"
    raise NoDateError("no date: the RTC holds its reset value and neither a host on the serial line "
                      "nor an NTP server gave one, so the certificates' validity cannot be checked")
