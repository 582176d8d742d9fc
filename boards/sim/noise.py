"""The simulated board's entropy: its modelled TRNG through the full chain.

Cutoffs are constants (checked against ``ovpnkx.entropy`` by the tests) so
that the board never depends on float precision.
"""

from ovpnkx.entropy import TrngEntropy
from ovpnkx.noise_sim import SimTrng

MIN_ENTROPY_CLAIM = 0.5  # bits per raw bit, see SimTrng
RCT_CUTOFF = 41  # 1 + ceil(20 / 0.5)
APT_CUTOFF = 793  # W = 1024 (binary), alpha = 2^-20


def make_entropy(fault=None, source=None, personalization=b"ovpnkx sim", **model) -> TrngEntropy:
    """A ``TrngEntropy`` over ``SimTrng(fault, source=source, **model)``."""
    return TrngEntropy(SimTrng(fault=fault, source=source, **model), MIN_ENTROPY_CLAIM,
                       personalization=personalization, rct_cutoff=RCT_CUTOFF, apt_cutoff=APT_CUTOFF)
