"""GHASH in MicroPython viper (native code) on 32-bit words.

Imported by ``ovpnkx.gcm`` only on MicroPython and used only after ``selftest``
agrees with the bitwise reference ``gcm.gf_mul``. The table is the same nibble-position table as
``gcm.nibble_entries``, stored as 4 native 32-bit words per entry in a bytearray
(8 KiB per key instead of 512 big ints, about 24 KiB). Every shifted value is masked so the
code gives the same result whether viper words are 32 or 64 bits wide.
"""

import struct

import micropython
from array import array

_TABLE_BYTES = 512 * 16

@micropython.viper
def _blocks(t: ptr32, yw: ptr32, data: ptr8, n: int):  # type: ignore[name-defined,unused-ignore]
    off = 0
    while off < n:
        z0 = 0
        z1 = 0
        z2 = 0
        z3 = 0
        k = 0
        while k < 16:
            w = int(yw[k >> 2])
            b = ((w >> (24 - ((k & 3) << 3))) & 0xFF) ^ int(data[off + k])
            i = ((k << 5) + (b >> 4)) << 2
            z0 ^= int(t[i])
            z1 ^= int(t[i + 1])
            z2 ^= int(t[i + 2])
            z3 ^= int(t[i + 3])
            i = ((k << 5) + 16 + (b & 15)) << 2
            z0 ^= int(t[i])
            z1 ^= int(t[i + 1])
            z2 ^= int(t[i + 2])
            z3 ^= int(t[i + 3])
            k += 1
        yw[0] = z0
        yw[1] = z1
        yw[2] = z2
        yw[3] = z3
        off += 16


def _words(v: int) -> list:
    return [(v >> 96) & 0xFFFFFFFF, (v >> 64) & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF, v & 0xFFFFFFFF]


class ViperGhash:
    """GHASH under one key H, in native code; the table is 8 KiB of native words."""

    def __init__(self, h: int) -> None:
        from .gcm import nibble_entries

        t = bytearray(_TABLE_BYTES)
        off = 0
        for v in nibble_entries(h):
            # "@I": native order and size, as viper's ptr32 reads it
            struct.pack_into("@IIII", t, off, (v >> 96) & 0xFFFFFFFF, (v >> 64) & 0xFFFFFFFF,
                             (v >> 32) & 0xFFFFFFFF, v & 0xFFFFFFFF)
            off += 16
        self._t = t
        self._y = array("I", [0, 0, 0, 0])

    def ghash(self, y: int, data: bytes) -> int:
        yw = self._y
        w = _words(y)
        yw[0] = w[0]
        yw[1] = w[1]
        yw[2] = w[2]
        yw[3] = w[3]
        _blocks(self._t, yw, data, len(data))  # type: ignore[arg-type]
        return (yw[0] << 96) | (yw[1] << 64) | (yw[2] << 32) | yw[3]


def selftest(gf_mul) -> bool:
    """True when the viper GHASH matches the bitwise reference multiply on a fixed input."""
    h = 0x66E94BD4EF8A2C3B884CFA59CA342B2E
    y = 0x0388DACE60B6A392F328C2B971B2FE78
    data = bytes((i * 89 + 7) & 0xFF for i in range(64))
    expected = y
    for off in range(0, 64, 16):
        expected = gf_mul(expected ^ int.from_bytes(data[off:off + 16], "big"), h)
    return ViperGhash(h).ghash(y, data) == expected
