"""GHASH with the full per-key table (32 x 16 multiples of H, about 8 KB per key) for
``ovpnkx.gcm``: on Python ints, or in native code (``_gcm_viper``) where
``micropython.viper`` works and agrees with the reference. Loaded at the first GCM key
that is not ``compact``: a board on the compact table never holds this code.
"""

from ._compat import MICROPYTHON, TYPE_CHECKING
from .gcm import gf_mul, nibble_entries

if TYPE_CHECKING:
    from typing import Any


def _ghash_py(t: list, y: int, data: bytes) -> int:
    """GHASH state ``y`` absorbing ``data`` (a multiple of 16 bytes)."""
    fb = int.from_bytes
    mv = memoryview(data)
    for off in range(0, len(data), 16):
        b = (y ^ fb(mv[off:off + 16], "big")).to_bytes(16, "big")
        y = (t[b[0] >> 4] ^ t[16 + (b[0] & 15)] ^ t[32 + (b[1] >> 4)] ^ t[48 + (b[1] & 15)]
             ^ t[64 + (b[2] >> 4)] ^ t[80 + (b[2] & 15)] ^ t[96 + (b[3] >> 4)] ^ t[112 + (b[3] & 15)]
             ^ t[128 + (b[4] >> 4)] ^ t[144 + (b[4] & 15)] ^ t[160 + (b[5] >> 4)] ^ t[176 + (b[5] & 15)]
             ^ t[192 + (b[6] >> 4)] ^ t[208 + (b[6] & 15)] ^ t[224 + (b[7] >> 4)] ^ t[240 + (b[7] & 15)]
             ^ t[256 + (b[8] >> 4)] ^ t[272 + (b[8] & 15)] ^ t[288 + (b[9] >> 4)] ^ t[304 + (b[9] & 15)]
             ^ t[320 + (b[10] >> 4)] ^ t[336 + (b[10] & 15)] ^ t[352 + (b[11] >> 4)] ^ t[368 + (b[11] & 15)]
             ^ t[384 + (b[12] >> 4)] ^ t[400 + (b[12] & 15)] ^ t[416 + (b[13] >> 4)] ^ t[432 + (b[13] & 15)]
             ^ t[448 + (b[14] >> 4)] ^ t[464 + (b[14] & 15)] ^ t[480 + (b[15] >> 4)] ^ t[496 + (b[15] & 15)])
    return y


class PortableGhash:
    """GHASH under one key H, on Python ints."""

    def __init__(self, h: int) -> None:
        self._t = list(nibble_entries(h))

    def ghash(self, y: int, data: bytes) -> int:
        return _ghash_py(self._t, y, data)


_Ghash = None  # type: Any  # the full-table GHASH class, once full_ghash() chose it


def full_ghash() -> "Any":
    """The full-table GHASH class: native (``_gcm_viper``) where viper works and agrees
    with the reference (``gcm.gf_mul``), else portable; chosen at the first use."""
    global _Ghash
    if _Ghash is None:
        _Ghash = PortableGhash
        if MICROPYTHON:
            try:
                from . import _gcm_viper

                if _gcm_viper.selftest(gf_mul):
                    _Ghash = _gcm_viper.ViperGhash
            except Exception:  # no viper emitter on this port: keep the portable path
                pass
    return _Ghash


def ghash_backend() -> str:
    """Which full-table GHASH implementation is in use: "viper" or "portable"."""
    return "portable" if full_ghash() is PortableGhash else "viper"
