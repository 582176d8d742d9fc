"""RP2350 entropy: raw TRNG ring-oscillator samples through the full chain.

Cutoffs are constants so the board never depends on float precision.
"""

from ovpnkx.entropy import TrngEntropy
from ovpnkx.noise import unique_id
from ovpnkx.noise_rp2350 import Rp2350Trng

MIN_ENTROPY_CLAIM = 0.5  # bits per raw TRNG bit at sample_cnt1 >= 256, see Rp2350Trng
RCT_CUTOFF = 41  # 1 + ceil(20 / 0.5)
APT_CUTOFF = 793  # W = 1024 (binary), alpha = 2^-20
SAMPLE_CNT1 = 256


def make_noise(regs=None) -> Rp2350Trng:
    """The raw TRNG driver (a parked source's reseed makes a new one)."""
    return Rp2350Trng(regs=regs, sample_cnt1=SAMPLE_CNT1)


def make_entropy(regs=None, personalization=None) -> TrngEntropy:
    """A ``TrngEntropy`` over the RP2350 TRNG (personalized by the chip id)."""
    if personalization is None:
        personalization = b"ovpnkx rp2350 " + unique_id()
    return TrngEntropy(make_noise(regs), MIN_ENTROPY_CLAIM,
                       personalization=personalization, rct_cutoff=RCT_CUTOFF, apt_cutoff=APT_CUTOFF)
