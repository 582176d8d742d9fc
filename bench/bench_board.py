"""Boards: per supported board, on the simulated board that enforces its stock firmware's
profile (issue 11): the heap after boot and after loading the app, the peak heap of a
client handshake + 1 ping (mbedTLS included where the port puts it: the GC heap on rp2),
the firmware's .mpy size, and the serial handshake against its wire-time bound.

Everything runs on the simulated board (`ovpnkx sim`, stock MicroPython with the
firmware flashed as .mpy by tools/flash.py, as `make flash` does) against `ovpnkx
serve`'s server in this process (`ovpnkx_host.run`, what `make run` uses). See
bench/README.md for what each figure is and what it is not.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from ovpnkx_host import run as board_run
from ovpnkx_host.sntp import NtpResponder

TITLE = "Boards: heap after boot, peak heap of a client handshake, firmware .mpy size, serial handshake vs wire time"
BOARDS = ("rp2040w", "rp2350w", "esp32")  # the supported boards with a stock firmware profile
BAUD = 115200
HEAP_LO = 16 * 1024
TRIAL_TIMEOUT_S = 30
SPARE_AIM = 0.25  # issue 11: a Pico W keeps 25 % of its heap spare
GC_AIM = 96 * 1024  # issue 11: the client on the Pico W in <= 96 KiB of GC heap, mbedTLS included
MPY_AIM = 48 * 1000  # issue 11: the device's .mpy set <= 48 KB
CHIP_SCALE = "--code-at-chip-scale"  # the sim's default: loaded .mpy code charged at a 32-bit board's scale
HOST_SCALE = "--code-at-host-scale"  # the lower bound: loaded code charged only what the unix port holds
RENEG_SEC = 2  # the renegotiation row: a session that renegotiates twice
RENEG_PINGS = 6
# and that many such sessions at the board's own heap: whether a renegotiation's 16 KB block
# finds its place depends on where blocks landed, so a rate says more than one bisection
RENEG_RUNS = 4
# sessions a step of its bisection may take: one unlucky session threw a peak 14 KiB high
RENEG_TRIES = 2


def add_arguments(p) -> None:
    """Flags of this section (bench/run.py collects them)."""
    p.add_argument("--board-boards", default=",".join(BOARDS), metavar="B,B",
                   help="board profiles for the heap bisection (default %s)" % ",".join(BOARDS))
    p.add_argument("--board-runs", type=int, default=0, metavar="N",
                   help="serial handshakes at 115200 baud (default 5, --quick 2)")
    p.add_argument("--board-reneg-scale", choices=("chip", "host"), default="chip",
                   help="the renegotiating sessions' code at the chip's scale (default: the estimate that leans "
                        "high) or at the host's (the lower bound, --code-at-host-scale)")


def _ok(ex: dict) -> bool:
    res = [e for e in ex["device"] if e.get("event") == "result"]
    return bool(res and res[-1].get("ok"))


def _set_json(flash_dir: str, **changes) -> None:
    path = os.path.join(flash_dir, "ovpnkx.json")  # the sim's flash is a host folder
    with open(path) as f:
        settings = json.load(f)
    settings.update(changes)
    with open(path, "w") as f:
        json.dump(settings, f)


def _out_of_memory(events: list) -> bool:
    """The board's session (or main.py) ended for want of heap: its result says so."""
    for e in events:
        if e.get("event") == "result" and ("out of memory" in str(e.get("reason", ""))
                                           or "MemoryError" in str(e.get("reason", ""))):
            return True
    return False


def _works(board: str, flash_dir: str, prep: dict, heap: int, heap_bytes: bool, wifi: "dict | None" = None,
           sim_args: "list | None" = None, keys: int = 1) -> bool:
    """Whether a session completes at ``heap``. A trial that fails for another reason than
    memory (near the edge a GC on nearly every allocation slows the session, and a slow
    trial can miss a deadline) is run once more: one such failure threw a whole bisection
    high (the Pico W's lower bound at 162 KiB where repeated runs gave 134-138)."""
    for _ in range(2):
        events = _trial(board, flash_dir, prep, heap, heap_bytes, wifi, sim_args)
        if events is None:
            return False  # the sim did not start at this heap
        if _ok({"device": events}) and len([e for e in events if e.get("event") == "keys"]) >= keys:
            return True
        if _out_of_memory(events):
            return False
    return False


def _trial(board: str, flash_dir: str, prep: dict, heap: int, heap_bytes: bool, wifi: "dict | None",
           sim_args: "list | None") -> "list | None":
    """One session on a fresh simulated board: the board's events (None: it did not start)."""
    try:
        b = board_run.start_flashed(board, flash_dir, 0, heap, heap_bytes, sim_args)  # baud 0: the heap is measured
    except SystemExit:
        return None
    try:
        if wifi is None:
            return board_run.exchange(b, prep, BAUD, TRIAL_TIMEOUT_S)["device"]
        return _wifi_events(b, wifi)
    except RuntimeError as exc:  # main.py never started (soft_reset_into_main)
        return [{"event": "result", "ok": False, "reason": str(exc)}]
    finally:
        board_run.stop_board(b)


def _min_heap(board: str, flash_dir: str, prep: dict, step: int, heap_bytes: bool = False,
              hi: int = 512 * 1024, wifi: "dict | None" = None, sim_args: "list | None" = None,
              keys: int = 1, tries: int = 1) -> "int | None":
    """Smallest --heap (32-bit-board bytes, -X heapsize=Nw; or host bytes with ``heap_bytes``)
    that completes handshake + 1 ping (over the data UART, or ``wifi``: see ``_wifi_setup``;
    ``sim_args``: more `ovpnkx sim start` flags; ``keys``: data keys the session must reach).
    ``tries``: sessions a step may take before it counts as too small (one that completes
    is enough), for sessions whose success near the edge depends on where blocks land."""
    lo = HEAP_LO
    if _works(board, flash_dir, prep, lo, heap_bytes, wifi, sim_args, keys):
        return lo
    if not _works(board, flash_dir, prep, hi, heap_bytes, wifi, sim_args, keys):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if any(_works(board, flash_dir, prep, mid, heap_bytes, wifi, sim_args, keys) for _ in range(tries)):
            hi = mid
        else:
            lo = mid
    return hi


def _renegotiating(name: str, flash_dir: str, prep: dict, step: int, heap: int, quick: bool,
                   wifi: "dict | None" = None, scale: str = CHIP_SCALE) -> tuple:
    """A session with renegotiations (reneg-sec RENEG_SEC, RENEG_PINGS pings: keys 0, 1 and 2)
    over the data UART (or ``wifi``, ``_wifi_setup``), code at ``scale`` (the sim's flag): (its smallest
    heap, None if not within 2x the board's or with ``quick``; how many of RENEG_RUNS such
    sessions complete at the board's own heap, 1 with ``quick``; RENEG_RUNS). The flashed
    config is restored."""
    conf = os.path.join(flash_dir, "client.ovpn")  # the sim's flash is a host folder
    with open(conf) as f:
        text = f.read()
    pings = _json(flash_dir).get("pings")
    reneg = "reneg-sec %d\n" % RENEG_SEC
    try:
        if wifi is None:
            with open(conf, "a") as f:
                f.write(reneg)
        else:
            wifi = dict(wifi, extra=reneg)  # each trial writes the config afresh (its server's port)
        _set_json(flash_dir, pings=RENEG_PINGS)
        runs = 1 if quick else RENEG_RUNS
        done = sum(1 for _ in range(runs) if _works(name, flash_dir, prep, heap, False, wifi, [scale], 3))
        if quick:
            return None, done, runs
        return _min_heap(name, flash_dir, prep, step, hi=2 * heap, wifi=wifi, sim_args=[scale], keys=3,
                         tries=RENEG_TRIES), done, runs
    finally:
        with open(conf, "w") as f:
            f.write(text)
        _set_json(flash_dir, pings=pings)


# -- Wi-Fi: the board's UDP/TCP transport (the sim's Wi-Fi is 127.0.0.1) to a real openvpn 2.6 --

def _wifi_setup(name: str, proto: str, prep: dict, work: str, ntp: "NtpResponder") -> dict:
    """Flash ``name`` for ``proto`` (udp/tcp) against a p2p openvpn on a fixed loopback port;
    returns what a trial needs (each trial starts its own openvpn on that port)."""
    import socket

    from ovpnkx_host import openvpn as ov

    port = ov.free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    conf = os.path.join(work, "wifi-%s-%s.ovpn" % (name, proto))
    with open(conf, "w") as f:
        f.write(ov.client_config(prep["pki"], port, mode="p2p", proto=proto, tls_auth=True))
    fdir = os.path.join(work, "flash-%s-%s" % (name, proto))
    sim, info = board_run._start_sim(name, 0, fdir)
    try:
        settings = dict(prep["settings"], ntp=ntp.server)
        board_run._flash_tool().flash(name, info["repl"], conf, proto, settings, reset=False,
                                      out=os.path.join(work, "staged-%s-%s" % (name, proto)))
    finally:
        board_run.stop_process(sim)
    return {"proto": proto, "flash": fdir, "pki": prep["pki"],
            "log": os.path.join(work, "openvpn-%s-%s.log" % (name, proto))}


def _wifi_events(b: dict, wifi: dict) -> list:
    """One session against a fresh openvpn on a fresh port (a TCP server's port may still be
    held by the last trial's): the board's /client.ovpn (its flash is a host folder) names it."""
    import socket

    from ovpnkx_host import openvpn as ov

    import serial  # type: ignore[import-untyped]

    # the main.py that ran at the board's boot (with the last trial's port) is stopped first
    # (its REPL prompt shows): it must not be the client the new server meets
    with serial.serial_for_url(b["info"]["repl"], baudrate=115200, timeout=0.1) as repl:
        board_run.stop_to_repl(repl)
    proto = wifi["proto"]
    port = ov.free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    with open(os.path.join(wifi["flash"], "client.ovpn"), "w") as f:
        f.write(ov.client_config(wifi["pki"], port, mode="p2p", proto=proto, tls_auth=True) + wifi.get("extra", ""))
    args = ov.server_args(wifi["pki"], port, mode="p2p", proto=proto, tls_auth=True)
    with ov.OpenVpn(args, wifi["log"]) as server:
        if not server.wait_for(r"UDPv4 link local|Listening for incoming TCP connection|TCPv4_SERVER link local"):
            return [{"event": "result", "ok": False, "reason": "openvpn did not start"}]
        return board_run._device_session(b["info"]["repl"], TRIAL_TIMEOUT_S)


def _live(board: str, flash_dir: str, heap: int) -> dict:
    """gc.mem_alloc() (host bytes) after boot, and after importing what main.py imports."""
    from ovpnkx_sim.boards import load_board  # noqa: F401  (the sim package must be there)

    b = board_run.start_flashed(board, flash_dir, 0, max(heap, 400 * 1024),  # room: it measures, not fits
                                sim_args=[HOST_SCALE])  # what the unix port holds: host bytes
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    try:
        def ask(code: str) -> int:
            out = subprocess.run([mpremote, "connect", b["info"]["repl"], "exec", code], capture_output=True,
                                 text=True, timeout=60).stdout.split()
            return int(out[-1])
        base = ask("import gc; gc.collect(); print(gc.mem_alloc())")
        code = ask("import gc, ovpnkx_device.app, ovpnkx_device.runner, ovpnkx_device.serial, ovpnkx._session, "
                   "ovpnkx.tls_mbedtls, ovpnkx.x509verify, ovpnkx.crypto_mp, ovpnkx.gcm, ovpnkx_device.wallclock, "
                   "ovpnkx_device.entropy_select, noise; gc.collect(); print(gc.mem_alloc())")
    finally:
        board_run.stop_board(b)
    return {"boot": base, "imported": code}


def _resident(board: str, flash_dir: str, prep: dict, heap: int, wifi: "dict | None") -> "tuple | None":
    """(bytes of the firmware's .mpy files still imported once a session is over, what they
    take of a 32-bit board's heap: tools/size.py's heap~ estimate, summed); None if the
    session failed (at the board's heap)."""
    try:
        b = board_run.start_flashed(board, flash_dir, 0, max(heap, 400 * 1024))  # room: it lists, not fits
    except SystemExit:
        return None
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    try:
        ok = _ok({"device": _wifi_events(b, wifi)}) if wifi is not None else \
            _ok(board_run.exchange(b, prep, BAUD, TRIAL_TIMEOUT_S))
        if not ok:
            return None
        out = subprocess.run([mpremote, "connect", b["info"]["repl"], "resume", "exec",
                              "import sys\nfor m in sys.modules.values():\n print('F', getattr(m, '__file__', ''))"],
                             capture_output=True, text=True, timeout=60).stdout
    finally:
        board_run.stop_board(b)
    total = heap_total = 0
    size_tool = board_run._tool("size")
    lib = os.path.join(flash_dir, "lib")
    for line in out.splitlines():
        path = line[2:].strip() if line.startswith("F ") else ""
        if path.endswith(".mpy"):
            host = os.path.join(flash_dir, path.lstrip("/"))
            if os.path.exists(host):
                total += os.path.getsize(host)
                rel = os.path.relpath(host, lib)[:-4] + ".py"
                heap_cost = size_tool.heap_estimate(lib, rel)  # None: not importable here (noise.mpy's registers)
                heap_total += os.path.getsize(host) if heap_cost is None else heap_cost
    return total, heap_total


def _mpy_sizes(flash_tool, board: str, work: str) -> dict:
    from ovpnkx_sim.boards import load_board

    arch = load_board(board).get("mpy_cross_arch")
    out = os.path.join(work, "mpy-" + board)
    skipped = flash_tool.compile_tree(arch, out)
    sizes = {}
    for pkg in flash_tool.PACKAGES:
        d = os.path.join(out, "lib", pkg)
        sizes[pkg] = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if n.endswith(".mpy"))
    sizes["messages"] = os.path.getsize(os.path.join(out, "lib", flash_tool.PACKAGES[0],
                                                      flash_tool.message_catalog.CATALOG))
    noise = os.path.join(load_board(board)["dir"], "noise.py")
    if os.path.exists(noise):
        dst = os.path.join(out, "noise.mpy")
        subprocess.run(flash_tool.mpy_cross_cmd(noise, dst, "noise"), check=True)  # as flash names it
        sizes["noise"] = os.path.getsize(dst)
    sizes["arch"] = arch
    sizes["skipped"] = skipped
    return sizes


def _kib(n: "float | None") -> str:
    return "-" if n is None else "%.0f KiB" % (n / 1024)


def _heap_figures(name: str, flash_dir: str, prep: dict, step: int, quick: bool) -> dict:
    from ovpnkx_sim.boards import load_board

    board = load_board(name)
    heap = board["heap"]
    fw = board.get("stock_firmware", {})
    figs = {"heap": heap, "mbedtls": fw.get("mbedtls_heap", {}).get("where", "?"),
            "after_boot": fw.get("gc_heap", {}).get("used_after_boot")}
    live = _live(name, flash_dir, heap)
    figs["app_loaded"] = live["imported"] - live["boot"]  # host bytes of the app's modules
    figs["peak"] = _min_heap(name, flash_dir, prep, step, hi=max(2 * heap, 256 * 1024), sim_args=[HOST_SCALE])
    if not quick:
        _set_json(flash_dir, compact_gcm=not _json(flash_dir).get("compact_gcm"))
        figs["peak_other_gcm"] = _min_heap(name, flash_dir, prep, step, hi=max(2 * heap, 256 * 1024),
                                           sim_args=[HOST_SCALE])
        _set_json(flash_dir, compact_gcm=not _json(flash_dir).get("compact_gcm"))
    figs["compact_gcm"] = _json(flash_dir).get("compact_gcm")
    return figs


def _json(flash_dir: str) -> dict:
    with open(os.path.join(flash_dir, "ovpnkx.json")) as f:
        return json.load(f)


def run(args) -> str:
    quick = args.quick
    names = [b.strip() for b in args.board_boards.split(",") if b.strip()]
    if quick:
        names = names[:1]
    runs = args.board_runs or (1 if quick else 5)
    step = 16 * 1024 if quick else 2 * 1024
    reneg_scale = HOST_SCALE if args.board_reneg_scale == "host" else CHIP_SCALE
    work = tempfile.mkdtemp(prefix="ovpnkx-bench-board-")
    try:
        prep = board_run.prepare(work, 1, BAUD)
        flash_tool = board_run._flash_tool()
        out = []
        # -- .mpy size ---------------------------------------------------------------
        out.append("Firmware as .mpy (mpy-cross %s; bytecode, plus native code for the viper modules); aim <= %d B"
                   % (subprocess.run([flash_tool.MPY_CROSS, "--version"], capture_output=True,
                                     text=True).stdout.split(" ")[1].strip(), MPY_AIM))
        out.append("  (messages.txt: the error texts, kept in flash and read only when an error is turned into text; "
                   "not in the .mpy total)")
        out.append("  %-8s %-10s %10s %14s %8s %10s %14s" % ("board", "arch", "ovpnkx", "ovpnkx_device", "noise",
                                                             "total .mpy", "messages.txt"))
        for name in (BOARDS[:1] if quick else BOARDS):
            s = _mpy_sizes(flash_tool, name, work)
            total = s["ovpnkx"] + s["ovpnkx_device"] + s.get("noise", 0)
            out.append("  %-8s %-10s %10d %14d %8d %10d B %12d B%s" % (name, s["arch"], s["ovpnkx"], s["ovpnkx_device"],
                                                               s.get("noise", 0), total, s["messages"],
                                                               "  (not compiled: %s)" % s["skipped"] if s["skipped"]
                                                               else ""))
        # -- heap ------------------------------------------------------------------------
        out.append("")
        out.append("GC heap per board and transport (chip bytes; the sim gives the board's heap as -X heapsize=Nw and "
                   "leaves user code the board's free heap after boot). Peak: the smallest --heap in which main.py "
                   "completes a client handshake + 1 ping each way, bisected in %d KiB steps; serial: over the data "
                   "UART to ovpnkx serve; udp/tcp: over the sim's Wi-Fi (127.0.0.1) to openvpn 2.6 (p2p, tls-auth). "
                   "mbedTLS's allocations are in it where the port puts them in the GC heap. 'peak' is the lower "
                   "bound, with --code-at-host-scale: bytes (the loaded .mpy code included) at half their words on "
                   "a 32-bit board; 'chip-scale code' is the sim's default, --code-at-chip-scale (each loaded .mpy "
                   "charged again what stock firmware keeps of it: its new non-static names for good, the rest of "
                   "the file while loaded; an estimate that leans high). The truth is most likely between; see "
                   "sim/README.md. "
                   "Resident .mpy: the firmware modules still loaded when the session is over (of the flashed set), "
                   "and (heap~) what they take of a 32-bit board's heap as loaded code (tools/size.py: bytecode and "
                   "strings, and their functions', classes' and dicts' structures)"
                   % (step // 1024))
        out.append("  %-8s %-6s %9s %10s %12s %22s %17s %12s %24s  %s" % (
            "board", "link", "heap", "used@boot", "app loaded", "peak (GHASH)", "chip-scale code", "spare",
            "resident .mpy (heap~)", "mbedTLS"))
        ntp = NtpResponder()
        renegs = []
        try:
            for name in names:
                fdir = os.path.join(work, "flash-" + name)
                b = board_run.flash_board(name, 0, prep, fdir)
                board_run.stop_board(b)
                f = _heap_figures(name, fdir, prep, step, quick)
                renegs.append((name, "serial", f["heap"],
                               _renegotiating(name, fdir, prep, step, f["heap"], quick, scale=reneg_scale)))
                rows = [("serial", f, fdir, None)]
                for proto in ("udp", "tcp") if not quick else ("udp",) if name == "rp2040w" else ():
                    wifi = _wifi_setup(name, proto, prep, work, ntp)
                    renegs.append((name, proto, f["heap"],
                                   _renegotiating(name, wifi["flash"], prep, step, f["heap"], quick, wifi,
                                                  reneg_scale)))
                    peak = _min_heap(name, wifi["flash"], prep, step, hi=max(2 * f["heap"], 256 * 1024), wifi=wifi,
                                     sim_args=[HOST_SCALE])
                    rows.append((proto, dict(f, peak=peak, peak_other_gcm=None,
                                             compact_gcm=_json(wifi["flash"]).get("compact_gcm")), wifi["flash"], wifi))
                for link, g, flash_dir, wifi in rows:
                    peak = g["peak"]
                    chip = None if quick and wifi is not None else _min_heap(
                        name, flash_dir, prep, step, hi=max(3 * g["heap"], 400 * 1024), wifi=wifi, sim_args=[CHIP_SCALE])
                    spare = "-" if peak is None else "%.0f %%" % (100 * (1 - peak / g["heap"]))
                    if peak is not None and chip is not None:
                        spare = "%.0f..%s" % (100 * (1 - chip / g["heap"]), spare)
                    other = g.get("peak_other_gcm")
                    res = _resident(name, flash_dir, prep, g["heap"], wifi)
                    out.append("  %-8s %-6s %9s %10s %12s %22s %17s %12s %24s  %s" % (
                        name, link, _kib(g["heap"]), g["after_boot"] or "-", _kib(g["app_loaded"] / 2),
                        "%s (%s)%s" % (_kib(peak) if peak else "> 2x heap", "compact" if g["compact_gcm"] else "8 KiB",
                                       "" if other is None else ", %s (%s)" % (_kib(other) if other else "> 2x heap",
                                                                               "8 KiB" if g["compact_gcm"] else "compact")),
                        _kib(chip) if chip else ("-" if quick and wifi is not None else "> 3x heap"), spare, "-" if res is None else "%d B (%s)" % (res[0], _kib(res[1])),
                        {"gc": "in the GC heap (rp2)", "idf": "outside (ESP-IDF heap)"}.get(g["mbedtls"], g["mbedtls"])))
                    if name == "rp2040w" and peak:
                        def verdict(limit: float) -> str:
                            if chip and chip <= limit:
                                return "met"
                            return "met by the lower bound only" if peak <= limit else "NOT met"
                        out.append("    aims on the Pico W (%s): peak <= 75 %% of the heap (%s): %s; peak <= 96 KiB: %s"
                                   % (link, _kib(0.75 * g["heap"]), verdict(0.75 * g["heap"]), verdict(GC_AIM)))
        finally:
            ntp.close()
        # -- renegotiation -------------------------------------------------------------
        out.append("")
        out.append("A session that renegotiates (code at the %s): main.py's handshake, two "
                   "renegotiations (reneg-sec %d in the board's config) and %d pings each way, against ovpnkx serve "
                   "(serial) or openvpn 2.6 (udp/tcp); the peak is the smallest --heap that completes it, bisected "
                   "in %d KiB steps (up to %d sessions per step, one that completes is enough: where a 16 KB block "
                   "lands decides near the edge), and how many sessions complete at the board's own heap%s" % (
                       "chip's scale" if reneg_scale == CHIP_SCALE else "host's scale: the lower bound",
                       RENEG_SEC, RENEG_PINGS, step // 1024, RENEG_TRIES,
                       " (--quick: one session at the board's heap, no peak)"
                       if quick else ""))
        out.append("  %-8s %-6s %9s %12s %8s %14s" % ("board", "link", "heap", "peak", "spare", "at its heap"))
        for name, link, heap, (peak, done, tried) in renegs:
            out.append("  %-8s %-6s %9s %12s %8s %14s" % (
                name, link, _kib(heap), "-" if quick else _kib(peak) if peak else "> 2x heap",
                "%.0f %%" % (100 * (1 - peak / heap)) if peak else "-", "%d/%d" % (done, tried)))
        # -- serial handshake vs the wire ----------------------------------------------
        out.append("")
        out.append("Handshake over the sim's 115200-baud UART (main.py against ovpnkx serve; %d runs per board): "
                   "device session start -> keys, control-channel bytes on the wire (seriallink fragments, COBS + CRC32), "
                   "the wire-time lower bound (bytes x 10 / baud) and the ratio (aim <= 1.25x)" % runs)
        out.append("  %-8s %12s %18s %10s %18s" % ("board", "to keys", "bytes (up/down)", "bound", "handshake/bound"))
        for name in (BOARDS[:1] if quick else BOARDS):
            out.append(_serial_row(name, prep, runs, work))
        return "\n".join(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _serial_row(name: str, prep: dict, runs: int, work: str) -> str:
    b = board_run.flash_board(name, BAUD, prep, os.path.join(work, "flash-serial-" + name))
    rows = []
    why = []
    try:
        for _ in range(runs):
            ex = board_run.exchange(b, prep, BAUD)
            fig = board_run.figures(ex, BAUD)
            if _ok(ex) and fig:
                rows.append(fig)
            else:
                res = [e for e in ex["device"] if e.get("event") in ("result", "config_error")]
                why.append(str(res[-1].get("reason") if res else "no result on the console"))
    finally:
        board_run.stop_board(b)
    if not rows:
        return "  %-8s FAILED: %s" % (name, "; ".join(sorted(set(w.split(" (free heap")[0][:120] for w in why))))
    hs = statistics.median(r["handshake_ms"] for r in rows)
    bound = statistics.median(r["bound_ms"] for r in rows)
    ratios = sorted(r["handshake_ms"] / r["bound_ms"] for r in rows)
    return "  %-8s %9.0f ms %8d B (%d/%d) %7.0f ms %9.2fx [%.2f-%.2f]%s" % (
        name, hs, rows[0]["bytes"], rows[0]["up"], rows[0]["down"], bound, hs / bound, ratios[0], ratios[-1],
        "  (%d of %d failed)" % (len(why), runs) if why else "")
