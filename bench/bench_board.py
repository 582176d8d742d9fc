"""Boards: the smallest heap for a client handshake, the firmware's .mpy size, and the
handshake over a 115200-baud serial line against its wire-time lower bound.

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
from ovpnkx_host.runtime import micropython_binary, micropython_env

TITLE = "Boards: smallest heap for a client handshake, firmware .mpy size, serial handshake vs wire time"
BOARDS = ("rp2040", "rp2350", "esp32")
BAUD = 115200
HEAP_LO, HEAP_HI = 16 * 1024, 512 * 1024
TRIAL_TIMEOUT_S = 30
# where mbedTLS allocates on each port (MicroPython's extmod/mbedtls/mbedtls_config_common.h:
# bare-metal ports route MBEDTLS_PLATFORM_STD_CALLOC to m_tracked_calloc, i.e. the GC heap)
MBEDTLS_HEAP = {
    "rp2040": "inside (rp2: MICROPY_MBEDTLS_CONFIG_BARE_METAL, m_tracked_calloc)",
    "rp2350": "inside (rp2: MICROPY_MBEDTLS_CONFIG_BARE_METAL, m_tracked_calloc)",
    "esp32": "outside (ESP-IDF's mbedTLS, IDF heap)",
    "sim": "outside (unix port: libc calloc)",
}
_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static long cur, mark = -1, peak;
static void note(long d) { cur += d; if (mark >= 0 && cur > peak) peak = cur; }
void *malloc(size_t n) { void *p = __libc_malloc(n); if (p) note(malloc_usable_size(p)); return p; }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); if (p) note(malloc_usable_size(p)); return p; }
void *memalign(size_t a, size_t n) { void *p = __libc_memalign(a, n); if (p) note(malloc_usable_size(p)); return p; }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **o, size_t a, size_t n) { void *p = memalign(a, n); if (!p) return 12; *o = p; return 0; }
void *realloc(void *q, size_t n) {
    long old = q ? (long)malloc_usable_size(q) : 0;
    void *p = __libc_realloc(q, n);
    if (p) note((long)malloc_usable_size(p) - old); else if (!n) note(-old);
    return p;
}
void free(void *p) { if (p) note(-(long)malloc_usable_size(p)); __libc_free(p); }
int socket(int d, int t, int pr) {
    static int (*real)(int, int, int);
    if (!real) real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    if (d == AF_INET && mark < 0) { mark = cur; peak = cur; }
    return real(d, t, pr);
}
__attribute__((destructor)) static void report(void) {
    const char *path = getenv("MTRACK_OUT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) { fprintf(f, "%ld %ld %ld\n", mark, peak, cur); fclose(f); }
}
"""


def add_arguments(p) -> None:
    """Flags of this section (bench/run.py collects them)."""
    p.add_argument("--board-boards", default=",".join(BOARDS), metavar="B,B",
                   help="board profiles for the heap bisection (default %s)" % ",".join(BOARDS))
    p.add_argument("--board-runs", type=int, default=0, metavar="N",
                   help="serial handshakes at 115200 baud (default 5, --quick 2)")


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


def _works(board: str, flash_dir: str, prep: dict, heap: int, heap_bytes: bool) -> bool:
    try:
        b = board_run.start_flashed(board, flash_dir, 0, heap, heap_bytes)  # baud 0: the heap is measured
    except SystemExit:
        return False
    try:
        return _ok(board_run.exchange(b, prep, BAUD, TRIAL_TIMEOUT_S))
    finally:
        board_run.stop_board(b)


def _min_heap(board: str, flash_dir: str, prep: dict, step: int, heap_bytes: bool = False) -> "int | None":
    """Smallest --heap (32-bit-board bytes, -X heapsize=Nw; or host bytes with ``heap_bytes``)
    that completes handshake + 1 ping."""
    lo, hi = HEAP_LO, HEAP_HI * (2 if heap_bytes else 1)
    if _works(board, flash_dir, prep, lo, heap_bytes):
        return lo
    if not _works(board, flash_dir, prep, hi, heap_bytes):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if _works(board, flash_dir, prep, mid, heap_bytes):
            hi = mid
        else:
            lo = mid
    return hi


def _live(board: str, flash_dir: str, heap: int) -> dict:
    """gc.mem_alloc() (host bytes) after boot, and after importing what main.py imports."""
    from ovpnkx_sim.boards import load_board  # noqa: F401  (the sim package must be there)

    b = board_run.start_flashed(board, flash_dir, 0, heap)
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    try:
        def ask(code: str) -> int:
            out = subprocess.run([mpremote, "connect", b["info"]["repl"], "exec", code], capture_output=True,
                                 text=True, timeout=60).stdout.split()
            return int(out[-1])
        base = ask("import gc; gc.collect(); print(gc.mem_alloc())")
        code = ask("import gc, ovpnkx_device.app, ovpnkx_device.runner, ovpnkx_device.serial, ovpnkx.session, "
                   "ovpnkx.tls_mbedtls, ovpnkx.crypto_mp, ovpnkx.gcm, noise; gc.collect(); print(gc.mem_alloc())")
    finally:
        board_run.stop_board(b)
    return {"boot": base, "imported": code}


def _mpy_sizes(flash_tool, board: str, work: str) -> dict:
    from ovpnkx_sim.boards import load_board

    arch = load_board(board).get("mpy_cross_arch")
    out = os.path.join(work, "mpy-" + board)
    skipped = flash_tool.compile_tree(arch, out)
    sizes = {}
    for pkg in flash_tool.PACKAGES:
        d = os.path.join(out, "lib", pkg)
        sizes[pkg] = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
    noise = os.path.join(load_board(board)["dir"], "noise.py")
    if os.path.exists(noise):
        dst = os.path.join(out, "noise.mpy")
        subprocess.run([flash_tool.MPY_CROSS, "-o", dst, "-s", "noise.py", noise], check=True)
        sizes["noise"] = os.path.getsize(dst)
    sizes["arch"] = arch
    sizes["skipped"] = skipped
    return sizes


def _mbedtls_outside(prep: dict, work: str) -> "dict | None":
    """libc heap growth of the unix port during one client session (mbedTLS's calloc):
    an LD_PRELOAD counter marks the first AF_INET socket and keeps the peak after it."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, lib = os.path.join(work, "mtrack.c"), os.path.join(work, "mtrack.so")
    with open(src, "w") as f:
        f.write(_SHIM)
    if subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, src, "-ldl"], capture_output=True).returncode:
        return None
    server_conf = os.path.join(work, "server.conf")
    with open(prep["client_conf"]) as f:
        cfg_lines = f.read()
    pki = prep["pki"]
    with open(server_conf, "w") as f:
        f.write("\n".join(["server 10.8.0.0 255.255.255.0", "proto udp", "port 0", "local 127.0.0.1",
                           "ca %s" % pki.ca, "cert %s" % pki.server_cert, "key %s" % pki.server_key,
                           "tls-auth %s 0" % pki.tls_auth, "keepalive 1 10", "data-ciphers AES-256-GCM", ""]))
    serve = subprocess.Popen([board_run.OVPNKX, "serve", "--config", server_conf, "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        port = json.loads(serve.stdout.readline())["udp"]
        conf = os.path.join(work, "udp.ovpn")
        with open(conf, "w") as f:
            f.write(cfg_lines.replace("remote 127.0.0.1 1194 udp", "remote 127.0.0.1 %d udp" % port))
        report = os.path.join(work, "mtrack.txt")
        env = dict(micropython_env(), LD_PRELOAD=lib, MTRACK_OUT=report)
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=%dw" % HEAP_HI, "-m", "ovpnkx_device.connect_main",
                               conf, "1", "20", "json"], env=env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            return None
        with open(report) as f:
            mark, peak, _ = (int(x) for x in f.read().split())
    finally:
        board_run._stop(serve)
    return {"peak_growth": peak - mark}


def _kib(n: "float | None") -> str:
    return "-" if n is None else "%.0f KiB" % (n / 1024)


def run(args) -> str:
    quick = args.quick
    names = [b.strip() for b in args.board_boards.split(",") if b.strip()]
    if quick:
        names = names[:1]
    runs = args.board_runs or (2 if quick else 5)
    step = 8 * 1024 if quick else 4 * 1024
    work = tempfile.mkdtemp(prefix="ovpnkx-bench-board-")
    from ovpnkx_sim.boards import load_board

    try:
        prep = board_run.prepare(work, 1, BAUD)
        flash_tool = board_run._flash_tool()
        out = []
        # -- .mpy size ---------------------------------------------------------------
        out.append("Firmware as .mpy (mpy-cross %s; bytecode, plus native code for the one viper module)"
                   % subprocess.run([flash_tool.MPY_CROSS, "--version"], capture_output=True,
                                    text=True).stdout.split(" ")[1].strip())
        out.append("  %-8s %-10s %10s %14s %8s %10s" % ("board", "arch", "ovpnkx", "ovpnkx_device", "noise", "total"))
        for name in BOARDS:
            s = _mpy_sizes(flash_tool, name, work)
            total = s["ovpnkx"] + s["ovpnkx_device"] + s.get("noise", 0)
            out.append("  %-8s %-10s %10d %14d %8d %10d B%s" % (name, s["arch"], s["ovpnkx"], s["ovpnkx_device"],
                                                               s.get("noise", 0), total,
                                                               "  (not compiled: %s)" % s["skipped"] if s["skipped"]
                                                               else ""))
        # -- heap ------------------------------------------------------------------------
        out.append("")
        out.append("Smallest heap for a full client handshake + 1 ping each way (main.py over the data UART, "
                   "modules as .mpy in RAM, no frozen code), bisected in %d KiB steps of `ovpnkx sim --heap N` "
                   "(-X heapsize=Nw: 32-bit-board bytes)" % (step // 1024))
        out.append("  %-8s %12s %16s %26s %12s   %s" % ("board", "GHASH 8 KiB", "compact GHASH",
                                                       "8 KiB, --heap-bytes", "board heap", "mbedTLS's own allocations"))
        live = None
        live_full = None
        for name in names:
            fdir = os.path.join(work, "flash-" + name)
            b = board_run.flash_board(name, 0, prep, fdir)
            board_run.stop_board(b)
            _set_json(fdir, compact_gcm=False)
            full = _min_heap(name, fdir, prep, step)
            _set_json(fdir, compact_gcm=True)
            compact = _min_heap(name, fdir, prep, step)
            _set_json(fdir, compact_gcm=False)
            in_bytes = None if quick else _min_heap(name, fdir, prep, step, heap_bytes=True)
            if live is None:
                live = (name, _live(name, fdir, load_board(name)["heap"]))
                live_full = full
            out.append("  %-8s %12s %16s %26s %12s   %s" % (
                name, _kib(full) if full else "> 512 KiB", _kib(compact) if compact else "> 512 KiB",
                "-" if quick else "%s (/2: %s)" % (_kib(in_bytes), _kib(in_bytes / 2)) if in_bytes else "> 1 MiB",
                _kib(load_board(name)["heap"]), MBEDTLS_HEAP.get(name, "?")))
        if live:
            name, figs = live
            out.append("  live heap on the sim (%s, gc.mem_alloc() after gc.collect(); host bytes / 2 = 32-bit "
                       "equivalent): after boot %s (the sim's HAL in Python, the REPL: a real board has these in C), "
                       "after importing the app %s (+%s of .mpy code and module objects)"
                       % (name, _kib(figs["boot"] / 2), _kib(figs["imported"] / 2),
                          _kib((figs["imported"] - figs["boot"]) / 2)))
            out.append("  so of the %s: ~%s is the sim's own, ~%s the app's code and modules (in flash, not the "
                       "heap, when frozen into the firmware), the rest (~%s) the session itself"
                       % (name, _kib(figs["boot"] / 2), _kib((figs["imported"] - figs["boot"]) / 2),
                          _kib(live_full - figs["imported"] / 2) if live_full else "-"))
        tls = _mbedtls_outside(prep, work)
        out.append("  mbedTLS outside the GC heap on this unix port: the libc heap grows by %s during a session "
                   "(peak after the first socket; LD_PRELOAD counter, malloc_usable_size). On rp2 it comes out of "
                   "the MicroPython heap: add it to that board's figure."
                   % (_kib(tls["peak_growth"]) if tls else "- (no C compiler or the run failed)"))
        # -- serial handshake vs the wire ----------------------------------------------
        out.append("")
        b = board_run.flash_board("rp2040", BAUD, prep, os.path.join(work, "flash-serial"))
        rows = []
        try:
            for _ in range(runs):
                ex = board_run.exchange(b, prep, BAUD)
                fig = board_run.figures(ex, BAUD)
                if _ok(ex) and fig:
                    rows.append(fig)
        finally:
            board_run.stop_board(b)
        if rows:
            hs = statistics.median(r["handshake_ms"] for r in rows)
            bound = statistics.median(r["bound_ms"] for r in rows)
            ratios = sorted(r["handshake_ms"] / r["bound_ms"] for r in rows)
            out.append("Handshake over the sim's 115200-baud UART (rp2040, main.py against ovpnkx serve), %d runs:"
                       % len(rows))
            out.append("  device session start -> keys       %6.0f ms  median [%d-%d]"
                       % (hs, min(r["handshake_ms"] for r in rows), max(r["handshake_ms"] for r in rows)))
            out.append("  control-channel bytes on the wire   %6d B   (%d up, %d down; seriallink fragments, COBS + CRC32)"
                       % (rows[0]["bytes"], rows[0]["up"], rows[0]["down"]))
            out.append("  wire-time lower bound (x10 / baud)  %6.0f ms" % bound)
            out.append("  handshake / bound                   %6.2fx   [%.2f-%.2f]  (aim: <= 1.25x)"
                       % (hs / bound, ratios[0], ratios[-1]))
        else:
            out.append("Handshake over the 115200-baud UART: every run FAILED")
        return "\n".join(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
