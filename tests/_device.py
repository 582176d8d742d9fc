"""Helpers for the device tests: a simulated board, flashing, the console, host peers.

Every helper that starts a process returns something with a stop(); tests stop
them in fixtures' teardown or ``finally`` blocks.
"""

import json
import os
import select
import subprocess
import sys
import threading
import time

import serial

from ovpnkx_host.process import stop_process
from ovpnkx_host.run import ConsoleReader, soft_reset_into_main
from ovpnkx_host.sntp import NtpResponder  # noqa: F401  (the tests import it from here)

BIN = os.path.dirname(sys.executable)
OVPNKX = os.path.join(BIN, "ovpnkx")
MPREMOTE = os.path.join(BIN, "mpremote")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

import flash as flash_tool  # noqa: E402  (tools/flash.py)


class Proc:
    """A subprocess whose first stdout line is JSON (``info``); later JSON lines are
    collected in ``events`` by a thread; stop() ends it."""

    def __init__(self, args: list, what: str, timeout: float = 20) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("{"):
            self.proc.kill()
            raise AssertionError("%s did not start: %s %s" % (what, line, self.proc.stderr.read()))
        self.info = json.loads(line)
        self.events: list = []
        self.out = ""
        self.err = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.out += line
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def wait_for(self, pred, timeout: float = 30) -> bool:
        """Wait until ``pred(event)`` holds for an event printed so far."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(pred(e) for e in list(self.events)):
                return True
            if self.proc.poll() is not None and not self._reader.is_alive():
                return any(pred(e) for e in self.events)
            time.sleep(0.05)
        return False

    def stop(self) -> list:
        """SIGTERM (kill if it lingers); returns the JSON lines it printed after the first."""
        stop_process(self.proc)
        self._reader.join(5)
        self.err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return list(self.events)


def start_sim(*args: str) -> Proc:
    """`ovpnkx sim start ARGS` (info: repl, uart, flash, control, ...)."""
    return Proc([OVPNKX, "sim", "start", *args], "sim")


def mp(info: dict, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """`mpremote connect <repl> ARGS`."""
    proc = subprocess.run([MPREMOTE, "connect", info["repl"], *args], capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def put_settings(info: dict, tmp_path, settings: dict, ovpn: "str | None" = None, files=()) -> None:
    """Write /ovpnkx.json (and /client.ovpn, and files beside it) with mpremote."""
    sp = tmp_path / "ovpnkx.json"
    sp.write_text(json.dumps(settings))
    args = ["fs", "cp", str(sp), ":ovpnkx.json"]
    if ovpn is not None:
        op = tmp_path / "client.ovpn"
        op.write_text(ovpn)
        args += ["+", "fs", "cp", str(op), ":client.ovpn"]
    for f in files:
        args += ["+", "fs", "cp", f, ":" + os.path.basename(f)]
    mp(info, *args)


def soft_reset(info: dict) -> None:
    """Ctrl-D at the friendly REPL: main.py runs (as after `make flash`)."""
    flash_tool.soft_reset(info["repl"])


class Console(ConsoleReader):
    """The board's REPL port read with pyserial; ``events`` are its OVPNKX lines
    (``ovpnkx_host.run.ConsoleReader``: ``read_until``, ``crashed``)."""

    def __init__(self, info: dict) -> None:
        super().__init__(serial.serial_for_url(info["repl"], baudrate=115200, timeout=0.1))

    def tail(self, n: int = 1500) -> str:
        """The end of the console text (for assertion messages)."""
        return self.text[-n:].decode("utf-8", "replace")

    def wait(self, pred, timeout: float = 30) -> bool:
        """Read until ``pred(event)`` holds for one of the events so far."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.poll(self.port.in_waiting or 1)
            if any(pred(e) for e in self.events):
                return True
            if self.crashed():
                return False
        return False

    def kinds(self) -> list:
        return [e.get("event") for e in self.events]

    def close(self) -> None:
        self.port.close()


def run_main(info: dict, kinds=("result", "config_error"), timeout: float = 30) -> tuple:
    """Soft-reset the board (once its REPL prompt shows) and collect its console events
    up to the first of ``kinds``.

    Returns (events, console text).
    """
    con = Console(info)
    try:
        soft_reset_into_main(con.port)
        events = con.read_until(kinds, timeout)
        return events, con.text.decode("utf-8", "replace")
    finally:
        con.close()


def once_more_if_out_of_memory(run, what: str) -> tuple:
    """``run(attempt)`` -> (events, ...), run once more when its result is "out of memory"
    (and only then: any other failure stands). For sessions at a board's own heap whose
    success depends on where blocks land (mbedTLS's 16 KB buffer at a renegotiation)."""
    got = run(1)
    result = last(got[0], "result")
    if result["ok"]:
        return got
    assert "out of memory" in result["reason"], result
    print("%s, run 1: %s; once more" % (what, result["reason"]))
    return run(2)


def allocation_counter(name: str, *statements: str) -> str:
    """MicroPython source of ``name(n)``: the heap bytes that running ``statements`` n times
    allocates, counted with the GC off (garbage counts too, even for a moment), for
    ``mp(..., "exec", ...)``. The board's ``gc`` must be imported."""
    body = "".join("  %s\n" % s for s in statements)
    return ("def %s(n):\n gc.collect()\n gc.disable()\n a = gc.mem_alloc()\n while n:\n%s  n -= 1\n"
            " a = gc.mem_alloc() - a\n gc.enable()\n return a\n" % (name, body))


def last(events: list, kind: str) -> dict:
    found = [e for e in events if e.get("event") == kind]
    assert found, "no %s event in %s" % (kind, events)
    return found[-1]


def write_package(root: str, sources: dict) -> str:
    """Write modules (dotted name -> source; a bare name is a package's __init__) under
    root, for MICROPYPATH; returns root."""
    for name, source in sources.items():
        parts = name.split(".")
        path = os.path.join(root, *parts) + ("/__init__.py" if len(parts) == 1 else ".py")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
    return root


def run_micropython(lib: str, code: str) -> str:
    """stdout of ``code`` on the MicroPython unix port with MICROPYPATH=lib; it must succeed."""
    proc = subprocess.run([os.path.join(BIN, "micropython"), "-c", code], env=dict(os.environ, MICROPYPATH=lib),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
