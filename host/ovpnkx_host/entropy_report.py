"""`ovpnkx entropy`: capture a board's raw noise samples and assess them.

DEVICE is ``sim:BOARD[:FAULT]`` (a simulated board is started as by
``ovpnkx sim start --board BOARD --trng-fault FAULT`` and stopped after) or
the serial port of a board running MicroPython with the ovpnkx firmware
(its REPL, driven with mpremote). On the board a capture script reads the
source under ``board_entropy()`` (``ovpnkx_device.entropy_select.board_noise``)
raw: no health tests, no conditioning.

The report (``report.md``, ``report.json``, three PNGs) gives the SP 800-90B
min-entropy estimates (most common value, collision, Markov; see
``ovpnkx_host.sp80090b``), bias, autocorrelation at lags 1..32, and the
health-test cutoffs the estimate implies next to those of the board's claim.
These estimators are a subset of the standard's non-IID track: a result above
the claim is evidence, not a certification.
"""

import argparse
import binascii
import json
import os
import subprocess

from ovpnkx_sim.process import SimBoard, SimStartError
import sys

from ovpnkx.health import WINDOW_BINARY, WINDOW_NON_BINARY
from ovpnkx.health_cutoff import apt_cutoff, rct_cutoff

from . import sp80090b

LAGS = 32
_CHUNK = 1024  # samples per printed line (a multiple of 8: binary samples are packed)

# Runs on the board (MicroPython). {n} is the sample count.
CAPTURE_SCRIPT = """
import binascii
try:
    import network
    network.WLAN(network.STA_IF).active(True)  # ESP32: its RNG is a TRNG only while RF runs
except Exception:
    pass
try:
    from ovpnkx_device.entropy_select import board_noise
    src = board_noise()
except Exception as exc:
    print("OVPNKX-ERROR", type(exc).__name__, exc)
    raise SystemExit
print("OVPNKX-NOISE", type(src).__name__, src.bits_per_sample, 1 if src.binary else 0,
      getattr(src, "MIN_ENTROPY_CLAIM", 0))
n = {n}
done = 0
while done < n:
    k = n - done if n - done < {chunk} else {chunk}
    try:
        s = src.read_samples(k)
    except Exception as exc:
        print("OVPNKX-ERROR", type(exc).__name__, exc)
        raise SystemExit
    if src.binary:
        packed = bytearray((k + 7) // 8)
        for i in range(k):
            if s[i]:
                packed[i >> 3] |= 0x80 >> (i & 7)
        s = packed
    print("D" + binascii.hexlify(s).decode())
    done += k
print("OVPNKX-END", done)
"""


class CaptureError(Exception):
    """The board could not deliver samples (the message says why)."""


class Capture:
    """Raw samples (one per byte) and what the board said about its source."""

    def __init__(self, device: str, board: str, source: str, width: int, binary: bool, claim: float,
                 samples: bytes) -> None:
        self.device = device
        self.board = board
        self.source = source
        self.width = width
        self.binary = binary
        self.claim = claim
        self.samples = samples


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx entropy`."""
    p.add_argument("--device", required=True, metavar="DEVICE",
                   help="sim:BOARD[:FAULT] (a simulated board) or a serial port of a MicroPython board")
    p.add_argument("--samples", type=int, default=100000, metavar="N", help="raw samples to capture")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.md, report.json and plots")


# -- capture -------------------------------------------------------------------------

def parse_capture(text: str, device: str, board: str) -> Capture:
    """Samples from the capture script's output."""
    header = None
    chunks = []
    end = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("OVPNKX-ERROR"):
            raise CaptureError("the board's noise source failed: " + line[len("OVPNKX-ERROR "):])
        if line.startswith("OVPNKX-NOISE"):
            header = line.split()[1:]
        elif line.startswith("OVPNKX-END"):
            end = int(line.split()[1])
        elif line.startswith("D") and header is not None and end is None:
            chunks.append(binascii.unhexlify(line[1:]))
    if header is None or end is None:
        raise CaptureError("no complete capture from %s:\n%s" % (device, text[-2000:]))
    source, width, binary, claim = header[0], int(header[1]), header[2] == "1", float(header[3])
    data = b"".join(chunks)
    if binary:
        import numpy as np

        data = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:end].tobytes()
    if len(data) != end:
        raise CaptureError("capture from %s: %d samples announced, %d received" % (device, end, len(data)))
    return Capture(device, board, source, width, binary, claim, data)


def _exec_on(port: str, n: int) -> str:
    script = CAPTURE_SCRIPT.format(n=n, chunk=_CHUNK)
    proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", script],
                          capture_output=True, text=True, timeout=120 + n // 2000)
    return proc.stdout + proc.stderr


def capture(device: str, n: int) -> Capture:
    """``n`` raw samples from ``device`` (``sim:BOARD[:FAULT]`` or a serial port)."""
    if device.startswith("sim:"):
        _, _, rest = device.partition(":")
        board, _, fault = rest.partition(":")
        try:
            sim = SimBoard(board or "sim", *(("--trng-fault", fault) if fault else ()))
        except SimStartError as exc:
            raise CaptureError(str(exc))
        with sim:
            text = _exec_on(sim.info["repl"], n)
        return parse_capture(text, device, board or "sim")
    return parse_capture(_exec_on(device, n), device, "unknown (serial %s)" % device)


# -- assessment ------------------------------------------------------------------------

def cutoffs(h: float, binary: bool) -> "dict | None":
    """The health-test cutoffs for min-entropy h per sample (None when h is 0)."""
    window = WINDOW_BINARY if binary else WINDOW_NON_BINARY
    if not h > 0.0:
        return None
    return {"h": h, "rct": rct_cutoff(h), "apt": apt_cutoff(h, window), "apt_window": window}


def analyse(cap: Capture) -> dict:
    """Everything report.json holds."""
    s = cap.samples
    result = sp80090b.assess(s, cap.width)
    h = max(0.0, result["min_entropy"])
    acf = sp80090b.autocorrelation(s, LAGS)
    report = {
        "device": cap.device, "board": cap.board, "source": cap.source, "samples": len(s),
        "bits_per_sample": cap.width, "binary": cap.binary, "claim": cap.claim,
        "estimates": {k: max(0.0, v) for k, v in result["estimates"].items()},
        "estimates_on": "samples" if cap.width == 1 else "bitstring (each sample as %d bits)" % cap.width,
        "h_original": result["h_original"], "h_bitstring": result["h_bitstring"],
        "min_entropy": h,
        "supports_claim": h >= cap.claim if cap.claim else None,
        "bias": sp80090b.bias(s, cap.width),
        "autocorrelation": acf,
        "autocorrelation_bound_99": sp80090b.Z_ALPHA / len(s) ** 0.5,
        "cutoffs": cutoffs(h, cap.binary),
        "claim_cutoffs": cutoffs(cap.claim, cap.binary) if cap.claim else None,
        "plots": ["histogram.png", "autocorrelation.png", "running_bias.png"],
    }
    return report


# -- output ------------------------------------------------------------------------------

def plot(cap: Capture, report: dict, out: str) -> None:
    """histogram.png, autocorrelation.png and running_bias.png in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(cap.samples)
    title = "%s on %s" % (cap.source, cap.board)
    values = np.frombuffer(cap.samples, dtype=np.uint8)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    k = 1 << cap.width
    counts = np.bincount(values, minlength=k)[:k]
    ax.bar(range(k), counts, width=0.6 if k == 2 else 1.0, color="#4878a8", label="observed")
    ax.axhline(n / k, color="#c0392b", linestyle="--", label="uniform: %.0f" % (n / k))
    if k == 2:
        ax.set_xticks([0, 1])
        for v in (0, 1):
            ax.annotate("%d\n(%.2f%%)" % (counts[v], 100.0 * counts[v] / n), (v, counts[v] / 2),
                        ha="center", va="center", fontsize=12, color="white")
    ax.set_xlabel("sample value")
    ax.set_ylabel("count")
    ax.set_title("Histogram of %d raw samples\n%s" % (n, title))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "histogram.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    lags = np.arange(1, len(report["autocorrelation"]) + 1)
    bound = report["autocorrelation_bound_99"]
    ax.axhspan(-bound, bound, color="#bbbbbb", alpha=0.5, label="99%% band for independent samples (±%.4f)" % bound)
    ax.stem(lags, report["autocorrelation"], basefmt="k-")
    ax.set_xlabel("lag (samples)")
    ax.set_ylabel("autocorrelation r(lag)")
    ax.set_xlim(0.3, lags[-1] + 0.7)
    ax.set_title("Autocorrelation, lags 1..%d\n%s" % (lags[-1], title))
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "autocorrelation.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=100)
    points = 200
    idx, cum, windowed = sp80090b.running_ones(cap.samples, cap.width, points)
    window = max(n // points, 1)
    keep = [i for i, x in enumerate(idx) if x >= window]  # skip the first, tiny prefixes
    idx = np.array([idx[i] for i in keep])
    cum = np.array([cum[i] for i in keep])
    windowed = np.array([windowed[i] for i in keep])
    bits = idx * cap.width
    band = sp80090b.Z_ALPHA * 0.5 / np.sqrt(bits)
    ax.fill_between(idx, 0.5 - band, 0.5 + band, color="#bbbbbb", alpha=0.5,
                    label="99% band of an unbiased source")
    ax.plot(idx, windowed, color="#9fb8d0", linewidth=0.8, label="each block of %d samples" % window)
    ax.plot(idx, cum, color="#1f4e79", linewidth=2.2, label="all samples so far: %.4f" % cum[-1])
    ax.axhline(0.5, color="#c0392b", linestyle="--", linewidth=1, label="unbiased: 0.5")
    ax.set_xlabel("samples read")
    ax.set_ylabel("proportion of one bits")
    spread = max(0.1, 1.15 * float(np.max(np.abs(np.concatenate([windowed, cum]) - 0.5))))
    ax.set_ylim(max(-0.02, 0.5 - spread), min(1.02, 0.5 + spread))
    ax.set_title("Running bias\n%s" % title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "running_bias.png"))
    plt.close(fig)


def _fmt_cutoffs(c: "dict | None") -> str:
    if c is None:
        return "none (no entropy: no cutoff can pass this source)"
    return "RCT cutoff %d, APT cutoff %d of %d (h = %.4f bits/sample, α = 2^-20)" % (
        c["rct"], c["apt"], c["apt_window"], c["h"])


def markdown(report: dict) -> str:
    """report.md."""
    r = report
    est = r["estimates"]
    lines = [
        "# Noise source assessment: %s on %s" % (r["source"], r["board"]), "",
        "Device `%s`, %d raw samples of %d bit%s (not health-tested, not conditioned)."
        % (r["device"], r["samples"], r["bits_per_sample"], "" if r["bits_per_sample"] == 1 else "s"), "",
        "## Min-entropy (SP 800-90B §6.3.1–6.3.3)", "",
        "| estimator | bits per %s |" % ("sample" if r["bits_per_sample"] == 1 else "bit"),
        "| --- | ---: |",
        "| most common value (§6.3.1) | %.4f |" % est["mcv"],
        "| collision (§6.3.2) | %.4f |" % est["collision"],
        "| Markov (§6.3.3) | %.4f |" % est["markov"],
    ]
    if r["h_original"] is not None:
        lines += ["", "Non-binary source: the estimators ran on the bitstring; MCV on the samples "
                  "gives %.4f bits/sample; H = min(%.4f, %d × %.4f)."
                  % (r["h_original"], r["h_original"], r["bits_per_sample"], r["h_bitstring"])]
    verdict = ""
    if r["supports_claim"] is not None:
        verdict = (" This supports the firmware's claim of %s bits/sample." if r["supports_claim"]
                   else " This is BELOW the firmware's claim of %s bits/sample.") % r["claim"]
    lines += ["", "**Estimate: %.4f bits of min-entropy per sample.**%s" % (r["min_entropy"], verdict), "",
              "## Health-test cutoffs", "",
              "- implied by the estimate: " + _fmt_cutoffs(r["cutoffs"]),
              "- of the firmware's claim: " + _fmt_cutoffs(r["claim_cutoffs"]), "",
              "## Bias and correlation", "",
              "- proportion of one bits: %.4f (mean sample %.3f, unbiased %.1f)"
              % (r["bias"]["ones"], r["bias"]["mean"], r["bias"]["expected_mean"]),
              "- autocorrelation: largest |r| %.4f at lag %d (99%% band for independent samples: ±%.4f)"
              % (_largest(r["autocorrelation"]) + (r["autocorrelation_bound_99"],)),
              "- lags 1..8: " + ", ".join("%.4f" % v for v in r["autocorrelation"][:8]), "",
              "![histogram](histogram.png)", "", "![autocorrelation](autocorrelation.png)", "",
              "![running bias](running_bias.png)", "",
              "These three estimators are a subset of SP 800-90B's non-IID track (which also has the "
              "t-tuple, LRS, compression and predictor estimates): treat the result as evidence for "
              "or against the claim, not as a certification.", ""]
    return "\n".join(lines)


def _largest(acf: list) -> tuple:
    k = max(range(len(acf)), key=lambda i: abs(acf[i]))
    return acf[k], k + 1


def write_report(cap: Capture, report: dict, out: str) -> None:
    """report.json, report.md and the plots in ``out`` (created)."""
    os.makedirs(out, exist_ok=True)
    plot(cap, report, out)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown(report))


def run(args: argparse.Namespace) -> int:
    """Capture, assess, write the report, print the summary and the cutoffs."""
    if args.samples < 1000:
        print("ovpnkx entropy: --samples must be at least 1000", file=sys.stderr)
        return 2
    try:
        cap = capture(args.device, args.samples)
    except (CaptureError, subprocess.TimeoutExpired, OSError) as exc:
        print("ovpnkx entropy: %s" % exc, file=sys.stderr)
        return 1
    report = analyse(cap)
    write_report(cap, report, args.out)
    est = report["estimates"]
    print("%s on %s: %d samples of %d bit(s)" % (cap.source, cap.board, len(cap.samples), cap.width))
    print("  MCV %.4f  collision %.4f  Markov %.4f%s" % (
        est["mcv"], est["collision"], est["markov"], "" if cap.width == 1 else " (per bit)"))
    print("  min-entropy: %.4f bits/sample (claim %s)" % (report["min_entropy"], cap.claim))
    print("  bias: %.4f ones; autocorrelation lag 1: %.4f" % (report["bias"]["ones"], report["autocorrelation"][0]))
    print("  cutoffs implied by the estimate: " + _fmt_cutoffs(report["cutoffs"]))
    print("  cutoffs of the claim:            " + _fmt_cutoffs(report["claim_cutoffs"]))
    print("  report: %s" % os.path.join(args.out, "report.md"))
    return 0
