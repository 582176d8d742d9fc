"""The simulated board driven by the tools used on hardware: mpremote and pyserial.

Each fixture starts ``ovpnkx sim start`` as a subprocess, reads its first JSON
line and stops it (SIGTERM) afterwards. Timings are printed as measured figures,
never asserted.
"""

import json
import os
import subprocess
import sys
import time

import pytest
import serial

from ovpnkx_sim.boards import load_board
from ovpnkx_sim.control import request
from ovpnkx_sim.process import SimBoard

from _device import allocation_counter

BIN = os.path.dirname(sys.executable)
OVPNKX = os.path.join(BIN, "ovpnkx")
MPREMOTE = os.path.join(BIN, "mpremote")


def _start(board, *args):
    sim = SimBoard(board, *args)
    return sim, sim.info


def _stop(sim):
    sim.stop()


@pytest.fixture(scope="module")
def pico():
    proc, info = _start("rp2040", "--baud", "0")
    yield info
    _stop(proc)
    assert not os.path.exists(info["flash"]), "the temp flash is removed at stop"


@pytest.fixture(scope="module")
def wifi_board():
    proc, info = _start("sim", "--trng-fault", "bias=0.9", "--seed", "7")
    yield info
    _stop(proc)


def mp(info, *args, check=True):
    proc = subprocess.run([MPREMOTE, "connect", info["repl"], *args], capture_output=True,
                          text=True, timeout=30)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _read_until(port, token: bytes, limit=10.0) -> bytes:
    out = b""
    end = time.monotonic() + limit
    while token not in out and time.monotonic() < end:
        out += port.read(4096)
    return out


def _read_quiet(port, quiet=0.5, limit=20.0) -> bytes:
    """Read until nothing came for ``quiet`` seconds."""
    out = bytearray()
    last = time.monotonic()
    end = last + limit
    while time.monotonic() < end and time.monotonic() - last < quiet:
        chunk = port.read(65536)
        if chunk:
            out += chunk
            last = time.monotonic()
    return bytes(out)


def test_start_line(pico):
    board = load_board("rp2040")
    for key in ("repl", "uart", "flash", "board", "heap", "pid", "control"):
        assert key in pico
    assert pico["board"] == "rp2040" and pico["heap"] == board["heap"]
    assert os.path.exists(pico["repl"]) and os.path.exists(pico["uart"])
    assert os.path.isdir(pico["flash"]) and pico["wifi"] is False


def test_exec(pico):
    assert mp(pico, "exec", "print(1+1)").stdout.strip() == "2"


def test_exec_error_is_reported_like_a_board(pico):
    proc = mp(pico, "exec", "1/0", check=False)
    assert proc.returncode == 1
    assert 'File "<stdin>", line 1' in proc.stdout + proc.stderr
    assert "ZeroDivisionError" in proc.stdout + proc.stderr
    assert "_simrepl" not in proc.stdout + proc.stderr


def test_fs_cp_and_ls(pico, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello flash\n" * 50)
    mp(pico, "fs", "cp", str(src), ":hello.txt")
    listing = mp(pico, "fs", "ls").stdout
    assert "600 hello.txt" in listing  # sizes, as a board's littlefs reports them
    assert ".simlib" not in listing and ".frozen" not in listing  # the sim's mounts stay hidden
    with open(os.path.join(pico["flash"], "hello.txt"), "rb") as f:
        assert f.read() == src.read_bytes()
    assert mp(pico, "exec", "print(open('/hello.txt').read(11))").stdout.strip() == "hello flash"


def test_run_local_script(pico, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("for i in range(3):\n    print('line', i)\n")
    assert mp(pico, "run", str(script)).stdout.split() == ["line", "0", "line", "1", "line", "2"]


def test_mip_install_from_local_path(pico, tmp_path):
    (tmp_path / "simpkg.py").write_text("VALUE = 42\n")
    (tmp_path / "package.json").write_text(json.dumps({"urls": [["simpkg.py", "simpkg.py"]], "version": "1"}))
    mp(pico, "mip", "install", str(tmp_path / "package.json"))
    assert os.path.isfile(os.path.join(pico["flash"], "lib", "simpkg.py"))
    assert mp(pico, "exec", "import simpkg; print(simpkg.VALUE)").stdout.strip() == "42"


def test_soft_reset_gives_a_fresh_interpreter(pico):
    # mpremote soft-resets before its first command: a global does not survive.
    assert mp(pico, "exec", "import builtins; builtins.sim_marker = 1; print(sim_marker)").stdout.strip() == "1"
    assert "NameError" in mp(pico, "exec", "print(sim_marker)", check=False).stderr + \
        mp(pico, "exec", "print(sim_marker)", check=False).stdout
    mp(pico, "soft-reset")
    assert mp(pico, "exec", "print('alive')").stdout.strip() == "alive"


def test_main_py_runs_after_soft_reset(pico, tmp_path):
    main = tmp_path / "main.py"
    main.write_text("print('main.py says hi')\n")
    mp(pico, "fs", "cp", str(main), ":main.py")
    try:
        # mpremote soft-reset works in the raw REPL, where a board skips main.py;
        # afterwards mpremote leaves the friendly REPL behind.
        mp(pico, "soft-reset")
        with serial.Serial(pico["repl"], timeout=0.2) as port:
            port.write(b"\r\x03")
            _read_until(port, b">>> ", 5)
            port.write(b"\x04")  # Ctrl-D in the friendly REPL: soft reboot, runs main.py
            out = _read_until(port, b">>> ", 10)
        assert b"MPY: soft reboot\r\n" in out
        assert b"main.py says hi\r\n" in out
        assert out.index(b"soft reboot") < out.index(b"main.py says hi") < out.index(b">>> ")
    finally:
        mp(pico, "fs", "rm", ":main.py")


def test_friendly_repl_and_ctrl_c(pico):
    with serial.Serial(pico["repl"], timeout=0.2) as port:
        port.write(b"\r\x03\x02")
        assert b"Raspberry Pi Pico with RP2040" in _read_until(port, b">>> ", 5)
        port.write(b"21 * 2\r")
        assert b"42\r\n>>> " in _read_until(port, b"42\r\n>>> ", 5)
        port.write(b"while True:\r    pass\r\r")
        _read_until(port, b"... \r\n", 5)
        time.sleep(0.2)
        port.write(b"\x03")
        out = _read_until(port, b">>> ", 5)
        assert b"KeyboardInterrupt" in out and out.endswith(b">>> ")


def test_heap_is_the_boards(pico):
    free = int(mp(pico, "exec", "import gc; gc.collect(); print(gc.mem_free())").stdout)
    # -X heapsize=Nw: N bytes of 32-bit words, so a 64-bit host gets 2N bytes; user code
    # gets the board's free heap after boot (its GC heap less what the firmware used)
    board = load_board("rp2040")
    used = board["stock_firmware"]["gc_heap"]["used_after_boot"]
    assert pico["heap"] == board["heap"] and pico["heap_host"] == 2 * board["heap"]
    assert pico["heap_free_host"] == 2 * (board["heap"] - used)
    assert pico["heap_free_host"] * 0.95 <= free <= pico["heap_free_host"]


def test_board_without_wifi_has_no_network(pico):
    for mod in ("network", "socket"):
        proc = mp(pico, "exec", "import " + mod, check=False)
        assert proc.returncode == 1 and "ImportError" in proc.stdout + proc.stderr


def test_machine_shim(pico):
    out = mp(pico, "exec", "import machine; print(len(machine.unique_id()), machine.freq())").stdout.split()
    assert out == ["8", "125000000"]
    # mem32 models the noise registers only: the ROSC's STATUS reads STABLE|ENABLED
    out = mp(pico, "exec", "import machine; print(hex(machine.mem32[0x40060018]))").stdout.split()
    assert out == ["0x80001000"]
    proc = mp(pico, "exec", "import machine; machine.mem32[0x20000000]", check=False)
    assert "OSError" in proc.stdout + proc.stderr and "no modelled register at 0x20000000" in proc.stdout + proc.stderr


def test_hard_reset_restarts_the_board(pico):
    before = request(pico["control"], {"cmd": "stats"})["boots"]
    # like a board, the reset ends the exec: mpremote must not wait for its output
    mp(pico, "exec", "--no-follow", "import machine; machine.reset()")
    for _ in range(100):
        if request(pico["control"], {"cmd": "stats"})["boots"] > before:
            break
        time.sleep(0.05)
    assert request(pico["control"], {"cmd": "stats"})["boots"] > before
    assert mp(pico, "exec", "print('back')").stdout.strip() == "back"


def _board_reads(info, n):
    """The board reads ``n`` bytes from its UART; returns once its UART is open (it says "ready")."""
    code = ("import machine, binascii\n"
            "u = machine.UART(1, 115200, timeout=3000, timeout_char=300)\n"
            "print('ready')\n"
            "d = u.read(%d) or b''\n"
            "print(len(d), binascii.hexlify(d).decode())\n" % n)
    reader = subprocess.Popen([MPREMOTE, "connect", info["repl"], "exec", code],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert reader.stdout is not None
    first = reader.stdout.readline()
    if first.strip() != "ready":
        reader.kill()
        raise AssertionError("the board did not open its UART: %r %s" % (first, reader.stderr.read()))
    return reader


def test_uart_clean_both_ways(pico):
    data = bytes(range(256)) * 4
    with serial.Serial(pico["uart"], timeout=0.1) as port:
        _read_quiet(port, 0.2)
        reader = _board_reads(pico, len(data))  # returns when the board's UART is open
        port.write(data)
        out, err = reader.communicate(timeout=30)
        n, hexdata = out.split()
        assert int(n) == len(data) and bytes.fromhex(hexdata) == data, err
        mp(pico, "exec", "import machine; machine.UART(1).write(bytes(range(256)) * 4)")
        assert _read_quiet(port) == data


def test_an_idle_uart_costs_the_heap_nothing(pico):
    """A board's ``UART.any()`` and a ``read()`` with nothing to read are C that allocates
    nothing; the sim's Python UART, polled by the device's loop all session, must not make
    garbage there either (it made ~240 B of it a call; a board makes none)."""
    code = ("import gc, machine\nu = machine.UART(1, 115200)\n" + allocation_counter("calls", "u.any()", "u.read(64)")
            + "u.read()\nprint(calls(500), u.any(), u.read(64))")
    assert mp(pico, "exec", code).stdout.split() == ["0", "0", "None"]


def test_uart_link_noise_and_baud(pico):
    ctl = pico["control"]
    n = 4000
    try:
        reply = request(ctl, {"cmd": "link", "dir": "to_host", "drop": 0.05, "corrupt": 0.05,
                              "dup": 0.02, "baud": 115200, "seed": 11})
        assert reply["ok"] and reply["link"]["to_host"]["drop"] == 0.05
        before = request(ctl, {"cmd": "stats"})["stats"]["to_host"]
        with serial.Serial(pico["uart"], timeout=0.1) as port:
            _read_quiet(port, 0.2)
            t0 = time.monotonic()
            mp(pico, "exec", "import machine; machine.UART(1).write(b'U' * %d)" % n)
            got = _read_quiet(port)
            elapsed = time.monotonic() - t0
        after = request(ctl, {"cmd": "stats"})["stats"]["to_host"]
        delta = {k: after[k] - before[k] for k in after}
        assert delta["in"] == n
        assert delta["dropped"] > 0 and delta["corrupted"] > 0 and delta["duplicated"] > 0
        assert len(got) == n - delta["dropped"] + delta["duplicated"] == delta["out"]
        bad = sum(1 for b in got if b != ord("U"))  # a duplicated corrupt byte shows twice
        assert delta["corrupted"] <= bad <= 2 * delta["corrupted"]
        print("\nuart %d B at 115200 8N1 with loss: %.2f s measured (line time %.2f s), %s"
              % (n, elapsed, (n - delta["dropped"] + delta["duplicated"]) * 10 / 115200, delta))
    finally:
        request(ctl, {"cmd": "link", "dir": "both", "drop": 0, "corrupt": 0, "dup": 0, "baud": 0})


def test_link_settings_are_checked(pico):
    assert request(pico["control"], {"cmd": "link", "drop": 2})["ok"] is False
    assert request(pico["control"], {"cmd": "nope"})["ok"] is False


def test_wifi_board_reaches_loopback_only(wifi_board):
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    code = ("import network, socket\n"
            "w = network.WLAN(network.STA_IF); w.active(True); w.connect('x', 'y')\n"
            "print(w.isconnected(), w.ifconfig()[0])\n"
            "s = socket.socket(); s.connect(('127.0.0.1', %d)); s.send(b'hi from board'); s.close()\n"
            "try:\n"
            "    socket.socket().connect(('192.0.2.1', 80))\n"
            "except OSError as e:\n"
            "    print('refused', e)\n" % port)
    out = mp(wifi_board, "exec", code).stdout
    conn, _ = srv.accept()
    conn.settimeout(5)
    assert conn.recv(100) == b"hi from board"
    conn.close()
    srv.close()
    assert "True 127.0.0.1" in out
    assert "refused" in out and "192.0.2.1" in out


def test_trng_fault_reaches_the_board(wifi_board):
    out = mp(wifi_board, "exec", "import simboard; print(simboard.trng_fault(), simboard.has_wifi())").stdout
    assert out.split() == ["bias=0.9", "True"]
    assert wifi_board["trng_fault"] == "bias=0.9"


def test_bad_arguments_are_refused():
    for args in (["--board", "nosuchboard"], ["--trng-fault", "wobbly"], ["--trng-fault", "bias=3"]):
        proc = subprocess.run([OVPNKX, "sim", "start", *args], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and proc.stdout == ""
