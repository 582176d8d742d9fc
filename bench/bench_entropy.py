"""Entropy chain throughput per board profile, on the MicroPython unix port.

    .venv/bin/python bench/run.py --only entropy        (a section of `make bench`)
    .venv/bin/python bench/bench_entropy.py [--quick]

For each board the board's own ``noise.make_entropy()`` (boards/<b>/noise.py:
its noise class, claim and cutoffs) runs the whole chain, noise -> SP 800-90B
health tests -> SHA-256 conditioning -> HMAC_DRBG, under
``.venv/bin/micropython`` with MICROPYPATH=firmware:boards/<b>. Boards with
hardware read a fake register file instead of ``machine.mem32``; each fake
read is one method call returning a precomputed value, about what a
``mem32[addr]`` subscript costs, so the figures measure the chain:

- esp32: RNG_DATA_REG words, uniform (the register is whitened by hardware;
  RF counted as on); 8-bit samples, claim 2 bits.
- rp2040: ROSC RANDOMBIT, one register read per bit, bits with P(1) = 0.55 and
  10% repeats (a ring oscillator sampled fast); claim 0.2 bits.
- rp2350: TRNG EHR_DATA0..5 (192 raw bits per fill, EHR_VALID always set),
  bits with P(1) = 0.52 and 5% repeats; claim 0.5 bits.
- sim: the simulated board's SimTrng itself (its model, 4 bytes of os.urandom
  per bit, is what the sim board runs; no registers); claim 0.5 bits.
- host: ``HostEntropy`` (os.urandom), the baseline of the ratios.

Two workloads: a *stream* of 32-byte requests (the DRBG reseeds from noise
every 1024 requests) and *key_state*s: ``reseed()`` then 112 bytes (a
client's pre_master + random1 + random2), as the session does for each new
key_state. The time inside ``HealthTests.feed`` and inside the noise source's
``read_samples`` is measured in place; the rest is SHA-256 conditioning, the
HMAC_DRBG and glue. The unix port on this host is far faster than a 133-240
MHz MCU: the absolute figures are the host's, the shares carry over roughly.
A benchmark, not a test: nothing is asserted about speed.
"""

import json
import sys

from _clock import now as _now, us as _us

MP = sys.implementation.name == "micropython"
BOARDS = ("esp32", "rp2040", "rp2350", "sim")
TITLE = "Entropy chain (noise -> health tests -> SHA-256 -> HMAC_DRBG): bytes/s per board, MicroPython"

if not MP:
    import os
    import subprocess

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- MicroPython side -------------------------------------------------------------------------

class _Timed:
    """Wraps a callable, summing the microseconds spent in it."""

    def __init__(self, fn):
        self.fn = fn
        self.us = 0

    def __call__(self, *args):
        t0 = _now()
        r = self.fn(*args)
        self.us += _us(t0, _now())
        return r


class _FakeRegs:
    """Registers: ``data`` addresses cycle through ``values``; others read from ``fixed``."""

    def __init__(self, data, values, fixed):
        self.data = data
        self.values = values
        self.n = len(values)
        self.i = 0
        self.fixed = fixed

    def read(self, addr):
        if addr in self.data:
            i = self.i
            self.i = i + 1 if i + 1 < self.n else 0
            return self.values[i]
        return self.fixed.get(addr, 0)

    def write(self, addr, value):
        pass


def _model_bits(n, bias, correlation):
    from ovpnkx.noise import SimTrng

    return SimTrng(bias=bias, correlation=correlation).read_samples(n)


def _make(board):
    """(entropy, what the noise is)."""
    import os as _os

    import noise  # boards/<board>/noise.py, on MICROPYPATH

    if board == "host":
        from ovpnkx.entropy import HostEntropy

        return HostEntropy()
    if board == "esp32":
        from ovpnkx.noise import RNG_DATA_ESP32

        raw = _os.urandom(4 * 4096)
        words = [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]
        regs = _FakeRegs((RNG_DATA_ESP32,), words, {})
        return noise.make_entropy(regs=regs, rf_active=lambda: True, personalization=b"bench")
    if board == "rp2040":
        from ovpnkx.noise import ROSC_BASE_RP2040

        bits = list(_model_bits(16384, 0.55, 0.10))
        regs = _FakeRegs((ROSC_BASE_RP2040 + 0x1C,), bits, {ROSC_BASE_RP2040 + 0x18: 0x80001000})
        return noise.make_entropy(regs=regs, personalization=b"bench")
    if board == "rp2350":
        from ovpnkx.noise import TRNG_BASE_RP2350

        bits = _model_bits(32 * 1536, 0.52, 0.05)
        words = []
        for w in range(1536):
            v = 0
            for b in range(32):
                v |= bits[32 * w + b] << b
            words.append(v)
        ehr = tuple(TRNG_BASE_RP2350 + 0x114 + 4 * i for i in range(6))
        regs = _FakeRegs(ehr, words, {TRNG_BASE_RP2350 + 0x110: 1})
        return noise.make_entropy(regs=regs, personalization=b"bench")
    return noise.make_entropy(personalization=b"bench")  # sim: SimTrng over os.urandom


def _instrument(e):
    health = getattr(e, "health", None)
    src = getattr(e, "_noise", None)
    timers = {}
    if health is not None:
        timers["health"] = health.feed = _Timed(health.feed)
        timers["noise"] = src.read_samples = _Timed(src.read_samples)
    return timers


def _take(timers):
    out = {k: t.us for k, t in timers.items()}
    for t in timers.values():
        t.us = 0
    return out


def _samples(e):
    h = getattr(e, "health", None)
    return h.samples_tested if h is not None else 0


def _mp_main(board, quick):
    import gc

    e = _make(board)
    timers = _instrument(e)
    res = {"board": board, "claim": getattr(e, "h", None),
           "noise": type(getattr(e, "_noise", e)).__name__}
    gc.collect()
    t0 = _now()
    if hasattr(e, "startup"):
        e.startup()
    res["startup_us"] = _us(t0, _now())
    res["startup_parts"] = _take(timers)
    res["startup_samples"] = _samples(e)

    calls = 1100 if quick else 8300  # crosses the reseed interval (1024 requests) once / eight times
    gc.collect()
    s0 = _samples(e)
    t0 = _now()
    for _ in range(calls):
        e.random_bytes(32)
    res["stream_us"] = _us(t0, _now())
    res["stream_bytes"] = 32 * calls
    res["stream_parts"] = _take(timers)
    res["stream_samples"] = _samples(e) - s0

    keys = 20 if quick else 400
    gc.collect()
    s0 = _samples(e)
    t0 = _now()
    for _ in range(keys):
        e.reseed()
        e.random_bytes(48)
        e.random_bytes(32)
        e.random_bytes(32)
    res["key_us"] = _us(t0, _now())
    res["keys"] = keys
    res["key_parts"] = _take(timers)
    res["key_samples"] = (_samples(e) - s0) // keys
    print(json.dumps(res))


# -- host side ------------------------------------------------------------------------------------

def _run_board(board, quick):
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    folder = os.path.join(ROOT, "boards", "sim" if board == "host" else board)
    env = dict(os.environ, MICROPYPATH=":".join((os.path.join(ROOT, "firmware"), folder)))
    proc = subprocess.run([mp, os.path.abspath(__file__), board] + (["quick"] if quick else []),
                          capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode:
        raise RuntimeError("MicroPython run for %s failed:\n%s%s" % (board, proc.stdout, proc.stderr))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pct(parts, key, total):
    return "%5.1f%%" % (100.0 * parts[key] / total) if key in parts and total else "    -"


def table(results):
    """The section's text from the per-board results."""
    host = next((r for r in results if r["board"] == "host"), None)
    lines = [
        "stream: 32-byte requests (noise reseeds every 1024); key_state: reseed() + 112 bytes, as a session does;",
        "/urandom: key_states/s relative to os.urandom (HostEntropy) on the same runtime.",
        "noise/health/rest: share of each workload's time in read_samples, HealthTests.feed, and"
        " SHA-256 + HMAC_DRBG + glue.",
    ]
    head = ("%-7s %-11s %5s | %9s %7s | %10s %6s %6s | %9s %7s %8s %6s %6s %6s"
            % ("board", "noise", "h", "start ms", "samples", "stream B/s", "noise", "health",
               "keys/s", "samples", "/urandom", "noise", "health", "rest"))
    lines.append(head)
    lines.append("-" * len(head))
    for r in results:
        st = r["stream_us"]
        ks = r["key_us"]
        kps = r["keys"] / (ks / 1e6)
        ratio = "%7.3fx" % (kps / (host["keys"] / (host["key_us"] / 1e6))) if host else "-"
        kp = r["key_parts"]
        rest = ("%5.1f%%" % (100.0 * (ks - kp["noise"] - kp["health"]) / ks)) if "noise" in kp else "    -"
        lines.append("%-7s %-11s %5s | %9.1f %7d | %10.0f %6s %6s | %9.1f %7d %8s %6s %6s %6s" % (
            r["board"], r["noise"], "%.1f" % r["claim"] if r["claim"] else "-", r["startup_us"] / 1000.0,
            r["startup_samples"], r["stream_bytes"] / (st / 1e6), _pct(r["stream_parts"], "noise", st),
            _pct(r["stream_parts"], "health", st), kps, r["key_samples"], ratio,
            _pct(kp, "noise", ks), _pct(kp, "health", ks), rest))
    worst = max((r["key_parts"]["health"] / r["key_us"], r["board"]) for r in results if "health" in r["key_parts"])
    lines.append("largest health-test share: %.1f%% of a key_state on %s (aim: under 10%%)"
                 % (100.0 * worst[0], worst[1]))
    return "\n".join(lines)


def run(args):
    """bench/run.py section: the table as text (``args.quick``: shorter runs)."""
    quick = bool(getattr(args, "quick", False))
    return table([_run_board(b, quick) for b in BOARDS + ("host",)])


if __name__ == "__main__":
    if MP:
        _mp_main(sys.argv[1], len(sys.argv) > 2)
    else:
        class _Args:
            quick = "--quick" in sys.argv

        print(run(_Args()))
