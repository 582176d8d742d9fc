"""``ovpnkx sim``: run a simulated board in the foreground.

``ovpnkx sim start --board NAME`` prints one JSON line (the board's PTYs, flash
folder, control socket, heap, pid) and then serves until SIGINT/SIGTERM:

- ``repl``: a PTY carrying the board's REPL; its other end is joined to the
  MicroPython process's stdin/stdout. A soft reset (Ctrl-D, machine.soft_reset,
  SystemExit) or hard reset (machine.reset) restarts that process with a fresh
  heap while the PTY stays open, as a board's USB-CDC port would.
- ``uart``: a PTY for the host; the firmware opens the board side through
  ``machine.UART(1)``. Between the two the launcher relays through a LinkModel
  per direction (baud pacing, latency, drop, duplicate, corrupt).
- ``control``: a Unix socket to change the link or read its counters at runtime
  (``ovpnkx sim link`` or ovpnkx_sim.control.request()).

``ovpnkx sim link --control PATH [--drop P ...]`` talks to that socket.
``ovpnkx sim boards`` lists the board descriptions.
"""

import argparse
import calendar
import errno
import json
import os
import pty
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tty

from .boards import SIM_DIR, REPO, list_boards, load_board
from . import shim as _shim
from .link import LinkModel

FIRMWARE_LIB = os.path.join(SIM_DIR, "firmware_lib")
FROZEN = os.path.join(REPO, "firmware")
_OUT_CAP = 1 << 20  # bytes queued for a PTY nobody reads before they are dropped
_SIGINT_BIT = 1 << (signal.SIGINT - 1)
SIM_OWN = 256 * 1024  # host bytes for the sim's own Python HAL and REPL, beyond the board's heap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ovpnkx sim``."""
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION")
    start = sub.add_parser("start", help="start one simulated board (foreground)")
    start.add_argument("--board", default="sim", help="board name (%s)" % ", ".join(list_boards()))
    start.add_argument("--flash", help="folder that is the board's file system (default: a temp dir)")
    start.add_argument("--frozen", default=FROZEN,
                       help="folder standing for the frozen modules (default: the repo's firmware/; '' for none)")
    start.add_argument("--heap", type=int, help="heap in bytes (default: the board's)")
    start.add_argument("--heap-bytes", action="store_true",
                       help="give the host GC exactly --heap bytes instead of the same number of 32-bit words")
    scale = start.add_mutually_exclusive_group()
    scale.add_argument("--code-at-chip-scale", action="store_true",
                       help="the default: charge each .mpy loaded from the flash again what stock firmware "
                            "keeps of it (its new interned names for good, the rest of the file while "
                            "loaded), for the words its bytes take on a 32-bit board (an estimate that "
                            "leans high; see sim/README.md)")
    scale.add_argument("--code-at-host-scale", action="store_true",
                       help="charge loaded code only what the unix port holds of it (bytes at half their "
                            "words on a 32-bit board): a lower bound of the board's heap, as before")
    start.add_argument("--baud", type=int, default=115200, help="uart line rate, 8N1; 0 = unlimited")
    start.add_argument("--drop", type=float, default=0.0, help="uart: probability a byte is lost")
    start.add_argument("--dup", type=float, default=0.0, help="uart: probability a byte arrives twice")
    start.add_argument("--corrupt", type=float, default=0.0, help="uart: probability a byte gets one bit flipped")
    start.add_argument("--latency-ms", type=float, default=0.0, help="uart: delay before a byte is on the line")
    start.add_argument("--seed", type=int, default=None, help="seed of the link model's PRNG")
    start.add_argument("--trng-fault", default=None, metavar="stuck|bias=P|repeat=N|correlated=R",
                       help="make the noise model behind the board's TRNG registers fail this way")
    start.add_argument("--ticks-start", type=int, default=0, metavar="MS",
                       help="time.ticks_ms() at boot (e.g. 2**30 - 5000: the ticks wrap 5 s after boot)")
    link = sub.add_parser("link", help="change or read the link model of a running sim")
    link.add_argument("--control", required=True, help="the control socket path from the start line")
    link.add_argument("--dir", default="both", choices=("both", "to_host", "to_board"))
    for name in ("baud", "seed"):
        link.add_argument("--" + name, type=int)
    for name in ("drop", "dup", "corrupt", "latency-ms"):
        link.add_argument("--" + name, type=float)
    link.add_argument("--stats", action="store_true", help="print the counters")
    sub.add_parser("boards", help="list the board descriptions")


def run(args) -> int:
    """Dispatch ``ovpnkx sim ACTION``."""
    if args.sim_command == "start":
        return _start(args)
    if args.sim_command == "link":
        return _link(args)
    if args.sim_command == "boards":
        for name in list_boards():
            b = load_board(name)
            print("%-8s heap %7d  wifi %-5s  %-13s %s" % (
                name, b["heap"], b.get("wifi", False),
                "supported" if b.get("supported", True) is not False else "refused: no " + str(
                    (b.get("unsupported") or {}).get("missing", "tls")), b.get("machine", "")))
        return 0
    print("usage: ovpnkx sim {start,link,boards} ...", file=sys.stderr)
    return 2


def parse_trng_fault(text):
    """Check a --trng-fault value and return it as given (None passes).

    Forms (those of ovpnkx.noise.SimTrng): "stuck", "stuck=0|1", "bias=P",
    "repeat=N", "correlated=R". ValueError names what is wrong.
    """
    if text is None:
        return None
    kind, eq, value = text.partition("=")
    try:
        if kind == "stuck" and (not eq or value in ("0", "1")):
            return text
        if kind in ("bias", "correlated") and 0.0 <= float(value) <= 1.0:
            return text
        if kind == "repeat" and int(value) >= 1:
            return text
    except ValueError:
        pass
    raise ValueError("--trng-fault must be stuck, stuck=0|1, bias=P, repeat=N or correlated=R "
                     "(P, R in [0, 1], N >= 1), not %r" % text)


def _link(args) -> int:
    from .control import request

    if args.stats:
        print(json.dumps(request(args.control, {"cmd": "stats"})))
        return 0
    cmd = {"cmd": "link", "dir": args.dir}
    for key in ("baud", "seed", "drop", "dup", "corrupt", "latency_ms"):
        value = getattr(args, key)
        if value is not None:
            cmd[key] = value
    reply = request(args.control, cmd)
    print(json.dumps(reply))
    return 0 if reply.get("ok") else 1


def _start(args) -> int:
    try:
        board = load_board(args.board)
        fault = parse_trng_fault(args.trng_fault)
    except (KeyError, ValueError) as exc:
        print("ovpnkx sim: %s" % exc.args[0], file=sys.stderr)
        return 2
    sim = Sim(board, args, fault)
    try:
        sim.serve()
    finally:
        sim.close()
    return 0


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop()


def _pty_pair():
    """(master fd, slave fd, slave path), both ends raw, master non-blocking."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class _Sink:
    """Bytes waiting to be written to a non-blocking fd."""

    def __init__(self, fd, cap=_OUT_CAP):
        self.fd = fd
        self.buf = bytearray()
        self.cap = cap
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        excess = len(self.buf) - self.cap
        if excess > 0:  # nobody reads this end: lose the oldest, like a full FIFO
            del self.buf[:excess]
            self.dropped += excess

    def flush(self) -> None:
        while self.buf:
            try:
                n = os.write(self.fd, self.buf[:65536])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EPIPE):
                    self.buf.clear()
                    return
                raise
            del self.buf[:n]


class Sim:
    """One simulated board: the PTYs, the MicroPython process, the relay loop."""

    def __init__(self, board: dict, args, trng_fault):
        self.board = board
        self.args = args
        self.state = tempfile.mkdtemp(prefix="ovpnkx-sim-")
        self.own_flash = not args.flash
        self.flash = os.path.abspath(args.flash or os.path.join(self.state, "flash"))
        os.makedirs(self.flash, exist_ok=True)
        self.heap = int(args.heap or board["heap"])
        word = 8 if sys.maxsize > 2 ** 32 else 4
        self.heap_host = self.heap if args.heap_bytes else self.heap * word // 4
        # The sim's HAL and REPL are Python here but C on a board: the process gets
        # SIM_OWN more, and _simboot holds back whatever is left over the board's own
        # free heap after boot (its GC heap less what the firmware uses at boot).
        fw_heap = (board.get("stock_firmware") or {}).get("gc_heap") or {}
        used = int(fw_heap.get("used_after_boot", 0))
        self.free_after_boot_host = (self.heap - used) * self.heap_host // self.heap
        own = SIM_OWN if args.heap_bytes else SIM_OWN // (word // 4)
        self.heap_arg = "heapsize=%d%s" % (self.heap + own, "" if args.heap_bytes else "w")
        # code at the chip's scale (unless --code-at-host-scale): a loaded .mpy's bytes (its code
        # and strings) take twice the words on a 32-bit board that they take on this 64-bit host;
        # each module then carries the rest
        self.code_charge = word // 4 - 1 if not args.code_at_host_scale and not args.heap_bytes else 0
        self.trng_fault = trng_fault
        fw = board.get("stock_firmware") or {}
        self.ticks_period = int(fw.get("ticks_period", {}).get("value", 1 << 30))
        self.ticks_zero_ms = int(time.monotonic() * 1000) - int(args.ticks_start or 0) % self.ticks_period
        self.rtc_at_reset = fw.get("rtc_at_reset", {}).get("value")
        self.rtc_offset_s = self._rtc_reset_offset()
        self.shim = _shim.path()
        mbed = fw.get("mbedtls_heap") or {}
        self.mbedtls_scale = 0.0
        if self.shim and mbed.get("where") == "gc":
            self.mbedtls_scale = float(mbed.get("chip_bytes_per_host_byte", 1.0)) * self.heap_host / self.heap
        self._ctl_text = ""
        self.repl_m, self.repl_s, self.repl_path = _pty_pair()
        self.fw_m, self.fw_s, self.fw_path = _pty_pair()      # board side of the uart
        self.host_m, self.host_s, self.host_path = _pty_pair()  # host side of the uart
        self.to_host = LinkModel(args.baud, args.drop, args.dup, args.corrupt, args.latency_ms, args.seed)
        self.to_board = LinkModel(args.baud, args.drop, args.dup, args.corrupt, args.latency_ms,
                                  None if args.seed is None else args.seed + 1)
        self.control_path = os.path.join(self.state, "control.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.control_path)
        self.server.listen(4)
        self.server.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.repl_out = _Sink(self.repl_m)
        self.fw_out = _Sink(self.fw_m)
        self.host_out = _Sink(self.host_m)
        self.child_in = None
        self.proc = None
        self.ctl_r = None
        self.next_mode = "friendly"
        self.boots = 0
        self.reset_kind = None
        self._carry = bytearray()
        self.stopping = False
        self.clients = {}

    # ---- the MicroPython process ----

    def _rtc_reset_offset(self) -> int:
        """RTC minus host clock right after a hard reset (the board's rtc_at_reset)."""
        if not self.rtc_at_reset:
            return 0
        y, mo, d, h, mi, s = self.rtc_at_reset
        at_reset = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        return at_reset - int(time.time())

    def _config(self, mode: str) -> dict:
        return {
            "name": self.board["name"], "board": self.board, "mode": mode,
            "flash": self.flash, "simlib": FIRMWARE_LIB, "model_lib": FROZEN,
            "frozen": os.path.abspath(self.args.frozen) if self.args.frozen else "",
            "board_dir": self.board.get("dir", ""),
            "uart_dev": self.fw_path, "ctl_fd": None, "heap": self.heap,
            "trng_fault": self.trng_fault, "ticks_zero_ms": self.ticks_zero_ms,
            "rtc_offset_s": self.rtc_offset_s, "mbedtls_scale": self.mbedtls_scale,
            "code_charge": self.code_charge,
            "free_after_boot_host": self.free_after_boot_host,
        }

    def _boot(self) -> None:
        ctl_r, ctl_w = os.pipe()
        cfg = self._config(self.next_mode)
        cfg["ctl_fd"] = ctl_w
        env = dict(os.environ)
        env["OVPNKX_SIM_CONFIG"] = json.dumps(cfg)
        env["MICROPYPATH"] = FIRMWARE_LIB
        if self.shim:
            env["LD_PRELOAD"] = self.shim
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SIM_DIR, "_mprun.py"), "-X", self.heap_arg,
             os.path.join(FIRMWARE_LIB, "_simboot.py")],
            # one console stream, as a board's REPL has: stderr's lines come in order with stdout's
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(ctl_w,), env=env, cwd=self.flash, start_new_session=True)
        os.close(ctl_w)
        self.ctl_r = ctl_r
        self.reset_kind = None
        self.next_mode = "friendly"
        self.boots += 1
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel.register(self.proc.stdout.fileno(), selectors.EVENT_READ, "child_out")
        os.set_blocking(ctl_r, False)
        self.sel.register(ctl_r, selectors.EVENT_READ, "ctl")
        os.set_blocking(self.proc.stdin.fileno(), False)
        self.child_in = _Sink(self.proc.stdin.fileno())
        self.child_in.add(bytes(self._carry))
        self._carry = bytearray()

    def _child_catches_sigint(self) -> bool:
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & _SIGINT_BIT)
        except OSError:
            pass
        return False

    def _reap(self) -> None:
        """The board process ended (reset): drain it, then boot again."""
        proc = self.proc
        for f in (proc.stdout,):
            try:
                self.sel.unregister(f.fileno())
            except (KeyError, ValueError):
                pass
            try:
                rest = f.read() or b""
            except OSError:
                rest = b""
            self.repl_out.add(rest)
            f.close()
        self._read_ctl()
        try:
            self.sel.unregister(self.ctl_r)
        except (KeyError, ValueError):
            pass
        os.close(self.ctl_r)
        self.ctl_r = None
        try:
            proc.stdin.close()
        except OSError:
            pass
        rc = proc.wait()
        if self.reset_kind is None and not self.stopping:
            sys.stderr.write("ovpnkx sim: board process ended unexpectedly (%s); hard reset\n" % rc)
        self._carry = bytearray(self.child_in.buf)
        if not self.stopping:
            self._boot()

    def _read_ctl(self) -> None:
        try:
            data = os.read(self.ctl_r, 256)
        except (BlockingIOError, OSError):
            return
        text = self._ctl_text + data.decode("ascii", "replace")
        self._ctl_text = ""
        codes = []
        i = 0
        while i < len(text):  # "T<offset>;": the board set its RTC (kept over a soft reset)
            if text[i] == "T":
                j = text.find(";", i)
                if j < 0:
                    self._ctl_text = text[i:]
                    break
                try:
                    self.rtc_offset_s = int(text[i + 1:j])
                except ValueError:
                    pass
                i = j + 1
                continue
            codes.append(text[i])
            i += 1
        data = "".join(codes).encode()
        for c in data:
            if c in b"FR":
                self.reset_kind = "soft"
                self.next_mode = "raw" if c == ord("R") else "friendly"
            elif c == ord("H"):
                self._hard_reset()

    def _hard_reset(self) -> None:
        """As the board's reset: RTC back to rtc_at_reset, ticks from 0, fresh process."""
        self.reset_kind = "hard"
        self.next_mode = "friendly"
        self.rtc_offset_s = self._rtc_reset_offset()
        self.ticks_zero_ms = int(time.monotonic() * 1000)
        self._kill()

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass

    # ---- the control socket ----

    def _control(self, req: dict) -> dict:
        cmd = req.get("cmd")
        if cmd == "link":
            params = {k: req[k] for k in ("baud", "drop", "dup", "corrupt", "latency_ms", "seed") if k in req}
            dirs = {"both": (self.to_host, self.to_board), "to_host": (self.to_host,),
                    "to_board": (self.to_board,)}.get(req.get("dir", "both"))
            if dirs is None:
                return {"ok": False, "error": "dir must be both, to_host or to_board"}
            for link in dirs:
                link.set(**params)
            return {"ok": True, "link": self._link_state()}
        if cmd == "stats":
            return {"ok": True, "link": self._link_state(), "boots": self.boots,
                    "stats": {"to_host": dict(self.to_host.stats), "to_board": dict(self.to_board.stats)}}
        if cmd == "reset":
            self._hard_reset()
            return {"ok": True}
        if cmd == "stop":
            self.stopping = True
            return {"ok": True}
        return {"ok": False, "error": "unknown cmd %r" % (cmd,)}

    def _link_state(self) -> dict:
        return {"to_host": self.to_host.settings(), "to_board": self.to_board.settings()}

    def _serve_client(self, conn) -> None:
        buf = self.clients[conn]
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            try:
                reply = self._control(json.loads(line.decode()))
            except (ValueError, TypeError) as exc:
                reply = {"ok": False, "error": str(exc)}
            try:
                conn.setblocking(True)
                conn.sendall(json.dumps(reply).encode() + b"\n")
                conn.setblocking(False)
            except OSError:
                data = b""
        if not data:
            self.sel.unregister(conn)
            del self.clients[conn]
            conn.close()

    # ---- the relay loop ----

    def start_line(self) -> dict:
        return {
            "board": self.board["name"], "machine": self.board.get("machine"),
            "repl": self.repl_path, "uart": self.host_path, "flash": self.flash,
            "control": self.control_path, "pid": os.getpid(),
            "heap": self.heap, "heap_host": self.heap_host, "wifi": bool(self.board.get("wifi")),
            "link": self.to_host.settings(), "trng_fault": self.trng_fault,
            "heap_free_host": self.free_after_boot_host,
            "ticks_period": self.ticks_period, "rtc_at_reset": self.rtc_at_reset,
            "mbedtls_charged": bool(self.mbedtls_scale),
            "shim": self.shim or "none: " + _shim.why(),
        }

    def serve(self) -> None:
        old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.sel.register(self.repl_m, selectors.EVENT_READ, "repl")
            self.sel.register(self.fw_m, selectors.EVENT_READ, "fw")
            self.sel.register(self.host_m, selectors.EVENT_READ, "host")
            self.sel.register(self.server, selectors.EVENT_READ, "server")
            self._boot()
            sys.stdout.write(json.dumps(self.start_line()) + "\n")
            sys.stdout.flush()
            while not self.stopping:
                self._step()
        except _Stop:
            pass
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _step(self) -> None:
        now = time.monotonic()
        dues = [d for d in (self.to_host.next_due(), self.to_board.next_due()) if d is not None]
        timeout = 0.2
        if dues:
            timeout = max(0.0, min(min(dues) - now, timeout))
        if self.repl_out.buf or self.fw_out.buf or self.host_out.buf or self.child_in.buf:
            timeout = min(timeout, 0.005)
        for key, _ in self.sel.select(timeout):
            what = key.data
            if what == "repl":
                self._from_host_repl(self._read(self.repl_m))
            elif what == "child_out":
                data = self._read(key.fd)
                self.repl_out.add(data)
            elif what == "ctl":
                self._read_ctl()
            elif what == "fw":
                self.to_host.feed(self._read(self.fw_m), time.monotonic())
            elif what == "host":
                self.to_board.feed(self._read(self.host_m), time.monotonic())
            elif what == "server":
                try:
                    conn, _ = self.server.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                self.clients[conn] = bytearray()
                self.sel.register(conn, selectors.EVENT_READ, "client")
            elif what == "client":
                self._serve_client(key.fileobj)
        now = time.monotonic()
        self.host_out.add(self.to_host.take(now))
        self.fw_out.add(self.to_board.take(now))
        for sink in (self.repl_out, self.fw_out, self.host_out, self.child_in):
            sink.flush()
        if self.proc.poll() is not None:
            self._reap()

    @staticmethod
    def _read(fd) -> bytes:
        try:
            return os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    def _from_host_repl(self, data: bytes) -> None:
        # Ctrl-C interrupts only while user code runs (the board's interrupt char is
        # set then); otherwise it is a byte for the REPL, as on a real board.
        while data:
            i = data.find(b"\x03")
            if i < 0:
                self.child_in.add(data)
                return
            self.child_in.add(data[:i])
            if self._child_catches_sigint():
                self.child_in.flush()
                try:
                    os.kill(self.proc.pid, signal.SIGINT)
                except OSError:
                    pass
            else:
                self.child_in.add(b"\x03")
            data = data[i + 1:]

    def close(self) -> None:
        self.stopping = True
        self._kill()
        if self.proc:
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        for conn in list(self.clients):
            conn.close()
        self.server.close()
        self.sel.close()
        for fd in (self.repl_m, self.repl_s, self.fw_m, self.fw_s, self.host_m, self.host_s, self.ctl_r):
            try:
                os.close(fd)
            except (OSError, TypeError):
                pass
        # the state folder holds the control socket and, by default, the flash
        shutil.rmtree(self.state, ignore_errors=True)
