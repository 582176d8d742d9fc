"""Fleet: `ovpnkx load` against `ovpnkx serve` and against `openvpn --server`, side by side.

Both servers get the same P-256 certificates (one per device), the same cipher
(AES-256-GCM), `keepalive 10 60`, room for every device (`max-clients`) and the
same generous `connect-freq-initial`, on UDP 127.0.0.1. The devices offer the
key exchange group openvpn's OpenSSL 3.0 picks (X25519), so both servers do the
same TLS work. Every scenario starts fresh servers (freed memory is not given
back to the system, so a reused server would hide what new sessions cost) and
runs serve then openvpn back to back.

1. Concurrency: C devices (own certificates) arrive at RAMP/s and are held
   together for HOLD s: handshakes, time to keys, server memory per session,
   server CPU per handshake, pings lost during the hold.
2. Arrival-rate sweep: devices that leave as soon as they have keys, at rising
   rates, until a server saturates (under 90 % of the offered rate, failures,
   or p99 time to keys above 2 s).
3. Real clients: N unmodified openvpn clients held HOLD s on each server, every
   client decrypting the server's pings.

The load generator runs on the same 2 cores: its CPU is measured and printed.
See bench/README.md.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_client_certs, make_pki
from ovpnkx_host.process import stop_process
from ovpnkx_host.procstat import TreeSampler

TITLE = "Fleet: ovpnkx load vs ovpnkx serve and openvpn --server (concurrency, arrival rate, real clients)"
OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
CIPHER = "AES-256-GCM"
GROUPS = "X25519:prime256v1"  # what openvpn 2.6 with OpenSSL 3.0 negotiates
SERVERS = ("serve", "openvpn")
HEADS = {"serve": "ovpnkx serve", "openvpn": "openvpn --server", "serve1": "serve 1 worker"}
RAMP = 200  # arrivals/s while a concurrency level builds up
RAMP_LARGE = 100  # for 10,000 and more: the aim is to hold them, not to race the ramp
SATURATED_P99_MS = 2000


def add_arguments(p) -> None:
    """Flags of this section (bench/run.py collects them)."""
    p.add_argument("--fleet-concurrency", metavar="LIST",
                   help="concurrency levels (default 100,1000,10000; --quick 20)")
    p.add_argument("--fleet-hold", type=float, metavar="S", help="hold time (default 60; --quick 4)")
    p.add_argument("--fleet-keepalive", type=int, metavar="S", help="ping interval (default 10; --quick 1)")
    p.add_argument("--fleet-rates", metavar="LIST",
                   help="arrival rates to sweep (default 50,100,200,400,800,1600; --quick 40)")
    p.add_argument("--fleet-real", type=int, metavar="N", help="real openvpn clients held (default 200; --quick 5)")
    p.add_argument("--fleet-workers", default="auto", metavar="N", help="serve's --workers (default auto)")


class _Settings:
    def __init__(self, args) -> None:
        quick = getattr(args, "quick", False)
        conc = getattr(args, "fleet_concurrency", None) or ("20" if quick else "100,1000,10000")
        self.concurrency = [int(x) for x in conc.split(",") if x]
        self.hold = getattr(args, "fleet_hold", None) or (4.0 if quick else 60.0)
        self.keepalive = getattr(args, "fleet_keepalive", None) or (1 if quick else 10)
        rates = getattr(args, "fleet_rates", None) or ("40" if quick else "50,100,200,400,800,1600")
        self.rates = [float(x) for x in rates.split(",") if x]
        self.real = getattr(args, "fleet_real", None) or (5 if quick else 200)
        self.real_hold = 3.0 if quick else self.hold
        self.workers = getattr(args, "fleet_workers", "auto") or "auto"
        self.quick = quick
        self.devices = max(self.concurrency + [self.real] + [int(r * self._sweep_s()) for r in self.rates])

    def _sweep_s(self) -> float:
        return 1.0 if self.quick else 4.0

    def sweep_devices(self, rate: float) -> int:
        return max(40 if self.quick else 100, int(rate * self._sweep_s()))


class _Server:
    """One server process for one scenario: its UDP port and the pid to sample."""

    def __init__(self, kind: str, work: str, pki, st: _Settings, tag: str) -> None:
        self.kind = kind
        workers = "1" if kind == "serve1" else st.workers
        self.log_path = os.path.join(work, "%s-%s.log" % (kind, tag))
        self._log = open(self.log_path, "w")
        ka = "%d %d" % (st.keepalive, st.keepalive * 6)
        if kind in ("serve", "serve1"):
            conf = os.path.join(work, "serve-%s.conf" % tag)
            with open(conf, "w") as f:
                f.write("\n".join(["server 10.8.0.0 255.255.0.0", "topology subnet", "proto udp", "port 0",
                                   "local 127.0.0.1", "ca %s" % pki.ca, "cert %s" % pki.server_cert,
                                   "key %s" % pki.server_key, "keepalive %s" % ka, "data-ciphers %s" % CIPHER,
                                   "max-clients 20000", "connect-freq-initial 100000 10", ""]))
            # events to a file: a pipe nobody reads during the run would fill up
            self.events_path = os.path.join(work, "%s-%s.events" % (kind, tag))
            self._events = open(self.events_path, "w")
            self.proc = subprocess.Popen([OVPNKX, "serve", "--config", conf, "--workers", workers, "--json",
                                          "--events", "ping,refused,limited,worker_exit,dropped_events"],
                                         stdout=self._events, stderr=self._log)
            first = ""
            deadline = time.monotonic() + 20
            while not first.endswith("\n") and time.monotonic() < deadline and self.proc.poll() is None:
                time.sleep(0.05)
                with open(self.events_path) as f:
                    first = f.readline()
            if not first.startswith("{"):
                stop_process(self.proc)
                raise RuntimeError("ovpnkx serve did not start: %s" % self._text())
            info = json.loads(first)
            self.port = info["udp"]
            self.workers = info.get("workers", 1)
            self.pings: dict = {}
            self._drain = True
        else:
            self.port = ov.free_port()
            args = [ov.openvpn_binary(), "--local", "127.0.0.1", "--port", str(self.port), "--proto", "udp4",
                    "--dev", "tun", "--ifconfig-noexec", "--route-noexec", "--topology", "subnet",
                    "--server", "10.8.0.0", "255.255.0.0", "--ca", pki.ca, "--cert", pki.server_cert,
                    "--key", pki.server_key, "--dh", "none", "--keepalive", str(st.keepalive),
                    str(st.keepalive * 6), "--data-ciphers", CIPHER, "--verb", "1", "--max-clients", "20000",
                    "--connect-freq-initial", "100000", "10"]
            self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while "Initialization Sequence Completed" not in self._text():
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    stop_process(self.proc)
                    raise RuntimeError("openvpn --server did not start: %s" % self._text()[-1500:])
                time.sleep(0.05)
            self._drain = False

    def _text(self) -> str:
        self._log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> list:
        """Stop it; serve's events (JSON lines) when it is serve."""
        stop_process(self.proc, 10)
        events = []
        if self._drain:
            self._events.close()
            with open(self.events_path) as f:
                events = [json.loads(x) for x in f if x.startswith("{")]
        self._log.close()
        return events


def _load(client_conf: str, certs: str, port: int, pid: int, n: int, rate: float, hold: float,
          together: bool, timeout: float, warmup: bool = False) -> dict:
    args = [OVPNKX, "load", "--config", client_conf, "--remote", "127.0.0.1:%d" % port, "-n", str(n),
            "-r", str(rate), "--hold", str(hold), "--certs", certs, "--server-pid", str(pid),
            "--tls-groups", GROUPS, "--no-progress"] + (["--together"] if together else []) + (
                ["--warmup", "8"] if warmup else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if not proc.stdout.strip().startswith("{"):
        raise RuntimeError("ovpnkx load failed (exit %d): %s" % (proc.returncode, proc.stderr[-2000:]))
    return json.loads(proc.stdout)


_order = [0]


def _scenario(work, pki, st, tag, client_conf, certs, n, rate, hold, together, kinds=SERVERS) -> dict:
    out = {}
    # alternate which server goes first, so that a trend in the machine's load hits both alike
    _order[0] += 1
    kinds = tuple(kinds) if _order[0] % 2 else tuple(reversed(kinds))
    for kind in kinds:
        server = _Server(kind, work, pki, st, "%s-%s" % (tag, kind))
        try:
            timeout = 120 + n / max(rate, 1) * 3 + hold * 2
            out[kind] = _load(client_conf, certs, server.port, server.proc.pid, n, rate, hold, together, timeout,
                              warmup=True)
            if kind == "serve":
                out["serve_workers"] = server.workers
        finally:
            server.stop()
    return out


def _fmt(v, fmt="%s", none="-") -> str:
    if isinstance(v, (int, float)) and v < 0:
        return "~0"  # a memory delta below the noise of a few sessions
    return none if v is None else fmt % v


def _ms(seconds) -> str:
    return "-" if seconds is None else "%.2f" % (seconds * 1000)


def _ratio(a, b) -> str:
    return "%.2f" % (a / b) if a is not None and b else "-"


# -- real openvpn clients ------------------------------------------------------------

def _real_clients(work, pki, st, certs: str, client_conf: str, kind: str) -> dict:
    server = _Server(kind, work, pki, st, "real-%s" % kind)
    clients = []
    sampler = TreeSampler([server.proc.pid])
    # a few devices first, so that the server's one-time allocations are not counted per client
    _load(client_conf, certs, server.port, server.proc.pid, 8, 0, 0, False, 60)
    time.sleep(0.5)
    base_mem = sampler.sample()[0]
    try:
        for i in range(st.real):
            cert = os.path.join(certs, "device-%05d" % i)
            args = [ov.openvpn_binary(), "--client", "--dev", "null", "--nobind", "--proto", "udp4",
                    "--remote", "127.0.0.1", str(server.port), "--ca", pki.ca, "--cert", cert + ".crt",
                    "--key", cert + ".key", "--remote-cert-tls", "server", "--data-ciphers", CIPHER,
                    "--verb", "9", "--ifconfig-noexec", "--route-noexec", "--hand-window", "30"]
            clients.append(ov.OpenVpn(args, os.path.join(work, "real-%s-%03d.log" % (kind, i))))
            if i % 20 == 19:
                time.sleep(0.2)  # start them at ~100/s: process start-up is not what is measured
        deadline = time.monotonic() + 60 + st.real / 20
        up_at = None
        while time.monotonic() < deadline:
            up = sum("Initialization Sequence Completed" in c.log() for c in clients)
            if up == st.real:
                up_at = time.monotonic()
                break
            time.sleep(0.5)
        mem = sampler.sample()[0]
        if up_at is not None:
            time.sleep(st.real_hold)
            mem = max(mem, sampler.sample()[0])
    finally:
        for c in clients:
            c.stop()
        events = server.stop()
    logs = [c.log() for c in clients]
    up = sum("Initialization Sequence Completed" in log for log in logs)
    decrypted = [len(ov.PING_DECRYPTED.findall(log)) for log in logs]
    restarts = sum("Inactivity timeout" in log for log in logs)
    key_errors = sum(bool(c.key_errors()) for c in clients)
    out = {"up": up, "held": up_at is not None, "min_pings_decrypted_by_client": min(decrypted or [0]),
           "restarts": restarts, "key_errors": key_errors,
           "memory_kb_per_client": round((mem - base_mem) / max(up, 1), 1)}
    if kind == "serve":
        per_peer: dict = {}
        for e in events:
            if e["event"] == "ping":
                per_peer[e["peer"]] = per_peer.get(e["peer"], 0) + 1
        out["min_pings_decrypted_by_server"] = min(per_peer.values()) if len(per_peer) == up else 0
    return out


# -- the section -------------------------------------------------------------------------

def run(args) -> str:
    """Run the section; returns its table."""
    st = _Settings(args)
    if not ov.have_tun():
        return "fleet: skipped: openvpn --server (p2mp) needs /dev/net/tun, which is missing here"
    lines = []
    cpu_before = _cpu_available(0.5 if st.quick else 2.0)
    with tempfile.TemporaryDirectory(prefix="ovpnkx-bench-fleet-") as work:
        pki = make_pki(os.path.join(work, "pki"))
        t0 = time.monotonic()
        certs = make_client_certs(pki, os.path.join(work, "devices"), st.devices)
        made = time.monotonic() - t0
        client_conf = os.path.join(work, "client.ovpn")
        with open(client_conf, "w") as f:
            f.write(ov.client_config(pki, 1, inline=False).replace("hand-window 20", "hand-window 60"))
        conc = {c: _scenario(work, pki, st, "c%d" % c, client_conf, certs, c, _ramp(c), st.hold, True)
                for c in st.concurrency}
        sweep = []
        for rate in st.rates:
            res = _scenario(work, pki, st, "r%d" % rate, client_conf, certs, st.sweep_devices(rate), rate, 0, False,
                            SERVERS if st.quick else SERVERS + ("serve1",))
            sweep.append((rate, res))
            if all(_saturated(res[k], rate) for k in SERVERS):
                break
        real = {kind: _real_clients(work, pki, st, certs, client_conf, kind) for kind in SERVERS}
        workers = next((r.get("serve_workers") for r in conc.values()), "?")
        lines += _report(st, conc, sweep, real, workers, made)
    lines.append("machine: one busy process got %.0f %% of a core before the section and %.0f %% after; "
                 "load average %s (other work on the machine slows both servers and the load generator)"
                 % (100 * cpu_before, 100 * _cpu_available(0.5 if st.quick else 2.0), _loadavg()))
    return "\n".join(lines)


def _cpu_available(seconds: float = 1.0) -> float:
    """The share of a core one busy loop gets now (1.0 on an idle machine)."""
    t0, c0 = time.monotonic(), time.process_time()
    while time.monotonic() - t0 < seconds:
        pass
    return (time.process_time() - c0) / (time.monotonic() - t0)


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _ramp(devices: int) -> int:
    return RAMP_LARGE if devices >= 10000 else RAMP


def _saturated(r: dict, rate: float) -> bool:
    p99 = r["time_to_keys_ms"]["p99"]
    return (r["failed"] > 0 or (r["handshakes_per_s"] or 0) < 0.9 * rate
            or p99 is None or p99 > SATURATED_P99_MS)


def _report(st, conc, sweep, real, workers, made) -> list:
    out = ["each run: ovpnkx load --config client.ovpn --remote 127.0.0.1:PORT -n N -r RATE --hold S [--together] "
           "--certs DEVICES --server-pid PID --tls-groups %s --warmup 8" % GROUPS,
           "load generator: `ovpnkx load`, 1 process, devices with their own P-256 certificates (%d made in %.1f s), "
           "offering %s; servers: ovpnkx serve --workers %s (%s processes) and openvpn 2.6 --server (one process); "
           "%s, keepalive %d %d, UDP 127.0.0.1; %d cores shared with the load generator."
           % (st.devices, made, GROUPS.split(":")[0], st.workers, workers, CIPHER, st.keepalive, st.keepalive * 6,
              os.cpu_count() or 0), ""]
    # 1. concurrency
    out.append("1. concurrency: devices arrive at %d/s (%d/s from 10,000 on), held together %g s"
               % (RAMP, RAMP_LARGE, st.hold))
    head = ("%-7s %-16s %6s %5s %6s %8s %8s %9s %10s %8s %8s"
            % ("devices", "server", "keyed", "fail", "lost", "ttk p50", "ttk p99", "KB/sess", "ms CPU/hs",
               "hold CPU%", "load CPU%"))
    out += [head, "-" * len(head)]
    for c, res in conc.items():
        for kind in SERVERS:
            r = res[kind]
            t = r["time_to_keys_ms"]
            out.append("%-7d %-16s %6d %5d %6d %8s %8s %9s %10s %8s %8s" % (
                c, HEADS[kind], r["handshakes"], r["failed"], r["pings_lost"], _fmt(t["p50"]), _fmt(t["p99"]),
                _fmt(r.get("server_memory_kb_per_session")), _ms(r.get("server_cpu_s_per_handshake")),
                _fmt(r.get("server_cpu_pct_during_hold")), _fmt(r.get("loadgen_cpu_pct_during_ramp"))))
        s, o = res["serve"], res["openvpn"]
        out.append("%-7s %-16s %s" % ("", "serve/openvpn", "memory/session %s, CPU/handshake %s, p99 %s" % (
            _ratio(s.get("server_memory_kb_per_session"), o.get("server_memory_kb_per_session")),
            _ratio(s.get("server_cpu_s_per_handshake"), o.get("server_cpu_s_per_handshake")),
            _ratio(s["time_to_keys_ms"]["p99"], o["time_to_keys_ms"]["p99"]))))
        for kind in SERVERS:
            if res[kind]["failures"]:
                out.append("        %s failures: %s" % (HEADS[kind], res[kind]["failures"]))
    out.append("")
    # 2. rate sweep
    out.append("2. arrival rate sweep: devices leave as soon as they have keys")
    head = ("%-9s %-16s %10s %8s %8s %5s %9s %9s %s" % ("offered/s", "server", "achieved/s", "ttk p50", "ttk p99",
                                                      "fail", "srv CPU%", "load CPU%", ""))
    out += [head, "-" * len(head)]
    best = {k: 0.0 for k in SERVERS + ("serve1",)}
    for rate, res in sweep:
        for kind in [k for k in SERVERS + ("serve1",) if k in res]:
            r = res[kind]
            sat = _saturated(r, rate)
            if not sat:
                best[kind] = max(best[kind], r["handshakes_per_s"] or 0.0)
            out.append("%-9g %-16s %10s %8s %8s %5d %9s %9s %s" % (
                rate, HEADS[kind], _fmt(r["handshakes_per_s"]), _fmt(r["time_to_keys_ms"]["p50"]),
                _fmt(r["time_to_keys_ms"]["p99"]), r["failed"], _fmt(r.get("server_cpu_pct_during_ramp")),
                _fmt(r.get("loadgen_cpu_pct_during_ramp")), "saturated" if sat else ""))
    out.append("")
    # 3. real clients
    out.append("3. real openvpn clients: %d held %g s" % (st.real, st.real_hold))
    for kind in SERVERS:
        r = real[kind]
        extra = (", every client's pings decrypted by serve: min %d" % r["min_pings_decrypted_by_server"]
                 if kind == "serve" else "")
        out.append("   %-16s %d/%d up%s, server pings decrypted per client: min %d, ping-restarts %d, key errors %d, "
                   "%s KB per client%s" % (HEADS[kind], r["up"], st.real, "" if r["held"] else " (not all: not held)",
                                            r["min_pings_decrypted_by_client"], r["restarts"], r["key_errors"],
                                            _fmt(r["memory_kb_per_client"]), extra))
    out.append("")
    out += _aims(st, conc, sweep, best)
    return out


def _aims(st, conc, sweep, best) -> list:
    out = ["aims:"]
    top = max(conc) if conc else None

    def mark(ok: bool) -> str:
        if st.quick:
            return "(quick)"  # too small to judge: the full bench decides
        return "MET    " if ok else "NOT MET"
    if top is not None:
        s = conc[top]["serve"]
        ok = s["failed"] == 0 and s["pings_lost"] == 0 and s["handshakes"] == top
        out.append("  %s %d sessions held with no lost pings: %d keyed, %d failed, %d pings lost (%d received)%s"
                   % (mark(ok and top >= 10000), top, s["handshakes"], s["failed"], s["pings_lost"],
                      s["pings_received"], "" if top >= 10000 else " (the aim is 10,000: run the full bench)"))
        ms, mo = s.get("server_memory_kb_per_session"), conc[top]["openvpn"].get("server_memory_kb_per_session")
        out.append("  %s memory per established session <= openvpn's: %s vs %s KB (ratio %s, anonymous PSS at %d sessions)"
                   % (mark(ms is not None and mo is not None and ms <= mo), _fmt(ms), _fmt(mo), _ratio(ms, mo), top))
    # throughput: the most handshakes/s each server completed at any offered rate (at saturation
    # that is its capacity under this load generator); the best rate it kept up with is shown too
    top = {k: max([res[k]["handshakes_per_s"] or 0.0 for _, res in sweep if k in res] or [0.0]) for k in SERVERS}
    ts, to = top["serve"], top["openvpn"]
    sat_o = [rate for rate, res in sweep if _saturated(res["openvpn"], rate)]
    sat_s = [rate for rate, res in sweep if _saturated(res["serve"], rate)]
    why = ["kept up with %g vs %g handshakes/s" % (best["serve"], best["openvpn"])]
    if not sat_o:
        why.append("openvpn did not saturate within the sweep (%g/s): its figure is a lower bound" % sweep[-1][0])
    if not sat_s:
        why.append("serve did not saturate within the sweep")
    if sweep:
        last = sweep[-1][1]
        lg = [last[k].get("loadgen_cpu_pct_during_ramp") for k in SERVERS]
        why.append("at the top rate the load generator used %s %% of a core, the servers %s / %s %%"
                   % ("/".join(_fmt(x) for x in lg), _fmt(last["serve"].get("server_cpu_pct_during_ramp")),
                      _fmt(last["openvpn"].get("server_cpu_pct_during_ramp"))))
    out.append("  %s handshake throughput >= 1.0x openvpn's: at most %.1f vs %.1f handshakes/s (%s); %s"
               % (mark(ts >= to and to > 0), ts, to, _ratio(ts, to), "; ".join(why)))
    common = [(rate, res) for rate, res in sweep if not _saturated(res["openvpn"], rate)]
    worse = [(rate, res["serve"]["time_to_keys_ms"]["p99"], res["openvpn"]["time_to_keys_ms"]["p99"])
             for rate, res in common
             if (res["serve"]["time_to_keys_ms"]["p99"] or 1e9) > (res["openvpn"]["time_to_keys_ms"]["p99"] or 0)]
    detail = ", ".join("%g/s: %s vs %s ms" % (rate, _fmt(res["serve"]["time_to_keys_ms"]["p99"]),
                                             _fmt(res["openvpn"]["time_to_keys_ms"]["p99"])) for rate, res in common)
    out.append("  %s p99 time to keys <= openvpn's at the same arrival rate (rates openvpn sustains): %s%s"
               % (mark(bool(common) and not worse), detail or "none",
                  "; worse at " + ", ".join("%g/s" % w[0] for w in worse) if worse else ""))
    return out

