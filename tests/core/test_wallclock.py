"""The device's date (ovpnkx_device.wallclock) and its session clock across the ticks wrap."""

from _support import raises

from ovpnkx.errors import LocalProtocolError
from ovpnkx_device.clock import Clock
from ovpnkx_device.wallclock import civil, date_text, ntp_request, parse_ntp_reply, unix_seconds

PERIOD = 1 << 30  # ticks period of a 32-bit port


def test_civil_dates():
    assert unix_seconds(1970, 1, 1) == 0
    assert unix_seconds(2021, 1, 1) == 1609459200
    assert unix_seconds(2024, 2, 29, 12, 30, 15) == 1709209815
    assert civil(1709209815) == (2024, 2, 29, 12, 30, 15, 3)  # a Thursday
    assert civil(1609459200)[6] == 4  # 2021-01-01 was a Friday
    for secs in (0, 951782400, 4107542399, 1796083200 + 86399):
        y, m, d, hh, mi, ss, _ = civil(secs)
        assert unix_seconds(y, m, d, hh, mi, ss) == secs
    assert date_text(1796083200) == "2026-12-01T00:00:00Z" and date_text(None) == "none"


def test_ntp_reply():
    req = ntp_request()
    assert len(req) == 48 and req[0] & 7 == 3
    reply = bytearray(48)
    reply[0] = 0x24  # version 4, mode 4 (server)
    reply[40:44] = (1796083200 + 2208988800).to_bytes(4, "big")
    assert parse_ntp_reply(bytes(reply)) == 1796083200
    raises(LocalProtocolError, parse_ntp_reply, bytes(47))
    reply[0] = 0x23  # a client's request echoed is no answer
    raises(LocalProtocolError, parse_ntp_reply, bytes(reply))
    reply[0] = 0x24
    reply[40:44] = bytes(4)  # an unsynchronised server sends 0
    raises(LocalProtocolError, parse_ntp_reply, bytes(reply))


class FakeTicks:
    """ticks_ms/ticks_diff of a 32-bit port, starting just before the wrap."""

    def __init__(self, start):
        self.t = start

    def ticks_ms(self):
        return self.t % PERIOD

    def ticks_diff(self, a, b):
        return ((a - b + PERIOD // 2) % PERIOD) - PERIOD // 2

    def advance(self, ms):
        self.t += ms


def test_session_clock_survives_the_ticks_wrap():
    ticks = FakeTicks(PERIOD - 1000)
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
    assert clock.now_ms() == 0
    ticks.advance(1500)  # across the wrap: ticks_ms() is now 500
    assert ticks.ticks_ms() == 500 and clock.now_ms() == 1500
    # a week of 1-day steps: past 2^29 ms (6.2 days), where one ticks_diff from the
    # start would turn negative, and past a second wrap (12.4 days)
    for _ in range(14):
        ticks.advance(86400000)
        clock.now_ms()
    assert clock.now_ms() == 1500 + 14 * 86400000
