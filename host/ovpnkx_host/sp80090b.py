"""Min-entropy estimators of NIST SP 800-90B (January 2018), §6.3.1–§6.3.3.

Written from the standard's definitions:

- most common value (MCV, §6.3.1): any sample alphabet;
- collision (§6.3.2) and Markov (§6.3.3): binary inputs only. For a
  non-binary source the standard (§3.1.3, §6.1) also assesses the samples as
  a bitstring (each n-bit sample as n bits, most significant first) and takes
  H = min(H_original, n × H_bitstring); ``assess`` does that, with MCV as
  the estimator on the original samples.

Also the descriptive figures the report plots: bias, autocorrelation and a
running proportion of ones. Every function takes a ``bytes``-like of sample
values (one sample per byte, as ``ovpnkx.noise`` delivers them).
"""

import math

Z_ALPHA = 2.576  # the standard's upper 99.5% point of the normal distribution


def most_common_value(samples) -> float:
    """§6.3.1: −log2 of the upper 99% confidence bound on the mode's probability."""
    n = len(samples)
    if n < 2:
        raise ValueError("the MCV estimate needs at least 2 samples")
    p_hat = max(bytes(samples).count(v) for v in set(samples)) / n
    p_u = min(1.0, p_hat + Z_ALPHA * math.sqrt(p_hat * (1.0 - p_hat) / (n - 1)))
    return -math.log2(p_u)


def _check_binary(samples, what: str) -> None:
    if any(s > 1 for s in set(samples)):
        raise ValueError("the %s estimate is defined for binary samples only" % what)


def _collision_expectation(p: float) -> float:
    """§6.3.2 step 7's right-hand side: the expected wait for a collision when
    the most likely bit has probability p (q = 1 − p), with
    F(q) = Γ(3, 1/q)·q^-3·e^(1/q) = q(2q² + 2q + 1) in closed form."""
    q = 1.0 - p
    if q <= 0.0:
        return 2.0  # the limit p → 1: the first pair always collides
    f_q = q * (2.0 * q * q + 2.0 * q + 1.0)
    half = 0.5 * (1.0 / p - 1.0 / q)
    return p / (q * q) * (1.0 + half) * f_q - p / q * half


def collision(samples) -> float:
    """§6.3.2 (binary): from the mean time to the first repeated value."""
    _check_binary(samples, "collision")
    n = len(samples)
    waits = []
    i = 0
    while i < n - 1:  # step 2: a pair collides (t = 2), else the third bit matches one of them (t = 3)
        if samples[i] == samples[i + 1]:
            t = 2
        elif i + 2 < n:
            t = 3
        else:
            break
        waits.append(t)
        i += t
    v = len(waits)
    if v < 2:
        raise ValueError("too few samples for the collision estimate")
    mean = sum(waits) / v
    sigma = math.sqrt(sum((t - mean) ** 2 for t in waits) / (v - 1))
    lower = mean - Z_ALPHA * sigma / math.sqrt(v)  # step 5: X̄'
    if lower >= _collision_expectation(0.5):
        return 1.0  # step 8: no solution p in [1/2, 1]: p = 1/2
    if lower <= 2.0:
        return 0.0
    lo, hi = 0.5, 1.0  # the expectation falls monotonically from 2.5 to 2 on [1/2, 1]
    for _ in range(100):
        mid = (lo + hi) / 2
        if _collision_expectation(mid) > lower:
            lo = mid
        else:
            hi = mid
    return -math.log2((lo + hi) / 2)


def markov(samples) -> float:
    """§6.3.3 (binary): the most likely 128-bit sequence under a first-order
    Markov model of the samples, as min-entropy per sample (at most 1)."""
    _check_binary(samples, "Markov")
    n = len(samples)
    if n < 2:
        raise ValueError("the Markov estimate needs at least 2 samples")
    ones = sum(samples)
    p1 = ones / n
    p0 = 1.0 - p1
    import numpy as np

    x = np.frombuffer(bytes(samples), dtype=np.uint8).astype(np.int64)
    pairs = np.bincount(2 * x[:-1] + x[1:], minlength=4)
    c = [[int(pairs[0]), int(pairs[1])], [int(pairs[2]), int(pairs[3])]]  # c[a][b]: a followed by b
    t = [[0.0, 0.0], [0.0, 0.0]]
    for a in (0, 1):
        total = c[a][0] + c[a][1]
        if total:
            t[a][0] = c[a][0] / total
            t[a][1] = c[a][1] / total
    # step 3: the six candidate most likely sequences of 128 bits
    candidates = (
        (p0, ((0, 0, 127),)),
        (p0, ((0, 1, 64), (1, 0, 63))),
        (p0, ((0, 1, 1), (1, 1, 126))),
        (p1, ((1, 0, 1), (0, 0, 126))),
        (p1, ((1, 0, 64), (0, 1, 63))),
        (p1, ((1, 1, 127),)),
    )
    best = -math.inf  # log2 of the largest sequence probability
    for start, steps in candidates:
        if start <= 0.0 or any(t[a][b] <= 0.0 for a, b, _ in steps):
            continue
        log_p = math.log2(start) + sum(k * math.log2(t[a][b]) for a, b, k in steps)
        best = max(best, log_p)
    return min(-best / 128.0, 1.0)


def to_bits(samples, width: int) -> bytes:
    """Each ``width``-bit sample as ``width`` binary samples, most significant bit first."""
    import numpy as np

    bits = np.unpackbits(np.frombuffer(bytes(samples), dtype=np.uint8)).reshape(-1, 8)
    return bits[:, 8 - width:].tobytes()


def assess(samples, width: int) -> dict:
    """The three estimates and the resulting min-entropy per sample.

    Binary (``width`` 1): H = min(MCV, collision, Markov). Otherwise
    H = min(MCV of the samples, width × min of the three on the bitstring).
    """
    samples = bytes(samples)
    if width == 1:
        _check_binary(samples, "binary")
        est = {"mcv": most_common_value(samples), "collision": collision(samples), "markov": markov(samples)}
        return {"estimates": est, "h_original": None, "h_bitstring": None,
                "min_entropy": min(est.values())}
    bits = to_bits(samples, width)
    h_original = most_common_value(samples)
    est = {"mcv": most_common_value(bits), "collision": collision(bits), "markov": markov(bits)}
    h_bits = min(est.values())
    return {"estimates_original": {"mcv": h_original}, "estimates": est, "h_original": h_original,
            "h_bitstring": h_bits, "min_entropy": min(h_original, width * h_bits)}


def bias(samples, width: int) -> dict:
    """Proportion of ones (of all bits for a non-binary source) and the mean sample."""
    n = len(samples)
    mean = sum(samples) / n
    if width == 1:
        ones = mean
    else:
        ones = sum(bin(s).count("1") for s in samples) / (n * width)
    return {"ones": ones, "mean": mean, "expected_mean": ((1 << width) - 1) / 2}


def autocorrelation(samples, lags: int = 32) -> list:
    """Sample autocorrelation r(k) for k = 1..lags (0 for a constant source)."""
    import numpy as np

    x = np.frombuffer(bytes(samples), dtype=np.uint8).astype(np.float64)
    x -= x.mean()
    denom = float(np.dot(x, x))
    if denom == 0.0:
        return [0.0] * lags
    return [float(np.dot(x[:-k], x[k:]) / denom) for k in range(1, lags + 1)]


def running_ones(samples, width: int, points: int = 400) -> tuple:
    """(sample index, cumulative proportion of ones, windowed proportion) at ``points`` places."""
    import numpy as np

    x = np.frombuffer(bytes(samples), dtype=np.uint8)
    if width > 1:
        x = np.unpackbits(x).reshape(-1, 8)[:, 8 - width:].sum(axis=1) / width
    else:
        x = x.astype(np.float64)
    n = len(x)
    cum = np.cumsum(x)
    idx = np.unique(np.linspace(1, n, min(points, n)).astype(int))
    window = max(n // points, 1)
    windowed = [(cum[i - 1] - (cum[i - 1 - window] if i > window else 0)) / min(i, window) for i in idx]
    return [int(i) for i in idx], [float(cum[i - 1] / i) for i in idx], [float(w) for w in windowed]
