"""``time`` for the simulated board: ticks and clock as on the board's stock firmware.

- ``ticks_ms``/``ticks_us``/``ticks_cpu`` wrap with the board's period (2^30 on a
  32-bit port, ``stock_firmware.ticks_period``) and start where the launcher says
  (``--ticks-start MS``: near the wrap if asked); ``ticks_add``/``ticks_diff`` use
  the same period, so code that does its arithmetic by hand breaks here as on a board.
- ``time()``, ``gmtime()``, ``localtime()`` and ``mktime()`` follow ``machine.RTC``,
  which starts at the board's ``rtc_at_reset`` (2021-01-01 on rp2) after a hard reset
  and keeps its setting over a soft reset. Seconds since 1970 (MICROPY_EPOCH_IS_1970).
"""

import time as _t

import simboard

_P = simboard.ticks_period()
_MASK = _P - 1
_HALF = _P >> 1
_ZERO = simboard.config().get("ticks_zero_ms", 0)  # the unix port's ticks_ms at the board's tick 0


def ticks_ms():
    return (_t.ticks_ms() - _ZERO) & _MASK


def ticks_us():
    return (_t.ticks_us() - _ZERO * 1000) & _MASK


ticks_cpu = ticks_us


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


sleep = _t.sleep
sleep_ms = _t.sleep_ms
sleep_us = _t.sleep_us


def _days(y, m, d):
    # days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil)
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def mktime(t):
    """Seconds since 1970 of (year, month, mday, hour, minute, second, ...)."""
    return _days(t[0], t[1], t[2]) * 86400 + t[3] * 3600 + t[4] * 60 + t[5]


def gmtime(secs=None):
    """(year, month, mday, hour, minute, second, weekday 0=Monday, yearday)."""
    if secs is None:
        secs = time()
    secs = int(secs)
    days, rem = divmod(secs, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400 + (m <= 2)
    yday = days - _days(y, 1, 1) + 1
    return (y, m, d, rem // 3600, rem // 60 % 60, rem % 60, (days + 3) % 7, yday)


localtime = gmtime  # boards keep UTC


def time():
    return int(_t.time()) + simboard.rtc_offset()


def time_ns():
    return _t.time_ns() + simboard.rtc_offset() * 1000000000
