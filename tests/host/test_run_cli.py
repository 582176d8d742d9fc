"""`ovpnkx run` (`make run`) end to end: a simulated Pico, flashed, key exchange over its UART."""

import os
import re
import subprocess
import sys

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")


def test_ovpnkx_run_both_sides_agree():
    proc = subprocess.run([OVPNKX, "run", "--pings", "1"], capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    fp = re.search(r"^key2 fingerprint\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s*$", out, re.M)
    assert fp and fp.group(1) == fp.group(2), out
    assert "OK: the key fingerprints agree (%s on both sides)" % fp.group(1) in out
    assert re.search(r"^cipher\s+AES-256-GCM\s+AES-256-GCM\s*$", out, re.M), out
    for state in ("S_PRE_START", "S_START", "S_SENT_KEY", "S_GOT_KEY", "S_GENERATED_KEYS"):
        assert re.search(r"^  %s\s+\d+\s+\d+\s*$" % state, out, re.M), (state, out)
    bound = re.search(r"handshake bytes on the wire\s+(\d+) B.*\n.*lower bound.*?(\d+) ms", out)
    assert bound and int(bound.group(2)) == round(int(bound.group(1)) * 10 * 1000 / 115200), out
    print(out)


def test_ovpnkx_run_refuses_bad_flags():
    proc = subprocess.run([OVPNKX, "run", "--pings", "0"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--pings >= 1" in proc.stderr


def test_ovpnkx_run_refuses_a_board_without_tls():
    """A plain Pico's stock firmware has no tls: refused before a board is started."""
    proc = subprocess.run([OVPNKX, "run", "--board", "rp2040"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no `tls` module" in proc.stderr and "use rp2040w" in proc.stderr
    assert "simulated" not in proc.stdout  # nothing was started or flashed


def test_device_app_refuses_without_tls():
    """On the simulated plain Pico (no tls, as stock firmware) the app says so and names
    the board to use; on the Pico W it has nothing to say."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from _device import mp, start_sim

    for board, expect in (("rp2040", "has no tls module"), ("rp2040w", "None")):
        sim = start_sim("--board", board)  # firmware/ mounted as the frozen modules
        try:
            out = mp(sim.info, "exec", "from ovpnkx_device.app import tls_refusal\n"
                                       "print(tls_refusal(%r))" % board).stdout.strip()
        finally:
            sim.stop()
        assert expect in out, out
        if board == "rp2040":
            assert "a Raspberry Pi Pico W (board rp2040w)" in out


def test_ovpnkx_run_with_a_stuck_trng_sends_nothing():
    """The Pico W's ROSC register reads a stuck noise model: the driver's start-up test
    stops the key exchange before any byte goes out, and the console names the test."""
    proc = subprocess.run([OVPNKX, "run", "--trng-fault", "stuck"], capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "FAILED: entropy source failed: start-up test: repetition count test (RCT)" in out, out
    assert re.search(r"^bytes sent on the wire\s+0\s+0\s*$", out, re.M), out


class _Port:
    """A console port that hands out its chunks one read at a time, then nothing."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def read(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def test_console_lines_to_events():
    from ovpnkx_host.run import console_event, console_events

    assert console_event(b'  OVPNKX {"event": "boot", "n": 1}\r') == {"event": "boot", "n": 1}
    assert console_event(b"MPY: soft reboot") is None
    assert console_event(b'OVPNKX {"event": "bo') is None  # a line a reset broke
    assert console_event(b"OVPNKX [1, 2]") is None  # an event is a JSON object
    # the last line may still be arriving: not parsed yet
    assert console_events(b'x\r\nOVPNKX {"event": "a"}\r\nOVPNKX {"event": "b"}') == [{"event": "a"}]


def test_console_crash_since_the_last_boot():
    from ovpnkx_host.run import console_crash

    tb = (b'Traceback (most recent call last):\r\n  File "main.py", line 3, in <module>\r\n'
          b'  File "ovpnkx_device/app.py", line 9, in main\r\nMemoryError: memory allocation failed\r\n')
    assert console_crash(b'OVPNKX {"event": "boot"}\r\n' + tb) == [
        'File "main.py", line 3, in <module>', 'File "ovpnkx_device/app.py", line 9, in main',
        "MemoryError: memory allocation failed"]
    assert console_crash(tb[:-10]) is None  # its exception line has not come whole yet
    assert console_crash(tb + b"MPY: soft reboot\r\n") is None  # an earlier boot's
    assert console_crash(b"Traceback (most recent call last):\r\n  File \"main.py\", line 3\r\n"
                         b"KeyboardInterrupt: \r\n>>> ") is None  # our Ctrl-C


def test_console_reader_stops_at_the_result_or_a_crash():
    from ovpnkx_host.run import ConsoleReader

    con = ConsoleReader(_Port(b'OVPNKX {"event": "boot"}\r\nOVPNKX {"event": "keys"',
                              b'}\r\nOVPNKX {"event": "x"}\r\n'))
    assert con.read_until(("keys",), 5) == [{"event": "boot"}, {"event": "keys"}, {"event": "x"}]
    con = ConsoleReader(_Port(b'OVPNKX {"event": "boot"}\r\nTraceback (most recent call last):\r\n',
                              b'  File "main.py", line 3, in <module>\r\nValueError: bad\r\n>>> '))
    assert con.read_result(timeout_s=5)[1:] == [
        {"event": "result", "ok": False, "reason": "main.py crashed: ValueError: bad",
         "traceback": ['File "main.py", line 3, in <module>', "ValueError: bad"]}]
    assert ConsoleReader(_Port(b'OVPNKX {"event": "boot"}\r\n')).read_result(timeout_s=0.3) == [{"event": "boot"}]


class _PtyBoard:
    """A board's REPL on a real PTY: Ctrl-C brings the prompt; Ctrl-D soft-resets (the
    banner, then a boot event), except the first ``lose`` of them, which a main.py still
    winding down reads as its input."""

    def __init__(self, lose: int) -> None:
        import pty
        import threading

        self.master, slave = pty.openpty()
        self.name = os.ttyname(slave)
        self.slave = slave
        self.lose = lose
        self.resets = 0
        self.done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import select

        while not self.done:
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 64)
            except OSError:
                return
            for b in data:
                if b == 3:
                    os.write(self.master, b"\r\n>>> ")
                elif b == 4 and self.lose:
                    self.lose -= 1
                elif b == 4:
                    self.resets += 1
                    os.write(self.master, b'MPY: soft reboot\r\nOVPNKX {"event": "boot"}\r\n')

    def close(self) -> None:
        self.done = True
        self.thread.join(2)
        os.close(self.master)
        os.close(self.slave)


def test_a_soft_reset_that_started_nothing_is_tried_again():
    import serial

    from ovpnkx_host.run import ConsoleReader, soft_reset_into_main

    board = _PtyBoard(lose=1)  # the first Ctrl-D is lost, as after a Ctrl-C mid exit-notification
    try:
        with serial.serial_for_url(board.name, timeout=0.1) as port:
            soft_reset_into_main(port, timeout_s=2, banner_s=1)
            assert board.resets == 1
            # what came after the banner is the caller's: main.py's first event
            assert ConsoleReader(port).read_until(("boot",), 2) == [{"event": "boot"}]
    finally:
        board.close()


def test_a_board_that_never_soft_resets_is_named():
    import pytest
    import serial

    from ovpnkx_host.run import soft_reset_into_main

    board = _PtyBoard(lose=99)
    try:
        with serial.serial_for_url(board.name, timeout=0.1) as port:
            with pytest.raises(RuntimeError, match="did not soft-reset.*3 times") as err:
                soft_reset_into_main(port, timeout_s=1, banner_s=0.5)
            assert board.name in str(err.value)
    finally:
        board.close()
