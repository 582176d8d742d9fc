"""ESP32 entropy: the RNG register through the full chain.

The register is truly random only while Wi-Fi or Bluetooth runs: switch one
on before the first ``random_bytes``/``startup()``, or the source refuses
(and the entropy object stays in its error state until ``reset()``).
Cutoffs are constants: the ESP32 port's floats are single precision.
"""

from ovpnkx.entropy import TrngEntropy
from ovpnkx.noise import RNG_DATA_ESP32, Esp32Rng, unique_id

MIN_ENTROPY_CLAIM = 2.0  # bits per 8-bit sample, see Esp32Rng
RCT_CUTOFF = 11  # 1 + ceil(20 / 2)
APT_CUTOFF = 177  # W = 512 (non-binary), alpha = 2^-20


def make_entropy(regs=None, rf_active=None, allow_pseudo=False, address=RNG_DATA_ESP32,
                 personalization=None) -> TrngEntropy:
    """A ``TrngEntropy`` over the ESP32 RNG register (personalized by the chip id)."""
    if personalization is None:
        personalization = b"ovpnkx esp32 " + unique_id()
    rng = Esp32Rng(regs=regs, rf_active=rf_active, allow_pseudo=allow_pseudo, address=address)
    return TrngEntropy(rng, MIN_ENTROPY_CLAIM, personalization=personalization,
                       rct_cutoff=RCT_CUTOFF, apt_cutoff=APT_CUTOFF)
