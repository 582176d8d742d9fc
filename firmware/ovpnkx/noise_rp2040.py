"""The RP2040 ROSC as a noise source (``ovpnkx.noise``)."""

from ._compat import const
from .errors import EntropyError
from .noise import MachineRegisters

# RP2040 datasheet §2.17 (ROSC): ROSC_BASE 0x40060000, STATUS +0x18 (bit 31
# STABLE, bit 12 ENABLED), RANDOMBIT +0x1c (bit 0).
ROSC_BASE_RP2040 = const(0x40060000)
_ROSC_STATUS = const(0x18)
_ROSC_RANDOMBIT = const(0x1C)
_ROSC_STABLE = const(0x80000000)


class Rp2040Rosc:
    """Raw ROSC RANDOMBIT samples of the RP2040, one bit per sample.

    Not ``os.urandom``: on the RP2040 MicroPython's urandom is the SDK's
    xoroshiro128** with one ROSC bit mixed in per output, not a noise source.
    The raw bit is biased and correlated with the sampling rhythm, hence
    the low claim of 0.2 bits per sample (2560 samples per 256-bit seed, a
    few ms of register reads); characterise a real board with SP 800-90B's
    non-IID estimators before trusting a higher one.
    """

    bits_per_sample = 1
    binary = True
    MIN_ENTROPY_CLAIM = 0.2

    def __init__(self, regs=None, base: int = ROSC_BASE_RP2040) -> None:
        self._regs = regs if regs is not None else MachineRegisters()
        self.base = base

    def read_samples(self, n: int) -> bytes:
        if not self._regs.read(self.base + _ROSC_STATUS) & _ROSC_STABLE:
            raise EntropyError("entropy source failed: RP2040 ROSC is not running (STATUS.STABLE clear)")
        read = self._regs.read
        addr = self.base + _ROSC_RANDOMBIT
        out = bytearray(n)
        for i in range(n):
            out[i] = read(addr) & 1
        return bytes(out)
