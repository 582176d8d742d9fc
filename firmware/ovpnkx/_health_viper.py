"""The RCT and APT loop of ``ovpnkx.health.HealthTests.feed`` in viper (native code).

Imported by ``ovpnkx.health`` only on MicroPython and used only after
``selftest`` agrees with the portable loop. In Python the loop costs about
as much per sample as reading the noise register; natively it is a small
share of the chain (``make bench``, section entropy).

State in and out as 8 native words: RCT value, RCT count, APT value, APT
count, APT index, RCT cutoff, APT cutoff, window (value 256 = none yet).
"""

import micropython

NONE = 256


@micropython.viper
def feed(buf: ptr8, n: int, st: ptr32) -> int:  # type: ignore[name-defined,unused-ignore]
    """Run both tests over ``n`` samples; 0, or (samples done << 1) | (1 for APT, 0 for RCT)."""
    rv = int(st[0])
    rc = int(st[1])
    av = int(st[2])
    ac = int(st[3])
    ai = int(st[4])
    rcut = int(st[5])
    acut = int(st[6])
    window = int(st[7])
    result = 0
    i = 0
    while i < n:
        s = int(buf[i])
        i += 1
        if s == rv:
            rc += 1
            if rc >= rcut:
                result = i << 1
                break
        else:
            rv = s
            rc = 1
        if ai == 0:
            av = s
            ac = 1
        elif s == av:
            ac += 1
            if ac >= acut:
                result = (i << 1) | 1
                break
        ai += 1
        if ai == window:
            ai = 0
    st[0] = rv
    st[1] = rc
    st[2] = av
    st[3] = ac
    st[4] = ai
    return result
