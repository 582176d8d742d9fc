"""Link faults: our client (MicroPython, CPython) and openvpn's, through a faulty path.

One real openvpn 2.6 server (p2mp UDP on 127.0.0.1, `--keepalive 1 10`, tls-auth,
`--duplicate-cn`: every client has the same certificate and several run at once;
p2p, one client at a time, where /dev/net/tun is missing). Each client run goes
through its own `ovpnkx_host.faultproxy.FaultProxy`, which drops, duplicates,
reorders or corrupts datagrams (each way) with one probability, from a PRNG seeded
with the run's number: run i of every client and every fault uses seed i, so all
clients meet the same fault pattern for the same sequence of datagrams.

A run succeeds when the client has data-channel keys within the deadline (60 s,
openvpn's default hand-window; `--quick`: 20 s): our clients' `keys` event,
openvpn's "Initialization Sequence Completed" (p2mp; "Peer Connection Initiated"
p2p) — the same protocol point, right after PUSH_REPLY. Time to keys is measured
from the client's first datagram at the proxy. Our clients run `--pings 1`; the
"ping" column counts runs that also decrypted one server ping and sent one
(`connect` exit 0). Runs go K at a time (`--linkfault-jobs`), interleaved.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ovpnkx_host import openvpn as ov
from ovpnkx_host.faultproxy import FaultProxy
from ovpnkx_host.pki import make_pki
from ovpnkx_host.process import stop_process
from ovpnkx_host.runtime import micropython_binary, micropython_env

TITLE = "Link faults: success and time to keys through a proxy that drops, duplicates, reorders, corrupts"
CLIENTS = ("micropython", "cpython", "openvpn")
HEADS = {"micropython": "ours, MicroPython", "cpython": "ours, CPython", "openvpn": "openvpn client"}
FAULTS = (("drop 10 %", {"drop": 0.1}), ("duplicate 10 %", {"dup": 0.1}), ("reorder 10 %", {"reorder": 0.1}),
          ("corrupt 10 %", {"corrupt": 0.1}), ("drop 30 %", {"drop": 0.3}))
CIPHER = "AES-256-GCM"
OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
HAND_WINDOW = 60
KEYS_LINE = {"p2mp": re.compile(rb"Initialization Sequence Completed"),
             "p2p": re.compile(rb"Peer Connection Initiated")}


def add_arguments(p) -> None:
    """Flags of this section (bench/run.py collects them)."""
    p.add_argument("--linkfault-runs", type=int, default=0, metavar="N",
                   help="runs per client and fault (default 30, --quick 1)")
    p.add_argument("--linkfault-jobs", type=int, default=0, metavar="K",
                   help="runs at once against the one server (default 4; p2p: 1)")
    p.add_argument("--linkfault-only", action="append", default=[], metavar="TEXT",
                   help="faults whose name contains TEXT (repeatable), e.g. 'drop 10'")
    p.add_argument("--linkfault-keep", metavar="DIR",
                   help="keep the server log and every client's output in DIR")


def _server_args(pki, port: int, mode: str) -> list:
    args = ov.server_args(pki, port, mode=mode, cipher=CIPHER, tls_auth=True, verb=3)
    i = args.index("--keepalive")
    args[i + 1:i + 3] = ["1", "10"]
    args[args.index("--hand-window") + 1] = str(HAND_WINDOW)
    # every client has the same certificate, and several run at once: without this a new
    # client's session would end the one before it ("MULTI: new connection by client ...")
    return args + ["--duplicate-cn"] if mode == "p2mp" else args


def _client_config(pki, port: int, mode: str) -> str:
    text = ov.client_config(pki, port, mode=mode, cipher=CIPHER, tls_auth=True)
    return text.replace("hand-window 20", "hand-window %d" % HAND_WINDOW)


def _openvpn_args(pki, port: int, mode: str) -> list:
    # as tests/interop/harness.openvpn_client_args, at verb 3 (verb 9 would slow it)
    args = [ov.openvpn_binary(), "--client" if mode == "p2mp" else "--tls-client", "--dev", "null",
            "--nobind", "--proto", "udp4", "--remote", "127.0.0.1", str(port),
            "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key,
            "--remote-cert-tls", "server", "--data-ciphers", CIPHER, "--verb", "3",
            "--ifconfig-noexec", "--route-noexec", "--hand-window", str(HAND_WINDOW),
            "--tls-auth", pki.tls_auth, "1"]
    if mode == "p2p":
        args += ["--ping", "1"]
    return args


class _Lines:
    """A process's stdout lines, each stamped with time.monotonic(), read in a thread."""

    def __init__(self, stream) -> None:
        self.lines: list = []
        self.stream = stream
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        for line in iter(self.stream.readline, b""):
            self.lines.append((time.monotonic(), line))

    def first(self, test) -> "float | None":
        for t, line in list(self.lines):
            if test(line):
                return t
        return None


def _is_keys_event(line: bytes) -> bool:
    if not line.startswith(b"{"):
        return False
    try:
        return json.loads(line).get("event") == "keys"
    except ValueError:
        return False


def _one(kind: str, fault: dict, seed: int, pki, work: str, server_port: int, mode: str,
         deadline_s: float, keep: "str | None" = None) -> dict:
    """One client run through a fresh FaultProxy seeded with ``seed``."""
    proxy = FaultProxy(server_port, seed=seed, **fault)
    conf = os.path.join(work, "client-%d.ovpn" % proxy.port)
    with open(conf, "w") as f:
        f.write(_client_config(pki, proxy.port, mode))
    if kind == "micropython":
        cmd = [micropython_binary(), "-m", "ovpnkx_device.connect_main", conf, "1", str(int(deadline_s) + 15),
               "json"]
        env = micropython_env()
        keys_test = _is_keys_event
    elif kind == "cpython":
        cmd = [OVPNKX, "connect", "--config", conf, "--runtime", "cpython", "--pings", "1", "--json",
               "--timeout", str(int(deadline_s) + 15)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        keys_test = _is_keys_event
    else:
        cmd = _openvpn_args(pki, proxy.port, mode)
        env = None
        keys_test = KEYS_LINE[mode].search
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = _Lines(proc.stdout)
    keys = None
    code = None
    try:
        while time.monotonic() < t0 + deadline_s + 5 and proc.poll() is None:
            keys = out.first(keys_test)
            if keys is not None:
                break
            time.sleep(0.02)
        keys = out.first(keys_test)
        if kind != "openvpn" and keys is not None:
            try:  # our clients exit after one ping each way (or fail)
                code = proc.wait(15)
            except subprocess.TimeoutExpired:
                code = None
    finally:
        stop_process(proc, 5)
        out.thread.join(5)
        proc.stdout.close()
        proxy.close()
        os.unlink(conf)
    if keep:
        name = "%s-%s-%d.log" % (kind, "-".join("%s%g" % kv for kv in sorted(fault.items())), seed)
        with open(os.path.join(keep, name), "wb") as f:
            f.write(b"".join(b"%.3f " % (t - t0) + line for t, line in out.lines))
    first = proxy.first_packet_at
    ms = None if keys is None or first is None else (keys - first) * 1000
    ok = ms is not None and ms <= deadline_s * 1000
    run = {"kind": kind, "seed": seed, "ok": ok, "ms": ms, "ping": code == 0, "stats": proxy.stats()}
    if not ok:
        tail = b"".join(line for _, line in out.lines[-6:]).decode(errors="replace")
        run["why"] = "no keys within %d s: %s" % (deadline_s, tail.strip()[-400:])
    return run


def _pct(values: list, q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def run(args) -> str:
    """Run every client through every fault N times; return the table."""
    n = args.linkfault_runs or (1 if args.quick else 30)
    deadline = 20.0 if args.quick else float(HAND_WINDOW)
    mode = "p2mp" if ov.have_tun() else "p2p"
    jobs = 1 if mode == "p2p" else (args.linkfault_jobs or 4)
    work = args.linkfault_keep or tempfile.mkdtemp(prefix="ovpnkx-bench-linkfault-")
    os.makedirs(work, exist_ok=True)
    faults = [(name, f) for name, f in FAULTS if not args.linkfault_only or any(o in name for o in args.linkfault_only)]
    try:
        pki = make_pki(os.path.join(work, "pki"))
        servers: list = []
        lock = threading.Lock()

        def server_port() -> int:
            # p2mp: one server for everything; p2p: one per run (it serves one peer)
            with lock:
                if mode == "p2mp" and servers:
                    return servers[0][1]
                port = ov.free_port()
                srv = ov.OpenVpn(_server_args(pki, port, mode), os.path.join(work, "server-%d.log" % port))
                if not srv.wait_for(r"UDPv4 link local"):
                    raise RuntimeError("openvpn server did not start:\n" + srv.log()[-2000:])
                servers.append((srv, port))
                return port

        tasks = [(name, fault, kind, i) for i in range(n) for name, fault in faults for kind in CLIENTS]
        t_start = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [(name, kind, pool.submit(_one, kind, fault, i, pki, work, server_port(), mode, deadline,
                                                    args.linkfault_keep))
                           for name, fault, kind, i in tasks]
                results = {(name, kind): [] for name, _ in faults for kind in CLIENTS}
                for name, kind, fut in futures:
                    results[(name, kind)].append(fut.result())
        finally:
            key_errors = []
            for srv, _ in servers:
                key_errors += srv.key_errors()
                srv.stop()
        wall = time.monotonic() - t_start
        out = ["One openvpn 2.6 server (%s, UDP, tls-auth, keepalive 1 10); each run through its own seeded "
               "FaultProxy (run i: seed i, for every client and fault); success = keys within %d s of the "
               "client's first datagram; times in ms from that datagram; %d run(s) per cell, %d at a time, %.0f s"
               % (mode, deadline, n, jobs, wall),
               "%-16s %-18s %9s %9s %9s %7s" % ("fault (each way)", "client", "success", "median", "p90", "ping")]
        failures = []
        for name, _ in faults:
            for kind in CLIENTS:
                rs = results[(name, kind)]
                good = [r["ms"] for r in rs if r["ok"]]
                out.append("%-16s %-18s %6d/%-2d %9s %9s %7s" % (
                    name, HEADS[kind], len(good), len(rs),
                    "%.0f" % statistics.median(good) if good else "-", "%.0f" % _pct(good, 0.9) if good else "-",
                    "-" if kind == "openvpn" else "%d/%d" % (sum(r["ping"] for r in rs), len(rs))))
                failures += ["%s, %s, seed %d: %s" % (name, HEADS[kind], r["seed"], r["why"])
                             for r in rs if not r["ok"]]
        ours10 = [len([r for r in results[(name, k)] if r["ok"]]) for name, f in faults if "drop 30" not in name
                  for k in ("micropython", "cpython")] or [0]
        ours30 = [len([r for r in results.get(("drop 30 %", k), []) if r["ok"]]) for k in ("micropython", "cpython")]
        theirs30 = len([r for r in results.get(("drop 30 %", "openvpn"), []) if r["ok"]])
        out.append("aims: ours >= 29 of 30 at every 10 %% fault: %s (worst %d/%d); at 30 %% loss >= openvpn's %d: %s"
                   % ("met" if n >= 30 and min(ours10) >= n - n // 30 else "not met" if n >= 30 else "n < 30, no claim",
                      min(ours10), n, theirs30,
                      "met" if min(ours30) >= theirs30 else "not met (%s)" % "/".join(map(str, ours30))))
        out.append("server: %d packets refused as not authentic (tls-auth HMAC or AEAD tag: the corrupted ones)"
                   % len(key_errors))
        for line in failures[:30]:
            out.append("  FAILED " + line)
        if len(failures) > 30:
            out.append("  ... and %d more" % (len(failures) - 30))
        return "\n".join(out)
    finally:
        if not args.linkfault_keep:
            shutil.rmtree(work, ignore_errors=True)
