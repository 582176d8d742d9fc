"""SP 800-90B estimators on known distributions, and `ovpnkx entropy` end to end."""

import json
import math
import os
import random
import subprocess
import sys

import pytest

from ovpnkx.health_cutoff import apt_cutoff, rct_cutoff
from ovpnkx_host import entropy_report as er
from ovpnkx_host import sp80090b as sp
from ovpnkx_sim.process import SimBoard

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
N = 200000


def _bits(p, n=N, seed=1):
    r = random.Random(seed)
    return bytes(1 if r.random() < p else 0 for _ in range(n))


def _sticky(r_repeat, n=N, seed=2):
    """Fair fresh bits, each repeating the previous one with probability r_repeat."""
    r = random.Random(seed)
    out = bytearray(n)
    prev = r.getrandbits(1)
    for i in range(n):
        prev = prev if r.random() < r_repeat else r.getrandbits(1)
        out[i] = prev
    return bytes(out)


@pytest.mark.parametrize("p", [0.5, 0.6, 0.8, 0.95])
def test_iid_biased_bits(p):
    s = _bits(p)
    truth = -math.log2(max(p, 1 - p))
    mcv = sp.most_common_value(s)
    # the MCV bound sits just below the truth (an upper confidence bound on p)
    assert truth - 0.012 < mcv <= truth + 0.003, (mcv, truth)
    assert abs(sp.markov(s) - truth) < 0.015
    assert truth - 0.06 < sp.collision(s) <= truth + 0.01
    res = sp.assess(s, 1)
    assert res["min_entropy"] == min(res["estimates"].values())


def test_stuck_source_has_no_entropy():
    for s in (bytes(5000), b"\x01" * 5000):
        assert sp.most_common_value(s) == 0.0
        assert sp.collision(s) == 0.0
        assert sp.markov(s) == 0.0
    assert er.cutoffs(0.0, True) is None


def test_markov_sees_correlation_that_mcv_misses():
    s = _sticky(0.4)  # P(same as before) = 0.4 + 0.6 / 2 = 0.7
    assert sp.most_common_value(s) > 0.98
    assert abs(sp.markov(s) - -math.log2(0.7)) < 0.015
    alternating = b"\x00\x01" * 50000
    # only the first bit of 128 is uncertain: -log2(P0 = 1/2) / 128
    assert sp.markov(alternating) == 1 / 128 and sp.most_common_value(alternating) > 0.97


def test_collision_expectation_is_the_standards_formula():
    for p in (0.5, 0.6, 0.75, 0.9, 0.99):
        assert abs(sp._collision_expectation(p) - (2 + 2 * p * (1 - p))) < 1e-9  # E[t] = 2 + 2pq


def test_non_binary_uses_the_bitstring():
    r = random.Random(3)
    uniform = bytes(r.getrandbits(8) for _ in range(50000))
    res = sp.assess(uniform, 8)
    assert 7.0 < res["h_original"] < 8.0 and 0.85 < res["h_bitstring"] <= 1.0
    assert res["min_entropy"] == min(res["h_original"], 8 * res["h_bitstring"])
    top_bit_stuck = bytes(b & 0x7F for b in uniform)  # 7 good bits of 8
    res = sp.assess(top_bit_stuck, 8)
    assert res["h_original"] > 6.5 and res["min_entropy"] <= 8 * res["h_bitstring"]
    assert sp.to_bits(b"\x05", 4) == b"\x00\x01\x00\x01"
    with pytest.raises(ValueError):
        sp.markov(b"\x00\x02")


def test_bias_and_autocorrelation():
    assert abs(sp.bias(_bits(0.7, 20000), 1)["ones"] - 0.7) < 0.02
    acf = sp.autocorrelation(_sticky(0.5, 50000), 4)
    assert abs(acf[0] - 0.5) < 0.03 and abs(acf[1] - 0.25) < 0.03
    assert sp.autocorrelation(bytes(100), 3) == [0.0, 0.0, 0.0]
    assert max(abs(v) for v in sp.autocorrelation(_bits(0.5, 50000), 32)) < 0.02


def test_parse_capture_unpacks_bits_and_reports_board_errors():
    text = "junk\nOVPNKX-NOISE SimTrng 1 1 0.5\nD" + "a0" + "ff" + "\nOVPNKX-END 12\n"
    cap = er.parse_capture(text, "x", "sim")
    assert cap.samples == bytes([1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1]) and cap.claim == 0.5 and cap.binary
    with pytest.raises(er.CaptureError, match="EntropyError"):
        er.parse_capture("OVPNKX-NOISE Esp32Rng 8 0 2.0\nOVPNKX-ERROR EntropyError RF off\n", "x", "esp32")
    with pytest.raises(er.CaptureError, match="no complete capture"):
        er.parse_capture("OVPNKX-NOISE SimTrng 1 1 0.5\nD00\n", "x", "sim")


def test_report_for_a_byte_source(tmp_path):
    r = random.Random(4)
    cap = er.Capture("fake", "esp32", "Esp32Rng", 8, False, 2.0, bytes(r.getrandbits(8) for _ in range(20000)))
    report = er.analyse(cap)
    er.write_report(cap, report, str(tmp_path))
    assert report["supports_claim"] and report["cutoffs"]["apt_window"] == 512
    for name in ("report.md", "report.json", "histogram.png", "autocorrelation.png", "running_bias.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "bitstring" in (tmp_path / "report.md").read_text()


def _entropy(tmp_path, device, samples=20000):
    out = tmp_path / "report"
    proc = subprocess.run([OVPNKX, "entropy", "--device", device, "--samples", str(samples), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    return proc, out


def test_end_to_end_on_the_simulated_board(tmp_path):
    proc, out = _entropy(tmp_path, "sim:sim")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("report.md", "report.json", "histogram.png", "autocorrelation.png", "running_bias.png"):
        assert (out / name).stat().st_size > 1000 or name.endswith(".json"), name
    with open(out / "histogram.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 20000 and report["source"] == "SimTrng" and report["bits_per_sample"] == 1
    assert report["claim"] == 0.5 and len(report["autocorrelation"]) == 32
    # SimTrng: P(1) = 0.52 and 5% stickiness, i.e. about 0.88 bits; the estimators at 20000
    # samples (collision's confidence bound is wide) land between the claim and 1
    h = report["min_entropy"]
    assert 0.5 < h <= 1.0 and report["supports_claim"]
    assert 0.5 < report["bias"]["ones"] < 0.55 and report["autocorrelation"][0] > 0.02
    assert report["cutoffs"] == {"h": h, "rct": rct_cutoff(h), "apt": apt_cutoff(h, 1024), "apt_window": 1024}
    assert "RCT cutoff %d, APT cutoff %d of 1024" % (rct_cutoff(h), apt_cutoff(h, 1024)) in proc.stdout
    assert "RCT cutoff 41, APT cutoff 793 of 1024" in proc.stdout  # the claim's, as boards/sim/noise.py has


def test_end_to_end_stuck_and_failures(tmp_path):
    proc, out = _entropy(tmp_path, "sim:sim:stuck", 5000)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["min_entropy"] == 0.0 and report["cutoffs"] is None and report["supports_claim"] is False
    assert "no entropy" in proc.stdout
    proc, _ = _entropy(tmp_path, "sim:nosuchboard", 5000)
    assert proc.returncode == 1 and "did not start" in proc.stderr
    proc, _ = _entropy(tmp_path, "sim:sim", 10)
    assert proc.returncode == 2


def test_end_to_end_over_a_serial_port(tmp_path):
    """DEVICE as a serial port: the REPL of a running (simulated) Pico, as with a real board."""
    with SimBoard("rp2040", "--trng-fault", "bias=0.92") as sim:
        proc, out = _entropy(tmp_path, sim.info["repl"], 20000)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["board"].startswith("unknown (serial /dev/")
    # the Pico's own ROSC driver reads the modelled RANDOMBIT, whose noise model is biased
    # to P(1) = 0.92 (plus the model's 5% repeats): MCV near -log2(0.92) = 0.12, below the
    # ROSC driver's claim of 0.2 bits per sample
    assert 0.09 < report["estimates"]["mcv"] < 0.13 and not report["supports_claim"]
