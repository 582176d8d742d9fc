"""The ESP32 hardware RNG register as a noise source (``ovpnkx.noise``)."""

from ._compat import const
from .errors import EntropyError
from .noise import MachineRegisters

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
