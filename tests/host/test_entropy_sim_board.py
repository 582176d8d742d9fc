"""board_entropy() on simulated boards, driven with mpremote as on hardware."""

import os
import subprocess
import sys

from ovpnkx_sim.process import SimBoard

BIN = os.path.dirname(sys.executable)
OVPNKX = os.path.join(BIN, "ovpnkx")
MPREMOTE = os.path.join(BIN, "mpremote")

SCRIPT = ("from ovpnkx_device.entropy_select import board_entropy, describe\n"
          "e = board_entropy()\n"
          "print(describe(e))\n"
          "print(len(e.random_bytes(8)))\n")


def _on_board(board, *sim_args):
    """Start `ovpnkx sim start *sim_args`, exec SCRIPT with mpremote, stop; (rc, output)."""
    with SimBoard(board, *sim_args) as sim:
        run = subprocess.run([MPREMOTE, "connect", sim.info["repl"], "exec", SCRIPT], capture_output=True,
                             text=True, timeout=60)
        return run.returncode, run.stdout + run.stderr


def test_stuck_sim_board_refuses_random_bytes():
    rc, out = _on_board("sim", "--trng-fault", "stuck")
    assert rc == 1, out
    assert "EntropyError: entropy source failed: start-up test: repetition count test (RCT)" in out, out
    assert "TrngEntropy over SimTrng: entropy source failed" in out


def test_healthy_sim_board_and_a_simulated_pico():
    rc, out = _on_board("sim")
    assert rc == 0 and out.split() == ["TrngEntropy", "over", "SimTrng:", "ok", "8"], out
    # the sim models no ROSC registers: the modelled TRNG stands in, faults included
    rc, out = _on_board("rp2040", "--trng-fault", "repeat=50")
    assert rc == 1 and "repetition count test (RCT)" in out, out
