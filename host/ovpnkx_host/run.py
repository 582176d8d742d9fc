"""`ovpnkx run` (`make run`): the key exchange on a simulated board over its serial line.

Starts a simulated board (`ovpnkx sim`, default ``rp2040w``: a Raspberry Pi Pico W,
the most common Pico whose stock firmware has ``tls``, on its UART) with stock MicroPython, flashes it as
`make flash` does (``tools/flash.py``: ``.mpy`` files, ``/client.ovpn``,
``/ovpnkx.json``), soft-resets it so ``main.py`` runs the key exchange over the
board's data UART against ``ovpnkx serve``'s server (here in-process, so every
frame on the line is counted), pings both ways, and prints a summary: the states
with their times, the cipher, a fingerprint of key2 on each side (never the keys),
the bytes on the wire and the wire-time lower bound at that baud rate
(bytes x 10 bits / baud, 8N1). Exit 0 only when both sides agree.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

from ovpnkx.config import parse_config
from ovpnkx.seriallink import OVERHEAD, Link

from . import pki as pkimod
from .demo import agreement_rows
from .process import stop_process
from .runtime import FIRMWARE
from .serial_link import SerialLink, console_event

REPO = os.path.dirname(FIRMWARE)
OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
P_DATA_V1, P_DATA_V2 = 6, 9  # opcodes of data-channel packets; all others are control channel
STATES = ("S_PRE_START", "S_START", "S_SENT_KEY", "S_GOT_KEY", "S_ACTIVE", "S_GENERATED_KEYS")
TIMEOUT_S = 90


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx run`."""
    p.add_argument("--board", default="rp2040w",
                   help="simulated board (default rp2040w: a Pico W over its UART; see `ovpnkx sim boards`)")
    p.add_argument("--baud", type=int, default=115200, help="the serial line's rate, 8N1 (default 115200)")
    p.add_argument("--pings", type=int, default=3, help="keepalive pings each way (default 3)")
    p.add_argument("--keep", metavar="DIR", help="write the PKI, configs and the sim's flash to DIR and keep them")
    p.add_argument("--trng-fault", metavar="stuck|bias=P|...",
                   help="make the board's noise source fail this way (see `ovpnkx sim start --help`): "
                        "the key exchange must stop before anything is sent")


def wire_size(link: Link, n: int) -> int:
    """Wire bytes of an ``n``-byte packet on a clean line at ``link``'s current fragment size."""
    size = link.fragment_size()
    frags = (n + size - 1) // size if n else 1
    return n + frags * OVERHEAD + 1


class CountingLink(SerialLink):
    """A SerialLink that logs every packet: (seconds, "up"|"down", wire bytes, data channel?).

    A packet's wire bytes are what its fragments cost on a clean line at the link's
    fragment size then (``wire_size``); repeats and acknowledgements are in the
    link's own byte counters."""

    def __init__(self, url: str, baud: int) -> None:
        super().__init__(url, baud)
        self.frames: list = []

    def _log(self, direction: str, packet: bytes) -> None:
        data = bool(packet) and packet[0] >> 3 in (P_DATA_V1, P_DATA_V2)
        self.frames.append((time.monotonic(), direction, wire_size(self.link, len(packet)), data))

    def send(self, packet: bytes) -> None:
        super().send(packet)
        self._log("down", packet)

    def feed(self, data: bytes, on_line=None) -> list:
        packets = super().feed(data, on_line)
        for p in packets:
            self._log("up", p)
        return packets


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _tool(name: str):
    """The checkout's ``tools/<name>.py`` as a module (flash.py, size.py: scripts, not a package)."""
    path = os.path.join(REPO, "tools", name + ".py")
    if not os.path.exists(path):
        raise SystemExit("ovpnkx run: %s not found (run from a checkout: `make run`)" % path)
    spec = importlib.util.spec_from_file_location("ovpnkx_%s_tool" % name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _flash_tool():
    return _tool("flash")


def _start_sim(board: str, baud: int, flash_dir: "str | None", extra: "list | None" = None) -> "tuple":
    args = [OVPNKX, "sim", "start", "--board", board, "--frozen", "", "--baud", str(baud)] + (extra or [])
    if flash_dir:
        args += ["--flash", flash_dir]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("{"):
        proc.kill()
        raise SystemExit("ovpnkx run: the simulated board did not start: %s%s" % (line, proc.stderr.read()))
    return proc, json.loads(line)


def stop_to_repl(port, timeout_s: float = 10.0) -> bool:
    """Stop what runs on the board (Ctrl-C, and Ctrl-B out of a raw REPL) until its REPL
    prompt shows; False if none showed within ``timeout_s``. What was read is dropped."""
    seen = b""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not seen.endswith(b">>> "):
        port.write(b"\r\x03\x03\x02")
        wait = time.monotonic() + 0.5
        while time.monotonic() < wait and not seen.endswith(b">>> "):
            seen = (seen + port.read(4096))[-64:]
    port.reset_input_buffer()
    return seen.endswith(b">>> ")


SOFT_REBOOT = b"soft reboot"  # MicroPython's banner on a soft reset ("MPY: soft reboot")


def soft_reset_into_main(port, timeout_s: float = 10.0, attempts: int = 3, banner_s: float = 5.0) -> None:
    """Stop what runs on the board until its REPL prompt shows (``stop_to_repl``), then
    soft-reset (Ctrl-D) so that main.py runs, and read up to the board's "soft reboot"
    banner (what follows is left for the caller). A Ctrl-D that arrives while main.py is
    still winding down (its exit notification after a Ctrl-C) is read as its input and
    lost, and the board never restarts: without the banner within ``banner_s`` the board
    is stopped and reset again. Without a prompt within ``timeout_s`` the Ctrl-D goes
    anyway. Raises RuntimeError, naming the port, when no attempt brought the banner."""
    for _ in range(attempts):
        stop_to_repl(port, timeout_s)
        port.write(b"\x04")
        if _read_past(port, SOFT_REBOOT, banner_s):
            return
    raise RuntimeError("the board on %s did not soft-reset: no %r after Ctrl-D, %d times"
                       % (getattr(port, "port", port), SOFT_REBOOT.decode(), attempts))


def _read_past(port, marker: bytes, timeout_s: float) -> bool:
    """Read byte by byte until ``marker`` has been read (True) or ``timeout_s`` passed."""
    seen = b""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        seen = (seen + port.read(1))[-len(marker):]
        if seen == marker:
            return True
    return False


def console_events(text: bytes) -> list:
    """The events of a console text's whole lines (the last one may still be arriving)."""
    return [e for e in map(console_event, text.split(b"\n")[:-1]) if e is not None]


def console_crash(text: bytes) -> "list | None":
    """The traceback lines (the exception's last) of main.py's crash since the board's
    last boot in a console text, once its exception line is whole; None without one.
    The KeyboardInterrupt of a Ctrl-C is no crash."""
    boot = max(text.rfind(b"MPY: soft reboot"), text.rfind(b'"event": "boot"'), 0)
    i = text.rfind(b"Traceback (most recent call last)", boot)
    if i < 0:
        return None
    lines = []
    for raw in text[i:].split(b"\n")[1:-1]:
        line = raw.strip()
        if not line:
            continue
        lines.append(line.decode("utf-8", "replace"))
        if not line.startswith(b"File "):  # the exception line (MicroPython prints no source lines)
            return None if line.startswith(b"KeyboardInterrupt") else lines
    return None


class ConsoleReader:
    """A board's console on an open serial port (pyserial, a read timeout of 0.1 s):
    ``text`` is all read so far, ``events`` the events of its ``OVPNKX`` lines."""

    def __init__(self, port) -> None:
        self.port = port
        self.text = b""
        self.events: list = []

    def poll(self, size: int = 4096) -> list:
        """One read of up to ``size`` bytes (it ends on the port's timeout); the events so far."""
        self.text += self.port.read(size)
        self.events = console_events(self.text)
        return self.events

    def crashed(self) -> bool:
        """main.py ended with a traceback (e.g. MemoryError) instead of an event since
        the last boot (see ``console_crash``)."""
        return console_crash(self.text) is not None

    def read_until(self, kinds=("result", "config_error"), timeout_s: float = 30) -> list:
        """Read until an event of one of ``kinds`` or a crash of main.py, for at most
        ``timeout_s``; returns all events so far."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            # a read ends on its 0.1 s timeout: a caller that stops the host side right after
            # the result still leaves it time for the device's last frames
            self.poll()
            if any(e.get("event") in kinds for e in self.events) or self.crashed():
                break
        return self.events

    def read_result(self, kinds=("result", "config_error"), timeout_s: float = 30) -> list:
        """``read_until``, and a crash of main.py as a last, failed result event
        (its reason the exception line, its traceback the lines)."""
        events = list(self.read_until(kinds, timeout_s))
        crash = console_crash(self.text)
        if crash is not None:
            events.append({"event": "result", "ok": False, "reason": "main.py crashed: " + crash[-1],
                           "traceback": crash})
        return events


def _device_session(repl: str, timeout_s: float) -> list:
    """Soft-reset into main.py and read the console's OVPNKX lines up to the result
    (a crash of main.py is a failed result)."""
    import serial  # type: ignore[import-untyped]

    with serial.serial_for_url(repl, baudrate=115200, timeout=0.1) as port:
        soft_reset_into_main(port)
        return ConsoleReader(port).read_result(("result", "config_error"), timeout_s)


async def _session(cfg, link: CountingLink, repl: str, peer_events: list, marks: dict,
                   timeout_s: float = TIMEOUT_S) -> list:
    from .serve import Server, _serve_serial

    loop = asyncio.get_running_loop()

    def emit(record: dict) -> None:
        peer_events.append(record)
        if record.get("event") == "keys" and "keys_frame" not in marks:
            marks["keys_frame"] = len(link.frames)  # its PUSH_REPLY frames went out just before

    server = Server(cfg, True, emit, key_fingerprint=True)  # the agreement check compares fingerprints
    _serve_serial(server, link, loop)
    device = await loop.run_in_executor(None, _device_session, repl, timeout_s)
    await asyncio.sleep(0.3)  # the device's OCC EXIT and last frames
    for peer in list(server.sessions):
        server.close(peer, "ovpnkx run is over")
    return device


def prepare(work: str, pings: int, baud: int) -> dict:
    """PKI, the server's parsed config and the board's client config under ``work``."""
    os.makedirs(work, exist_ok=True)
    pki = pkimod.make_pki(os.path.join(work, "pki"))
    server_conf = "\n".join([
        "server 10.8.0.0 255.255.255.0", "proto udp", "port 0", "local 127.0.0.1",
        "ca %s" % pki.ca, "cert %s" % pki.server_cert, "key %s" % pki.server_key,
        "tls-auth %s 0" % pki.tls_auth, "keepalive 1 10", "data-ciphers AES-256-GCM:AES-128-GCM", ""])
    client_conf = os.path.join(work, "client.ovpn")
    with open(client_conf, "w") as f:  # over serial the remote is not used: the host side decides
        f.write("\n".join(["client", "remote 127.0.0.1 1194 udp", "remote-cert-tls server",
                           "ca %s" % pki.ca, "cert %s" % pki.client_cert, "key %s" % pki.client_key,
                           "tls-auth %s 1" % pki.tls_auth, "data-ciphers AES-256-GCM", ""]))
    return {"work": work, "pki": pki, "cfg": parse_config(server_conf, "server.conf", _read, server=True),
            "client_conf": client_conf, "settings": {"pings": pings, "reconnect": False, "baud": baud, "fingerprint": True}}


def flash_board(board: str, baud: int, prep: dict, flash_dir: "str | None" = None,
                sim_args: "list | None" = None) -> dict:
    """Start the simulated board (``flash_dir``: its file system, kept; ``sim_args``: more
    `ovpnkx sim start` flags) and flash it (`make flash`, no reset); returns {"sim", "info",
    "report"} (stop with ``stop_board``)."""
    sim, info = _start_sim(board, baud, flash_dir, sim_args)
    try:
        report = _flash_tool().flash(board, info["repl"], prep["client_conf"], "serial", dict(prep["settings"]),
                                     reset=False, out=os.path.join(prep["work"], "staged-" + board))
    except BaseException:
        stop_process(sim)
        raise
    return {"sim": sim, "info": info, "report": report}


def stop_board(board: dict) -> None:
    """Stop the simulated board of ``flash_board``/``start_flashed``."""
    stop_process(board["sim"])


def start_flashed(board: str, flash_dir: str, baud: int, heap: "int | None" = None,
                  heap_bytes: bool = False, sim_args: "list | None" = None) -> dict:
    """Start a simulated board on an already flashed file system (``heap``: 32-bit-board
    bytes as -X heapsize=Nw; ``heap_bytes``: exactly that many host bytes; ``sim_args``:
    more `ovpnkx sim start` flags)."""
    extra = (["--heap", str(heap)] if heap else []) + (["--heap-bytes"] if heap_bytes else []) + (sim_args or [])
    sim, info = _start_sim(board, baud, flash_dir, extra)
    return {"sim": sim, "info": info, "report": None}


def exchange(board: dict, prep: dict, baud: int, timeout_s: float = TIMEOUT_S) -> dict:
    """Run main.py on ``board`` against the in-process server; device and server events,
    the frame log and where the server's keys came (``marks``)."""
    info = board["info"]
    link = CountingLink(info["uart"], baud)
    peer: list = []
    marks: dict = {}
    try:
        device = asyncio.run(_session(prep["cfg"], link, info["repl"], peer, marks, timeout_s))
    finally:
        link.close()
    return {"device": device, "peer": peer, "frames": link.frames, "marks": marks}


def figures(ex: dict, baud: int) -> dict:
    """The handshake's figures from an ``exchange``: time to keys on the device, the
    control-channel bytes on the wire up to the server's PUSH_REPLY, the bound."""
    device, frames, marks = ex["device"], ex["frames"], ex["marks"]
    keys = [e for e in device if e.get("event") == "keys"]
    if not keys or "keys_frame" not in marks:
        return {}
    starts = [e["at_ms"] for e in device if e.get("event") == "state"]
    hs = [f for f in frames[:marks["keys_frame"]] if not f[3]]
    up = [f[2] for f in hs if f[1] == "up"]
    down = [f[2] for f in hs if f[1] == "down"]
    total = sum(up) + sum(down)
    return {"handshake_ms": keys[0]["at_ms"] - (starts[0] if starts else 0), "up": sum(up), "down": sum(down),
            "frames_up": len(up), "frames_down": len(down), "bytes": total,
            "bound_ms": total * 10 * 1000 / baud,
            "session_bytes": sum(f[2] for f in frames)}


def run(args: argparse.Namespace) -> int:
    """Run the key exchange on the simulated board and print the summary."""
    if args.baud <= 0 or args.pings < 1:
        print("ovpnkx run: --baud must be > 0 and --pings >= 1", file=sys.stderr)
        return 2
    from ovpnkx_sim.boards import load_board, refusal

    try:
        reason = refusal(load_board(args.board))
    except KeyError as exc:
        print("ovpnkx run: %s" % exc.args[0], file=sys.stderr)
        return 2
    if reason:
        print("ovpnkx run: %s" % reason, file=sys.stderr)
        return 2
    prep = prepare(args.keep or tempfile.mkdtemp(prefix="ovpnkx-run-"), args.pings, args.baud)
    board = flash_board(args.board, args.baud, prep, os.path.join(prep["work"], "flash") if args.keep else None,
                        ["--trng-fault", args.trng_fault] if args.trng_fault else None)
    try:
        info, report = board["info"], board["report"]
        print("ovpnkx run: simulated %s (%s), stock MicroPython with no frozen modules"
              % (info["board"], info["machine"]), flush=True)
        print("  flashed in %.1f s (as `make flash`): .mpy files, native code for %s; /client.ovpn, /ovpnkx.json"
              % (report["seconds"], report["arch"] or "no architecture"), flush=True)
        uart = report["settings"].get("data_uart") or {}
        print("  key exchange over the board's UART%s (host end %s) at %d baud 8N1, in checked fragments (COBS + CRC32),"
              " against ovpnkx serve (CPython)\n" % (uart.get("id", ""), info["uart"], args.baud), flush=True)
        ex = exchange(board, prep, args.baud)
    finally:
        stop_board(board)
        if not args.keep:
            shutil.rmtree(prep["work"], ignore_errors=True)
    return _summary(ex, args)


def _state_times(events: list) -> dict:
    out: dict = {}
    origin = None
    for e in events:
        if e.get("event") == "state" and e.get("key_id") == 0:
            origin = e["at_ms"] if origin is None else origin
            out.setdefault(e["state"], e["at_ms"] - origin)
    return out


def _summary(ex: dict, args) -> int:
    device, peer, frames = ex["device"], ex["peer"], ex["frames"]
    result = ([e for e in device if e.get("event") in ("result", "config_error")] or [{"ok": False}])[-1]
    dev_states, peer_states = _state_times(device), _state_times(peer)
    print("%-22s %-24s %-24s" % ("states (ms)", "device (MicroPython)", "server (CPython)"))
    names = [s for s in STATES if s in dev_states or s in peer_states]
    names += [s for s in list(dev_states) + list(peer_states) if s not in names]
    for s in names:
        print("  %-20s %-24s %-24s" % (s, dev_states.get(s, "-"), peer_states.get(s, "-")))
    dev_keys = [e for e in device if e.get("event") == "keys"]
    peer_keys = [e for e in peer if e.get("event") == "keys"]
    peer_pings = sum(1 for e in peer if e.get("event") == "ping")
    peer_errors = sum(1 for e in peer if e.get("event") == "decrypt_error")
    print()
    for row in agreement_rows(dev_keys, peer_keys, result, peer_pings, peer_errors):
        print("%-22s %-24s %-24s" % row)
    up = sum(f[2] for f in frames if f[1] == "up")
    down = sum(f[2] for f in frames if f[1] == "down")
    print("%-22s %-24s %-24s" % ("bytes sent on the wire", up, down))
    agree = bool(dev_keys and peer_keys and dev_keys[0]["fingerprint"] == peer_keys[0]["fingerprint"])
    fig = figures(ex, args.baud)
    if fig:
        print("\nserial line at %d baud (8N1: 10 bits a byte)" % args.baud)
        print("  handshake: device session start -> keys   %6d ms" % fig["handshake_ms"])
        print("  handshake bytes on the wire               %6d B  (%d up in %d packets, %d down in %d packets)"
              % (fig["bytes"], fig["up"], fig["frames_up"], fig["down"], fig["frames_down"]))
        print("  wire-time lower bound (bytes x 10 / baud) %6.0f ms  -> handshake took %.2fx the bound"
              % (fig["bound_ms"], fig["handshake_ms"] / fig["bound_ms"]))
        print("  whole session on the wire                 %6d B  (pings and OCC EXIT included)" % (up + down))
    ok = (bool(result.get("ok")) and agree and result.get("pings_received", 0) >= args.pings
          and peer_pings >= args.pings and not peer_errors and not result.get("decrypt_errors"))
    if ok:
        print("\nOK: the key fingerprints agree (%s on both sides); each side decrypted the other's pings (%d, %d)"
              % (dev_keys[0]["fingerprint"], result["pings_received"], peer_pings))
    else:
        why = result.get("reason") or ("the key fingerprints differ" if dev_keys and peer_keys
                                       else "no keys on %s" % ("the server" if dev_keys else "the device"))
        print("\nFAILED: %s" % why)
        if not device:
            print("(no OVPNKX line on the board's console)")
    return 0 if ok else 1
