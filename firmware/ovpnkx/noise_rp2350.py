"""The RP2350 TRNG as a noise source (``ovpnkx.noise``)."""

from ._compat import const
from .errors import EntropyError, LocalProtocolError
from .noise import MachineRegisters

# pico-sdk hardware/regs/trng.h (RP2350 datasheet, TRNG chapter); TRNG_BASE
# 0x400f0000 from hardware/regs/addressmap.h.
TRNG_BASE_RP2350 = const(0x400F0000)
_TRNG_RNG_ICR = const(0x108)
_TRNG_CONFIG = const(0x10C)
_TRNG_VALID = const(0x110)
_TRNG_EHR_DATA0 = const(0x114)  # EHR_DATA0..5: 192 collected bits
_TRNG_RND_SOURCE_ENABLE = const(0x12C)
_TRNG_SAMPLE_CNT1 = const(0x130)
_TRNG_DEBUG_CONTROL = const(0x138)
# bypass the von Neumann balancer (0x2), CRNGT (0x4) and autocorrelation
# test (0x8): the EHR then holds raw ring-oscillator samples
_TRNG_BYPASS_ALL = const(0x0E)
_TRNG_SPIN_LIMIT = const(100000)


class Rp2350Trng:
    """Raw samples of the RP2350 TRNG ring oscillator, one bit per sample.

    The decorrelators and built-in checks are bypassed so that our SP 800-90B
    tests see the raw noise; ``sample_cnt1`` rng_clk cycles separate samples
    (the reset value is 0xffff; pico_rand uses 0). The EHR's 192 bits are
    returned LSB first from EHR_DATA0. The TRNG must be out of reset (it is
    under MicroPython, whose urandom uses it).

    Claim: 0.5 bits per raw bit with ``sample_cnt1`` >= 256: a ring
    oscillator sampled hundreds of cycles apart has accumulated jitter, but
    it is a starting point to confirm with SP 800-90B estimators on hardware.
    """

    bits_per_sample = 1
    binary = True
    MIN_ENTROPY_CLAIM = 0.5

    def __init__(self, regs=None, sample_cnt1: int = 256, base: int = TRNG_BASE_RP2350) -> None:
        if not 0 <= sample_cnt1 <= 0xFFFFFFFF:
            raise LocalProtocolError("sample_cnt1 out of range")
        self._regs = regs if regs is not None else MachineRegisters()
        self.base = base
        self.sample_cnt1 = sample_cnt1
        self._started = False

    def _start(self) -> None:
        w = self._regs.write
        b = self.base
        w(b + _TRNG_RND_SOURCE_ENABLE, 0)
        w(b + _TRNG_CONFIG, 0)
        w(b + _TRNG_SAMPLE_CNT1, self.sample_cnt1)
        w(b + _TRNG_DEBUG_CONTROL, _TRNG_BYPASS_ALL)
        w(b + _TRNG_RNG_ICR, 0xFFFFFFFF)
        w(b + _TRNG_RND_SOURCE_ENABLE, 1)
        self._started = True

    def _ehr(self) -> list:
        read = self._regs.read
        b = self.base
        spins = 0
        while not read(b + _TRNG_VALID) & 1:
            spins += 1
            if spins >= _TRNG_SPIN_LIMIT:
                raise EntropyError("entropy source failed: RP2350 TRNG did not fill its EHR")
        # reading EHR_DATA5 last clears EHR_VALID and starts the next collection
        return [read(b + _TRNG_EHR_DATA0 + 4 * i) for i in range(6)]

    def read_samples(self, n: int) -> bytes:
        if not self._started:
            self._start()
        out = bytearray()
        while len(out) < n:
            for word in self._ehr():
                for bit in range(32):
                    out.append((word >> bit) & 1)
        return bytes(out[:n])
