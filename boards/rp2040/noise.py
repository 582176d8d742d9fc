"""RP2040 entropy: raw ROSC RANDOMBIT samples through the full chain.

Not ``os.urandom`` (the SDK's xoroshiro128** with one ROSC bit per output).
Cutoffs are constants: the rp2 port's floats are single precision.
"""

from ovpnkx.entropy import TrngEntropy
from ovpnkx.noise import unique_id
from ovpnkx.noise_rp2040 import Rp2040Rosc

MIN_ENTROPY_CLAIM = 0.2  # bits per raw ROSC bit, see Rp2040Rosc
RCT_CUTOFF = 101  # 1 + ceil(20 / 0.2)
APT_CUTOFF = 941  # W = 1024 (binary), alpha = 2^-20


def make_noise(regs=None) -> Rp2040Rosc:
    """The raw ROSC driver (a parked source's reseed makes a new one)."""
    return Rp2040Rosc(regs=regs)


def make_entropy(regs=None, personalization=None) -> TrngEntropy:
    """A ``TrngEntropy`` over the RP2040 ROSC (personalized by the flash id)."""
    if personalization is None:
        personalization = b"ovpnkx rp2040 " + unique_id()
    return TrngEntropy(make_noise(regs), MIN_ENTROPY_CLAIM, personalization=personalization,
                       rct_cutoff=RCT_CUTOFF, apt_cutoff=APT_CUTOFF)
