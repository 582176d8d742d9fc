"""The simulated board's TRNG, a noise model (``ovpnkx.noise``; the sim's registers are backed by it)."""

import os

from .errors import LocalProtocolError


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
        f = self._fault
        # the probabilities as 16-bit thresholds, once: ``fill`` then compares ints only
        self._thresholds = (_threshold(correlation), _threshold(bias),
                            _threshold(f[1]) if f is not None and f[0] in ("bias", "correlated") else 0)

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
        self.fill(out, raw)
        return bytes(out)

    def fill(self, out: bytearray, raw: "bytes | bytearray") -> None:
        """``len(out)`` samples into ``out``, from 4 bytes of ``raw`` (the physical
        randomness) a sample. Allocates nothing: the sim's registers read through it in the
        user's heap, where a board's register read takes nothing."""
        prev = self._prev
        corr_at, bias_at, fault_at = self._thresholds
        fault = self._fault
        for i in range(len(out)):
            corr = corr_at
            bias = bias_at
            if fault is not None and self.samples >= self.fault_after:
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
                    bias = fault_at
                elif kind == "correlated":
                    corr = fault_at
                elif kind == "repeat":
                    self._left = fault[1] - 1
            j = 4 * i
            u_corr = raw[j] | (raw[j + 1] << 8)
            u_bit = raw[j + 2] | (raw[j + 3] << 8)
            if prev >= 0 and u_corr < corr:
                bit = prev
            else:
                bit = 1 if u_bit < bias else 0
            out[i] = bit
            prev = bit
            self.samples += 1
        self._prev = prev


def _threshold(p: float) -> int:
    # u < p * 65536 for a 16-bit u, as an int compare: no float made per sample
    t = p * 65536
    return int(t) + (1 if t != int(t) else 0)
