"""`make fuzz`: seeded fuzzing of every reader of peer input, on CPython and MicroPython.

    .venv/bin/python tools/fuzz.py [--inputs N] [--mp-inputs M] [--seed S] [--only TEXT]
                                   [--runtime both|cpython|micropython] [-j J] [--quick]

Each target of ``tests/fuzz/fuzzlib.py`` runs in a process of its own (so that its
memory is its own): by default 10^6 inputs on CPython and 10^5 on the MicroPython
unix port, J processes at a time (the two TLS engine targets, which build a fresh
OpenSSL context per input, get 2 x 10^5 on CPython). The table gives, per target and runtime: inputs,
how many were refused with RemoteProtocolError, every other exception (which must
not happen; the input is written to --crash-dir), and the memory in use after a
warm-up, at 40 % and at the end (CPython: RSS; MicroPython: the GC heap in use after
gc.collect()). Memory is flat when it grows less than the tolerance from the 40 %
mark to the end: what grows on after the warm-up would be a leak. Exit status 1 when
an exception other than RemoteProtocolError came out or memory was not flat.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZLIB = os.path.join(REPO, "tests", "fuzz", "fuzzlib.py")
BIN = os.path.dirname(sys.executable)
# growth from the 40 % mark to the end that still counts as flat
TOLERANCE = {"cpython": 2 << 20, "micropython": 4096}
# targets that build a fresh TLS engine (an OpenSSL context: ~1-4 ms) for every input
# get this share of --inputs on CPython; the parsers of our own code get all of it
SCALE = {("TLS engine, server", "cpython"): 0.2, ("TLS engine, client", "cpython"): 0.2}


def _targets() -> list:
    sys.path.insert(0, os.path.dirname(FUZZLIB))
    import fuzzlib  # noqa: E402

    return list(fuzzlib.TARGETS)


def _one(runtime: str, target: str, n: int, seed: int, pki: str, crash_dir: str) -> dict:
    exe = os.path.join(BIN, "python" if runtime == "cpython" else "micropython")
    t0 = time.monotonic()
    proc = subprocess.run([exe, FUZZLIB, target, str(n), str(seed), pki, crash_dir], capture_output=True,
                          text=True, env=dict(os.environ, MICROPYPATH=""))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"target": target, "runtime": runtime, "inputs": 0, "remote_errors": 0, "mem": [],
                "other": {"crash": {"count": 1, "message": (proc.stderr or proc.stdout)[-600:], "input": ""}},
                "seconds": round(time.monotonic() - t0, 1)}
    return json.loads(lines[-1])


def _mem(runtime: str, values: list) -> str:
    if not values:
        return "-"
    if runtime == "cpython":
        return "%.1f / %.1f / %.1f MB" % (values[0] / 2 ** 20, values[-2 if len(values) > 1 else 0] / 2 ** 20,
                                         values[-1] / 2 ** 20)
    return "%.1f / %.1f / %.1f KB" % (values[0] / 1024, values[-2 if len(values) > 1 else 0] / 1024,
                                     values[-1] / 1024)


def flat(rec: dict) -> bool:
    """Memory did not grow on after the 40 % mark (beyond the runtime's tolerance)."""
    m = rec.get("mem") or []
    if len(m) < 3:
        return True
    return m[-1] - m[1] <= TOLERANCE[rec["runtime"]]


def main(argv: "list | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=10 ** 6, help="inputs per target on CPython (default 10^6)")
    ap.add_argument("--mp-inputs", type=int, default=10 ** 5, help="inputs per target on MicroPython (default 10^5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="targets whose name contains TEXT (repeatable)")
    ap.add_argument("--runtime", choices=("both", "cpython", "micropython"), default="both")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="processes at a time (default 2)")
    ap.add_argument("--quick", action="store_true", help="3,000 inputs on CPython, 1,000 on MicroPython")
    ap.add_argument("--crash-dir", default=os.path.join(REPO, "out", "fuzz"),
                    help="where inputs that raised something else are written (default out/fuzz)")
    ap.add_argument("--json", metavar="FILE", help="also write the records as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.inputs, args.mp_inputs = 3000, 1000
    names = [t for t in _targets() if not args.only or any(o in t for o in args.only)]
    runtimes = ["cpython", "micropython"] if args.runtime == "both" else [args.runtime]
    os.makedirs(args.crash_dir, exist_ok=True)
    from ovpnkx_host.pki import make_pki

    work = tempfile.mkdtemp(prefix="ovpnkx-fuzz-")
    make_pki(os.path.join(work, "pki"))
    jobs = [(rt, name) for name in names for rt in runtimes]
    # the slow ones first, so that the pool ends together
    slow = ("TLS engine, server", "TLS engine, client", "Session.receive", "Session.receive (tls-auth)",
            "serve datagram handler")
    jobs.sort(key=lambda j: (j[1] not in slow, j[0] != "micropython"))
    print("fuzzing %d target(s) on %s: %d inputs each on CPython, %d on MicroPython, seed %d, %d at a time"
          % (len(names), " and ".join(runtimes), args.inputs, args.mp_inputs, args.seed, args.jobs), flush=True)
    t0 = time.monotonic()
    records = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = [pool.submit(_one, rt, name,
                            int((args.inputs if rt == "cpython" else args.mp_inputs) * SCALE.get((name, rt), 1)),
                            args.seed, os.path.join(work, "pki"), args.crash_dir) for rt, name in jobs]
        for fut in futs:
            rec = fut.result()
            records.append(rec)
            print("  %-45s %-11s %s" % (rec["target"], rec["runtime"],
                                        rec.get("skipped") or "%d inputs in %s s" % (rec["inputs"], rec.get("seconds"))),
                  flush=True)
    records.sort(key=lambda r: (names.index(r["target"]), r["runtime"]))
    bad = 0
    print("\n%-45s %-11s %9s %9s %6s  %-30s %s" % ("target", "runtime", "inputs", "refused", "other",
                                                   "memory: warm / 40 % / end", "seconds"))
    for r in records:
        if r.get("skipped"):
            print("%-45s %-11s %9s  (%s)" % (r["target"], r["runtime"], "-", r["skipped"]))
            continue
        other = sum(v["count"] for v in r["other"].values())
        ok_mem = flat(r)
        bad += bool(other) + (not ok_mem)
        print("%-45s %-11s %9d %9d %6d  %-30s %s%s" % (
            r["target"], r["runtime"], r["inputs"], r["remote_errors"], other, _mem(r["runtime"], r.get("mem")),
            r.get("seconds", "-"), "" if ok_mem else "  MEMORY GREW"))
    for r in records:
        for kind, v in r["other"].items():
            print("\n%s on %s: %d x %s: %s\n  first input: %s" % (r["target"], r["runtime"], v["count"], kind,
                                                                 v["message"], v["input"][:160]))
    total = {rt: sum(r["inputs"] for r in records if r["runtime"] == rt) for rt in runtimes}
    print("\n%s in %.0f s; %s" % (", ".join("%s %d inputs" % (rt, n) for rt, n in total.items()),
                                  time.monotonic() - t0,
                                  "every target: only RemoteProtocolError, memory flat" if not bad
                                  else "%d finding(s): see above; inputs in %s" % (bad, args.crash_dir)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
