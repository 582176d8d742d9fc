"""Noise sources: raw samples for ``ovpnkx.entropy.TrngEntropy``.

Interface (duck-typed): ``read_samples(n) -> bytes`` returns n samples, one
per byte; ``bits_per_sample`` is the sample width (1 for a bit source, 8 for
a byte source); ``binary`` is True when samples are 0/1 (it picks the APT
window); ``MIN_ENTROPY_CLAIM`` is the min-entropy per sample this project
assumes for the source (see each class for why). A source that cannot give
trustworthy samples raises ``EntropyError``.

The board classes touch hardware registers only through a ``regs`` object
with ``read(addr) -> int`` and ``write(addr, value)``; the default one wraps
``machine.mem32`` (imported only when used), tests pass a fake.
"""

import os

from ._compat import const
from .errors import EntropyError, LocalProtocolError


def unique_id() -> bytes:
    """The chip's unique id (``machine.unique_id()``), b"" where there is none.

    Boards personalize their DRBG with it, so two boards never share a stream.
    """
    try:
        import machine

        return machine.unique_id()  # type: ignore[attr-defined,unused-ignore]  # not on the unix port
    except (ImportError, AttributeError):
        return b""


class MachineRegisters:
    """32-bit register access through ``machine.mem32`` (boards only)."""

    def __init__(self) -> None:
        import machine  # type: ignore[import-not-found,unused-ignore]  # boards only

        self._mem32 = machine.mem32

    def read(self, addr: int) -> int:
        return self._mem32[addr] & 0xFFFFFFFF

    def write(self, addr: int, value: int) -> None:
        self._mem32[addr] = value


class HostNoise:
    """``os.urandom`` as a noise source, for hosts and tests of the chain.

    Already conditioned by the OS, so any claim up to 8 bits per byte holds.
    """

    bits_per_sample = 8
    binary = False
    MIN_ENTROPY_CLAIM = 7.0

    def read_samples(self, n: int) -> bytes:
        return os.urandom(n)


# --- ESP32 ------------------------------------------------------------------

# RNG_DATA_REG (ESP32 TRM: DR_REG_WDEV_BASE 0x3FF75000 + 0x144; ESP32-C3:
# RNG base 0x60026000 + 0xB0). Other chips: pass ``address=``.
RNG_DATA_ESP32 = const(0x3FF75144)
RNG_DATA_ESP32C3 = const(0x600260B0)


def _esp32_rf_active() -> bool:
    """True when Wi-Fi (STA or AP) or Bluetooth is switched on."""
    try:
        import network  # type: ignore[import-not-found,unused-ignore]

        for iface in (network.STA_IF, network.AP_IF):
            if network.WLAN(iface).active():
                return True
    except (ImportError, AttributeError, OSError):
        pass
    try:
        import bluetooth  # type: ignore[import-not-found,unused-ignore]

        if bluetooth.BLE().active():
            return True
    except (ImportError, AttributeError, OSError):
        pass
    return False


class Esp32Rng:
    """The ESP32 hardware RNG register, 4 byte samples per 32-bit read.

    Espressif: the register is a true RNG only while the RF subsystem (Wi-Fi
    or Bluetooth) runs, its noise being mixed in; otherwise it is pseudo-random.
    So ``read_samples`` refuses (``EntropyError``) while RF is off, unless
    ``allow_pseudo=True``, which warns on every read instead.

    Claim: 2 bits per 8-bit sample. The register is already whitened by the
    hardware, so its true min-entropy cannot be measured from it; 2 of 8 is a
    deliberately low claim that only costs reads (64 words per seed).
    """

    bits_per_sample = 8
    binary = False
    MIN_ENTROPY_CLAIM = 2.0

    def __init__(self, regs=None, rf_active=None, allow_pseudo: bool = False, warn=None,
                 address: int = RNG_DATA_ESP32) -> None:
        self._regs = regs if regs is not None else MachineRegisters()
        self._rf_active = rf_active if rf_active is not None else _esp32_rf_active
        self.allow_pseudo = allow_pseudo
        self._warn = warn if warn is not None else print
        self.address = address
        self.pseudo_reads = 0

    def read_samples(self, n: int) -> bytes:
        if not self._rf_active():
            if not self.allow_pseudo:
                raise EntropyError("entropy source failed: ESP32 RNG is pseudo-random while Wi-Fi "
                                   "and Bluetooth are off (switch one on, or allow_pseudo=True)")
            self.pseudo_reads += 1
            self._warn("WARNING: ovpnkx entropy: ESP32 RF is off, the RNG is pseudo-random; "
                       "keys made now are NOT safe")
        out = bytearray()
        read = self._regs.read
        addr = self.address
        while len(out) < n:
            out.extend(read(addr).to_bytes(4, "little"))
        return bytes(out[:n])


# --- RP2040 -----------------------------------------------------------------

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


# --- RP2350 -----------------------------------------------------------------

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


# --- simulated board ----------------------------------------------------------


class SimTrng:
    """The simulated board's TRNG: a biased, slightly correlated bit source.

    Each sample repeats the previous one with probability ``correlation``,
    else is a fresh bit that is 1 with probability ``bias`` (a ring
    oscillator sampled too fast does both). The physical randomness under
    the model comes from ``source(n) -> bytes`` (default ``os.urandom``;
    tests pass a deterministic one).

    ``fault`` models a broken source, starting after ``fault_after`` samples:
    ``"stuck"`` / ``"stuck=1"`` (constant), ``"bias=P"`` (P(1) = P),
    ``"repeat=N"`` (every sample emitted N times), ``"correlated=R"``
    (repeat the previous sample with probability R).

    Claim 0.5 bits per sample: with the defaults the worst conditional
    probability is 0.05 + 0.95 * 0.52 = 0.544, i.e. 0.88 bits.
    """

    bits_per_sample = 1
    binary = True
    MIN_ENTROPY_CLAIM = 0.5

    def __init__(self, fault: "str | None" = None, bias: float = 0.52, correlation: float = 0.05,
                 source=None, fault_after: int = 0) -> None:
        if not (0.0 <= bias <= 1.0 and 0.0 <= correlation <= 1.0):
            raise LocalProtocolError("SimTrng bias and correlation must be probabilities")
        self._source = source if source is not None else os.urandom
        self.bias = bias
        self.correlation = correlation
        self.fault_after = fault_after
        self.samples = 0
        self._prev = -1
        self._left = 0  # remaining copies under "repeat=N"
        self._fault = self._parse(fault)

    @staticmethod
    def _parse(fault: "str | None") -> "tuple | None":
        if fault is None:
            return None
        name, _, arg = fault.partition("=")
        try:
            if name == "stuck":
                return ("stuck", int(arg) if arg else 0)
            if name == "bias":
                value = float(arg)
            elif name == "correlated":
                value = float(arg)
            elif name == "repeat":
                value = int(arg)
                if value < 1:
                    raise ValueError
                return ("repeat", value)
            else:
                raise ValueError
        except ValueError:
            raise LocalProtocolError("unknown SimTrng fault %r" % fault)
        if not 0.0 <= value <= 1.0:
            raise LocalProtocolError("SimTrng fault %r is not a probability" % fault)
        return (name, value)

    def read_samples(self, n: int) -> bytes:
        raw = self._source(4 * n)
        out = bytearray(n)
        prev = self._prev
        for i in range(n):
            bias = self.bias
            corr = self.correlation
            fault = self._fault if self.samples >= self.fault_after else None
            if fault is not None:
                kind = fault[0]
                if kind == "stuck":
                    prev = fault[1]
                    out[i] = prev
                    self.samples += 1
                    continue
                if kind == "repeat" and self._left > 0 and prev >= 0:
                    self._left -= 1
                    out[i] = prev
                    self.samples += 1
                    continue
                if kind == "bias":
                    bias = fault[1]
                elif kind == "correlated":
                    corr = fault[1]
            j = 4 * i
            u_corr = raw[j] | (raw[j + 1] << 8)
            u_bit = raw[j + 2] | (raw[j + 3] << 8)
            if prev >= 0 and u_corr < corr * 65536:
                bit = prev
            else:
                bit = 1 if u_bit < bias * 65536 else 0
            if fault is not None and fault[0] == "repeat":
                self._left = fault[1] - 1
            out[i] = bit
            prev = bit
            self.samples += 1
        self._prev = prev
        return bytes(out)
