"""`ovpnkx load --config client.ovpn`: many simulated devices against one OpenVPN server.

Every device is a real client ``Session`` of the sans-IO core with its own UDP
socket or TCP connection, so the server (``ovpnkx serve`` or an unmodified
``openvpn --server``) sees a fleet. ``--procs`` spreads the devices over a few
processes; each runs one epoll loop (``loadgen.Fleet``).

Devices arrive at ``--rate`` per second while fewer than ``--concurrency`` are
alive, hold ``--hold`` seconds after their keys (answering keepalive pings,
renegotiating every ``--reneg`` seconds) and leave with OCC EXIT. With
``--together`` every device holds until ``--hold`` seconds after the last one
is up. Given ``--server-pid``, the server's memory (anonymous PSS: ``procstat``) and CPU are sampled.

A progress bar goes to stderr; the summary is one JSON object on stdout.
"""

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import sys
import time

from ovpnkx.errors import LocalProtocolError

from .configfile import load_config
from .loadgen import Fleet, Plan, now_ms, worker_main
from .procstat import TreeSampler

SAMPLE_MS = 500


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx load`."""
    p.add_argument("--config", required=True, help="client config (.ovpn) every device uses")
    p.add_argument("-n", "--devices", type=int, default=100, help="devices in the run (default 100)")
    p.add_argument("-c", "--concurrency", type=int, default=0,
                   help="most devices alive at once (default: all of them)")
    p.add_argument("-r", "--rate", type=float, default=0.0,
                   help="arrivals per second (default 0: as fast as --concurrency allows)")
    p.add_argument("--hold", type=float, default=0.0, metavar="S",
                   help="seconds a device stays after its keys, answering pings (default 0)")
    p.add_argument("--together", action="store_true",
                   help="hold every device until --hold seconds after the whole fleet is up")
    p.add_argument("--reneg", type=float, default=0.0, metavar="S",
                   help="renegotiate every S seconds during the hold (default: never)")
    p.add_argument("--proto", choices=("udp", "tcp"), help="override the config's proto")
    p.add_argument("--remote", metavar="HOST:PORT", help="override the config's first remote")
    p.add_argument("--certs", metavar="DIR",
                   help="per-device certificates: NAME.crt + NAME.key pairs in DIR, used in turn "
                        "(default: the config's one certificate for every device)")
    p.add_argument("--tls-groups", metavar="LIST",
                   help="key exchange groups the devices offer, in order, as openvpn's tls-groups "
                        "(e.g. X25519:prime256v1; default: the TLS library's)")
    p.add_argument("--procs", type=int, default=1, help="processes to spread the devices over (default 1)")
    p.add_argument("--server-pid", type=int, action="append", default=[], metavar="PID",
                   help="sample this server process and its children (repeatable)")
    p.add_argument("--warmup", type=int, default=0, metavar="N",
                   help="N devices connect and leave before the run, so that the server's one-time "
                        "allocations are not counted per session (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _fail(msg: str) -> int:
    print("ovpnkx load: " + msg, file=sys.stderr)
    return 2


def _identities(directory: str) -> list:
    """(cert PEM, key PEM) pairs of DIR/NAME.crt + DIR/NAME.key, sorted by name."""
    pairs = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".crt") and os.path.exists(os.path.join(directory, name[:-4] + ".key")):
            with open(os.path.join(directory, name), "rb") as c, \
                    open(os.path.join(directory, name[:-4] + ".key"), "rb") as k:
                pairs.append((c.read(), k.read()))
    return pairs


def _fd_room(per_process: int) -> "str | None":
    """Raise the soft fd limit as far as allowed; an error text if it stays too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = per_process + 64
    if soft < need <= hard or soft < need and hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        return None
    if soft < need:
        return ("%d devices per process need %d file descriptors, the limit is %d: "
                "use more --procs or raise `ulimit -n`" % (per_process, need, hard))
    return None


def percentile(values: list, q: float) -> "float | None":
    """The q-quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return s[k]


class _Progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last_line = 0.0

    def show(self, p: dict, mem_kb: int, rate: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and now - self.last_line < 5:
            return
        self.last_line = now
        done = p["completed"] + p["failed"]
        width = 30
        filled = int(width * p["keyed"] / max(1, self.total))
        bar = "#" * filled + "-" * (width - filled)
        line = ("[%s] %d/%d keyed, %d up, %d failed, %d done | %.0f hs/s | server %s"
                % (bar, p["keyed"], self.total, p["established"], p["failed"], done, rate,
                   "%.0f MB" % (mem_kb / 1024) if mem_kb else "-"))
        sys.stderr.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _sum(records: dict) -> dict:
    keys = ("started", "keyed", "established", "alive", "completed", "failed", "pending", "pings", "pings_lost")
    out = {k: sum(r.get(k, 0) for r in records.values()) for k in keys}
    out["last_keys_ms"] = max([r.get("last_keys_ms", 0) for r in records.values()] or [0])
    return out


def run(args: argparse.Namespace) -> int:
    """Run the fleet; exit 0 when every device reached keys and held without failure."""
    if args.devices < 1 or args.procs < 1 or args.concurrency < 0 or args.rate < 0 \
            or args.hold < 0 or args.reneg < 0:
        return _fail("--devices and --procs must be >= 1; --concurrency, --rate, --hold, --reneg >= 0")
    if args.procs > args.devices:
        args.procs = args.devices
    cfg = load_config(args.config, "ovpnkx load")
    if cfg is None:
        return 2
    host, port, proto = cfg.remote
    if args.remote:
        try:
            host, port_text = args.remote.rsplit(":", 1)
            port = int(port_text)
        except ValueError:
            return _fail("--remote must be HOST:PORT")
    proto = args.proto or proto
    cfg.remotes = [(host, port, proto)]
    identities = None
    if args.certs:
        try:
            identities = _identities(args.certs)
        except OSError as exc:
            return _fail("--certs %s: %s" % (args.certs, exc.strerror))
        if not identities:
            return _fail("--certs %s: no NAME.crt with NAME.key in it" % args.certs)
    if args.tls_groups:
        from ovpnkx.config import engine_args

        from .tls_openssl import OpenSslContext
        try:  # refused here, not in every load process
            ca, cert, key = engine_args(cfg)
            OpenSslContext(False, ca, cert, key, groups=args.tls_groups)
        except LocalProtocolError as exc:
            return _fail("--tls-groups: %s" % exc)
    concurrency = args.concurrency or args.devices
    err = _fd_room(-(-min(concurrency, args.devices) // args.procs))
    if err:
        return _fail(err)
    if args.warmup > 0:
        warm = Plan(args.warmup, args.warmup, 0.0, 0.0, False, 0.0, proto, (host, port), now_ms())
        done = Fleet(warm, cfg, list(range(args.warmup)), args.warmup, identities, lambda rec: None,
                     None, args.tls_groups).run()
        if done["keyed"] < args.warmup:
            return _fail("warm-up: %d of %d devices got keys (%s)" % (done["keyed"], args.warmup, done["causes"]))
        time.sleep(0.5)  # their sessions end on the server
    t0 = now_ms() + 300 + 50 * args.procs  # every process is up before the first arrival
    plan = Plan(args.devices, concurrency, args.rate, args.hold, args.together, args.reneg, proto,
                (host, port), t0)
    sampler = TreeSampler(args.server_pid) if args.server_pid else None
    mem_base, cpu_base = sampler.sample() if sampler else (0, 0.0)
    ctx = multiprocessing.get_context("fork")
    procs: list = []
    conns: dict = {}  # Connection -> worker index
    for w in range(args.procs):
        indices = list(range(w, args.devices, args.procs))
        share = concurrency // args.procs + (1 if w < concurrency % args.procs else 0)
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(plan, cfg, indices, max(1, share), identities, child_end,
                                                     args.tls_groups),
                           daemon=True)
        proc.start()
        child_end.close()
        procs.append(proc)
        conns[parent_end] = w
    summary = _drive(args, plan, procs, conns, sampler, mem_base, cpu_base)
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 0 if summary["failed"] == 0 and summary["handshakes"] == args.devices else 1


def _drive(args, plan: Plan, procs: list, conns: dict, sampler, mem_base: int, cpu_base: float) -> dict:
    """Collect progress, sample the server, tell the workers when to stop holding."""
    latest: dict = {}
    finals: dict = {}
    progress = _Progress(not args.no_progress, args.devices)
    stop = {"now": False}
    old_int = signal.signal(signal.SIGINT, lambda *a: stop.update(now=True))
    old_term = signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    mem_now, cpu_now = mem_base, cpu_base
    best = (0, 0, 0)  # (established, memory KiB, at ms) of the sample with most sessions up
    mem_peak = mem_base
    ramp_end = None  # (at ms, server CPU s, load CPU s) once every device started and none is mid-handshake
    hold_cpu = None  # server CPU at the start of a together-hold
    stopped_sent = False
    next_sample = 0
    try:
        while len(finals) < len(conns):
            ready: list = multiprocessing.connection.wait([c for c in conns if conns[c] not in finals], 0.1)
            for c in ready:
                try:
                    rec = c.recv()
                except EOFError:
                    finals.setdefault(conns[c], {"kind": "final", "lost_process": True})
                    continue
                latest[conns[c]] = rec
                if rec["kind"] == "final":
                    finals[conns[c]] = rec
            now = now_ms()
            agg = _sum(latest)
            if sampler and now >= next_sample:
                mem_now, cpu_now = sampler.sample()
                mem_peak = max(mem_peak, mem_now)
                next_sample = now + SAMPLE_MS
                if agg["established"] > best[0] or agg["established"] == best[0] and mem_now > best[1]:
                    best = (agg["established"], mem_now, now)
            if ramp_end is None and len(latest) == len(conns) and agg["pending"] == 0 \
                    and agg["started"] > 0 and agg["alive"] == agg["established"]:
                if sampler:
                    mem_now, cpu_now = sampler.sample()
                ramp_end = (now, cpu_now, sum(r.get("cpu_s", 0.0) for r in latest.values()))
                if plan.together:
                    hold_cpu = (now, cpu_now)
                    for c in conns:
                        if conns[c] not in finals:
                            try:
                                c.send({"cmd": "hold_until", "t": now + plan.hold_ms})
                            except OSError:
                                pass  # that process is done (all its devices ended)
            if stop["now"] and not stopped_sent:
                stopped_sent = True
                for c in conns:
                    try:
                        c.send({"cmd": "stop"})
                    except OSError:
                        pass
            elapsed = max(1, (agg["last_keys_ms"] or now) - plan.t0_ms) / 1000
            progress.show(agg, mem_now, agg["keyed"] / elapsed if agg["keyed"] else 0.0)
    finally:
        progress.end()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    end_now = now_ms()
    if sampler:
        mem_end, cpu_end = sampler.sample()
    return _summary(args, plan, finals, sampler is not None, mem_base, cpu_base, best, mem_peak, ramp_end,
                    hold_cpu, (end_now, cpu_end) if sampler else None, stop["now"])


def _summary(args, plan, finals, sampled, mem_base, cpu_base, best, mem_peak, ramp_end, hold_cpu, end,
             interrupted) -> dict:
    recs = list(finals.values())
    ttk = [t for r in recs for t in r.get("ttk", [])]
    causes: dict = {}
    for r in recs:
        for k, v in r.get("causes", {}).items():
            causes[k] = causes.get(k, 0) + v
        if r.get("lost_process"):
            causes["load process died"] = causes.get("load process died", 0) + 1
    handshakes = sum(r.get("keyed", 0) for r in recs)
    first = min([r["first_start_ms"] for r in recs if r.get("first_start_ms")] or [0])
    last = max([r.get("last_keys_ms", 0) for r in recs] or [0])
    span_s = (last - first) / 1000 if last > first else 0.0
    loadgen_cpu = sum(r.get("cpu_s", 0.0) for r in recs)
    out = {
        "devices": args.devices, "concurrency": plan.concurrency, "rate": args.rate, "proto": plan.proto,
        "hold_s": args.hold, "together": args.together, "reneg_s": args.reneg, "procs": args.procs,
        "handshakes": handshakes, "completed": sum(r.get("completed", 0) for r in recs),
        "failed": sum(r.get("failed", 0) for r in recs) + sum(1 for r in recs if r.get("lost_process")),
        "failures": causes,
        "handshakes_per_s": round(handshakes / span_s, 1) if span_s else None,
        "time_to_keys_ms": {"p50": percentile(ttk, 0.5), "p99": percentile(ttk, 0.99),
                            "max": max(ttk) if ttk else None},
        "renegotiations": sum(r.get("renegs", 0) for r in recs),
        "pings_received": sum(r.get("pings", 0) for r in recs),
        "pings_lost": sum(r.get("pings_lost", 0) for r in recs),
        "icmp_refused": sum(r.get("icmp_refused", 0) for r in recs),
        "max_established": best[0],
        "packets_per_handshake": {
            "from_server": round(sum(r.get("hs_packets_in", 0) for r in recs) / handshakes, 1) if handshakes else None,
            "to_server": round(sum(r.get("hs_packets_out", 0) for r in recs) / handshakes, 1) if handshakes else None},
        "loadgen_cpu_s": round(loadgen_cpu, 2),
        "loadgen_cpu_s_per_handshake": round(loadgen_cpu / handshakes, 5) if handshakes else None,
        "interrupted": interrupted,
    }
    if ramp_end is not None and ramp_end[0] > first:  # the load generator's own CPU while devices arrived
        out["loadgen_cpu_pct_during_ramp"] = round(100 * ramp_end[2] / ((ramp_end[0] - first) / 1000), 1)
    if sampled:
        out["server_pids"] = args.server_pid
        out["server_memory_base_kb"] = mem_base
        out["server_memory_peak_kb"] = mem_peak
        out["server_memory_kb_per_session"] = (round((best[1] - mem_base) / best[0], 1) if best[0] else None)
        if ramp_end is not None and handshakes:
            out["server_cpu_s_per_handshake"] = round((ramp_end[1] - cpu_base) / handshakes, 5)
            if ramp_end[0] > first:  # how busy the server was while devices arrived (100 = one core)
                out["server_cpu_pct_during_ramp"] = round(100 * (ramp_end[1] - cpu_base)
                                                          / ((ramp_end[0] - first) / 1000), 1)
        if hold_cpu is not None and end is not None and end[0] > hold_cpu[0]:
            out["server_cpu_pct_during_hold"] = round(100 * (end[1] - hold_cpu[1]) / ((end[0] - hold_cpu[0]) / 1000), 1)
        out["server_cpu_s"] = round(end[1] - cpu_base, 2) if end else None
    return out
