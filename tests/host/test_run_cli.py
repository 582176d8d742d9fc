"""`ovpnkx run` (`make run`) end to end: a simulated Pico, flashed, key exchange over its UART."""

import os
import re
import subprocess
import sys

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")


def test_ovpnkx_run_both_sides_agree():
    proc = subprocess.run([OVPNKX, "run", "--pings", "1"], capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    fp = re.search(r"^key2 fingerprint\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s*$", out, re.M)
    assert fp and fp.group(1) == fp.group(2), out
    assert "OK: the key fingerprints agree (%s on both sides)" % fp.group(1) in out
    assert re.search(r"^cipher\s+AES-256-GCM\s+AES-256-GCM\s*$", out, re.M), out
    for state in ("S_PRE_START", "S_START", "S_SENT_KEY", "S_GOT_KEY", "S_GENERATED_KEYS"):
        assert re.search(r"^  %s\s+\d+\s+\d+\s*$" % state, out, re.M), (state, out)
    bound = re.search(r"handshake bytes on the wire\s+(\d+) B.*\n.*lower bound.*?(\d+) ms", out)
    assert bound and int(bound.group(2)) == round(int(bound.group(1)) * 10 * 1000 / 115200), out
    print(out)


def test_ovpnkx_run_refuses_bad_flags():
    proc = subprocess.run([OVPNKX, "run", "--pings", "0"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--pings >= 1" in proc.stderr
