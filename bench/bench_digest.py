"""--auth digests: hashlib against the pure-Python SHA-384/512 (ovpnkx.sha512), CPython vs MicroPython.

    .venv/bin/python bench/run.py --only digest      (a section of `make bench`)
    .venv/bin/python bench/bench_digest.py

The boards' stock hashlib has md5, sha1 and sha256 only, so ``auth SHA384/SHA512``
(tls-auth and CBC+HMAC) run on ``ovpnkx.sha512`` there, as on the MicroPython unix port
here. Prints microseconds per hash and per HMAC (``ovpnkx.digest.Hmac``, as tls-auth
and the data channel use it) of a 100-byte and a 1250-byte message (a ping-sized data
packet, a full control packet), for CPython's hashlib, the pure-Python code on CPython,
and MicroPython (hashlib for SHA1/SHA256, the pure code for SHA384/SHA512); the last
column is MicroPython's HMAC time relative to its native SHA256 HMAC. On a board scale
the MicroPython column by the chip's speed (BOARDS.md: 2,000 SHA-256 of 64 B take
485 ms on an RP2040 at 125 MHz). A benchmark, not a test: nothing is asserted.
"""

import json
import sys

from _clock import now as _now, us as _us

MP = sys.implementation.name == "micropython"
DIGESTS = ("SHA1", "SHA256", "SHA384", "SHA512")
SIZES = (100, 1250)
TITLE = "--auth digests: us per hash / HMAC, hashlib vs pure-Python SHA-384/512, CPython vs MicroPython"

if not MP:
    import os
    import subprocess

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(ROOT, "firmware"))


def _time(fn, budget_us):
    n, spent = 0, 0.0
    while spent < budget_us:
        t0 = _now()
        for _ in range(8):
            fn()
        spent += _us(t0, _now())
        n += 8
    return spent / n


def measure(budget_us, pure_too):
    """{"kind|digest|size": us}: kind is hash (native where the runtime has it), pure, hmac."""
    import hashlib

    from ovpnkx import sha512 as pure
    from ovpnkx.digest import Hmac, hash_digest

    out = {}
    for name in DIGESTS:
        mac = Hmac(name, bytes(range(64)))
        for size in SIZES:
            data = bytes(size)
            out["hash|%s|%d" % (name, size)] = _time(lambda: hash_digest(name, data), budget_us)
            out["hmac|%s|%d" % (name, size)] = _time(lambda: mac.digest(data), budget_us)
            if pure_too and name in ("SHA384", "SHA512"):
                ctor = getattr(pure, name.lower())
                out["pure|%s|%d" % (name, size)] = _time(lambda: ctor(data).digest(), budget_us)
    out["native"] = [n for n in DIGESTS if hasattr(hashlib, n.lower())]
    return out


def run(args):
    """bench/run.py section: the table as text (``args.quick``: shorter measurements)."""
    budget_us = 30000 if getattr(args, "quick", False) else 300000
    return _table(budget_us)


def _table(budget_us):
    host = measure(budget_us, True)
    mpy = os.path.join(os.path.dirname(sys.executable), "micropython")
    proc = subprocess.run([mpy, os.path.abspath(__file__), str(budget_us)], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware")))
    if proc.returncode:
        raise RuntimeError("MicroPython run failed:\n" + proc.stderr)
    mp = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = ["MicroPython's hashlib has: %s (SHA384/SHA512 there: ovpnkx.sha512)" % ", ".join(mp["native"]),
             "%-7s %5s | %11s %11s | %11s %11s | %11s %11s | %9s" % (
                 "digest", "bytes", "CPy hash", "CPy HMAC", "CPy pure", "", "MPy hash", "MPy HMAC", "vs SHA256")]
    lines.append("-" * len(lines[-1]))
    for name in DIGESTS:
        for size in SIZES:
            k = "|%s|%d" % (name, size)
            pure = "%11.1f" % host["pure" + k] if "pure" + k in host else "%11s" % "-"
            rel = mp["hmac" + k] / mp["hmac|SHA256|%d" % size]
            lines.append("%-7s %5d | %11.1f %11.1f | %s %11s | %11.1f %11.1f | %8.1fx" % (
                name, size, host["hash" + k], host["hmac" + k], pure, "", mp["hash" + k], mp["hmac" + k], rel))
    lines.append("us per call; 'CPy pure' is ovpnkx.sha512 on CPython (what MicroPython runs for SHA384/512)")
    return "\n".join(lines)


if __name__ == "__main__":
    if MP:
        print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 300000, False)))
    else:
        print(_table(300000))
