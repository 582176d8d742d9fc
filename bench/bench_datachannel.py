"""Data-channel throughput per cipher, CPython vs the MicroPython unix port.

    .venv/bin/python bench/run.py --only datachannel      (a section of `make bench`)
    .venv/bin/python bench/bench_datachannel.py [payload_bytes ...]

Prints packets/s for encrypt and decrypt (client -> server) per cipher and runtime,
and the CPython/MicroPython ratio. The same file runs under MicroPython (started here
with MICROPYPATH=firmware), where it prints its results as JSON. A benchmark, not a
test: nothing is asserted about speed.
"""

import gc
import json
import sys

from _clock import now as _now, us as _us


def _seconds(t0, t1):
    return _us(t0, t1) / 1e6


MP = sys.implementation.name == "micropython"
CIPHERS = ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305", "AES-128-CBC", "AES-256-CBC"]
KEY2 = bytes((i * 37 + 11) & 0xFF for i in range(256))

if not MP:
    import os
    import subprocess

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(ROOT, "firmware"))


class _Key:
    def __init__(self, raw):
        self.cipher = raw[:64]
        self.hmac = raw[64:128]


def _measure(backend, cipher, size, budget_s):
    """(encrypt, decrypt) packets/s, in rounds of 256 packets (bounded memory)."""
    from ovpnkx.datachannel import DataChannel

    k0, k1 = _Key(KEY2[:128]), _Key(KEY2[128:])
    payload = bytes(size)
    n = 0
    t_enc = t_dec = 0.0
    while t_enc + t_dec < budget_s:
        gc.collect()
        client = DataChannel(backend, cipher, "SHA1", k0, k1, 0, 7)
        server = DataChannel(backend, cipher, "SHA1", k1, k0, 0, 7)
        t0 = _now()
        pkts = [client.encrypt(payload) for _ in range(256)]
        t1 = _now()
        for p in pkts:
            server.decrypt(p)
        t2 = _now()
        t_enc += _seconds(t0, t1)
        t_dec += _seconds(t1, t2)
        n += 256
    return n / t_enc, n / t_dec


TITLE = "Data channel: packets/s per cipher, CPython vs MicroPython"
BUDGET_S = 0.5  # seconds of encrypt+decrypt per (runtime, cipher, size); --quick: QUICK_BUDGET_S
QUICK_BUDGET_S = 0.1


def measure_all(backends, sizes, budget_s):
    out = {}
    for label, backend in backends:
        for cipher in CIPHERS:
            if not backend.supports(cipher):
                continue
            for size in sizes:
                out["%s|%s|%d" % (label, cipher, size)] = _measure(backend, cipher, size, budget_s)
    return out


def _mp_main():
    from ovpnkx import ghash_full
    from ovpnkx.crypto_mp import MicroPythonCrypto

    args = [float(a) for a in sys.argv[1:]]
    budget = args.pop(0) if args else BUDGET_S
    sizes = [int(a) for a in args] or [100, 1400]
    res = measure_all([("micropython", MicroPythonCrypto())], sizes, budget)
    print(json.dumps({"ghash": ghash_full.ghash_backend(), "results": res}))


class _PureGcmHost:
    """Host backend whose AES-GCM is ovpnkx.gcm over OpenSSL's ECB (the MicroPython code path)."""

    def __init__(self, host):
        self._host = host
        self.name = "pure-gcm"

    def supports(self, cipher):
        return cipher in ("AES-128-GCM", "AES-256-GCM")

    def aead(self, cipher, key):
        from ovpnkx.gcm import AesGcm

        return AesGcm(self._host.ecb_encryptor(key))


def run(args):
    """bench/run.py section: the table as text (``args.quick``: shorter measurements)."""
    budget = QUICK_BUDGET_S if getattr(args, "quick", False) else BUDGET_S
    return _host_table([100, 1400], budget)


def _host_table(sizes, budget_s):
    from ovpnkx_host.crypto_host import HostCrypto

    host = HostCrypto()
    res = measure_all([("cpython", host), ("cpython-pure-gcm", _PureGcmHost(host))], sizes, budget_s)
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    proc = subprocess.run([mp, os.path.abspath(__file__), str(budget_s)] + [str(s) for s in sizes],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware")))
    if proc.returncode:
        raise RuntimeError("MicroPython run failed:\n" + proc.stderr)
    mp_out = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(mp_out["results"])
    lines = []
    lines.append("packets/s, client -> server, MicroPython GHASH: %s" % mp_out["ghash"])
    head = "%-18s %6s | %12s %12s | %12s %12s | %12s %12s | %8s" % (
        "cipher", "bytes", "CPy enc", "CPy dec", "CPy pureGCM", "dec", "MPy enc", "MPy dec", "CPy/MPy")
    lines.append(head)
    lines.append("-" * len(head))

    def cell(key, i):
        return "%12.0f" % res[key][i] if key in res else "%12s" % "-"

    for cipher in CIPHERS:
        for size in sizes:
            k = "|%s|%d" % (cipher, size)
            ratio = "-"
            if "cpython" + k in res and "micropython" + k in res:
                ratio = "%.0fx" % (res["cpython" + k][0] / res["micropython" + k][0])
            lines.append("%-18s %6d | %s %s | %s %s | %s %s | %8s" % (
                cipher, size, cell("cpython" + k, 0), cell("cpython" + k, 1),
                cell("cpython-pure-gcm" + k, 0), cell("cpython-pure-gcm" + k, 1),
                cell("micropython" + k, 0), cell("micropython" + k, 1), ratio))
    return "\n".join(lines)


if __name__ == "__main__":
    if MP:
        _mp_main()
    else:
        print(_host_table([int(a) for a in sys.argv[1:]] or [100, 1400], BUDGET_S))
