"""ESP32 entropy: the RNG register through the full chain.

The register is truly random only while Wi-Fi or Bluetooth runs, so
``make_entropy`` switches the Wi-Fi station interface on (no association is
needed: the RF part runs once the driver is active); with ``rf_on=False`` it
leaves that to the caller, and the source refuses while RF is off.
Cutoffs are constants: the ESP32 port's floats are single precision.
"""

from ovpnkx.entropy import TrngEntropy
from ovpnkx.noise import unique_id
from ovpnkx.noise_esp32 import RNG_DATA_ESP32, Esp32Rng

MIN_ENTROPY_CLAIM = 2.0  # bits per 8-bit sample, see Esp32Rng
RCT_CUTOFF = 11  # 1 + ceil(20 / 2)
APT_CUTOFF = 177  # W = 512 (non-binary), alpha = 2^-20


def _rf_on() -> None:
    try:
        import network  # type: ignore[import-not-found,unused-ignore]

        network.WLAN(network.STA_IF).active(True)
    except (ImportError, AttributeError, OSError):
        pass  # the source then refuses, naming the cause


def make_noise(regs=None, rf_active=None, allow_pseudo=False, address=RNG_DATA_ESP32) -> Esp32Rng:
    """The raw RNG driver (a parked source's reseed makes a new one; RF is on since boot)."""
    return Esp32Rng(regs=regs, rf_active=rf_active, allow_pseudo=allow_pseudo, address=address)


def make_entropy(regs=None, rf_active=None, allow_pseudo=False, address=RNG_DATA_ESP32,
                 personalization=None, rf_on=True) -> TrngEntropy:
    """A ``TrngEntropy`` over the ESP32 RNG register (personalized by the chip id)."""
    if rf_on and regs is None:
        _rf_on()
    if personalization is None:
        personalization = b"ovpnkx esp32 " + unique_id()
    return TrngEntropy(make_noise(regs, rf_active, allow_pseudo, address), MIN_ENTROPY_CLAIM,
                       personalization=personalization, rct_cutoff=RCT_CUTOFF, apt_cutoff=APT_CUTOFF)
