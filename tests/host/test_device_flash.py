"""`make flash` and `mpremote mip install` against a simulated Pico (no frozen modules)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki

from _device import REPO, Console, flash_tool, last, mp, run_main, start_sim

import package_json  # tools/package_json.py (on sys.path through _device)


def test_package_json_lists_every_committed_module():
    with open(os.path.join(REPO, "package.json")) as f:
        listed = json.load(f)
    urls = [url for _, url in listed["urls"]]
    for target, url in listed["urls"]:
        assert os.path.isfile(os.path.join(REPO, url)) and url == "firmware/" + target
    tracked = subprocess.run(["git", "ls-files", *("firmware/%s/*.py" % p for p in package_json.PACKAGES)],
                             cwd=REPO, capture_output=True, text=True).stdout.split()
    missing = sorted(set(tracked) - set(urls))
    assert not missing, "run .venv/bin/python tools/package_json.py: %s not in package.json" % missing


def test_mip_install_from_the_checkout():
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        out = mp(sim.info, "mip", "install", os.path.join(REPO, "package.json")).stdout
        assert "Installing: /lib/ovpnkx/session.py" in out
        out = mp(sim.info, "exec", "import ovpnkx.serialframe as s, ovpnkx_device.app\n"
                 "print(s.__file__, s.encode_frame(b'123456789').hex())").stdout
        assert out.split() == ["/lib/ovpnkx/serialframe.py", "000e313233343536373839cbf4392600"]
    finally:
        sim.stop()


def test_make_flash_then_main_runs_and_mpremote_still_works(tmp_path):
    pki = make_pki(str(tmp_path / "pki"))
    conf = tmp_path / "client.ovpn"
    conf.write_text(ov.client_config(pki, 1194, mode="p2mp"))
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        repl = sim.info["repl"]
        proc = subprocess.run(["make", "-s", "flash", "BOARD=rp2040w", "PORT=" + repl, "CONFIG=" + str(conf),
                               "TRANSPORT=serial"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["settings"]["transport"] == "serial"
        # the staging folder is gone; the map of the board's short names is kept to read a traceback
        assert report["names_map"] == os.path.join(REPO, "build", "names.map"), report
        with open(report["names_map"], encoding="utf-8") as f:
            assert any(line.split()[1] == "_open_key_state" for line in f)
        # after make flash's soft reset main.py runs: nobody serves the uart, so no host gives
        # the date, and the board (RTC at 2021-01-01) refuses to start a session without one.
        # (Its first lines may come before this console opens: opening a port drops them.)
        con = Console(sim.info)
        try:
            con.read_until(("result",), 30)
        finally:
            con.close()
        assert "connecting" not in con.kinds()
        result = [e for e in con.events if e["event"] == "result"][0]
        assert result["reason"].startswith("no date: the host on the serial line did not answer"), result
        # the same, read from a soft reset's banner on: it boots, checks its entropy, no session
        events, _ = run_main(sim.info)
        kinds = [e["event"] for e in events]
        assert kinds[:2] == ["boot", "entropy"] and "connecting" not in kinds
        assert last(events, "result")["reason"].startswith("no date: the host on the serial line did not answer")
        # mpremote interrupts it (Ctrl-C works: the uart is not the REPL port)
        out = mp(sim.info, "exec", "import ovpnkx; print(ovpnkx.__file__)").stdout
        assert out.strip() == "/lib/ovpnkx/__init__.mpy"
    finally:
        sim.stop()


def test_flash_copies_the_key_files_a_config_names():
    """tls-auth, tls-crypt and tls-crypt-v2 key files go beside client.ovpn; inline blocks stay."""
    text = ("client\nca /pki/ca.crt\ntls-crypt keys/tc.key\ntls-crypt-v2 \"/keys/v2c.key\"\n"
            "<tls-auth>\nca not-a-directive\n</tls-auth>\n")
    out, files = flash_tool.ovpn_files(text, "/conf")
    assert files == [("ca.crt", "/pki/ca.crt"), ("tc.key", "/conf/keys/tc.key"), ("v2c.key", "/keys/v2c.key")]
    assert "tls-crypt tc.key" in out.splitlines() and "ca not-a-directive" in out.splitlines()


def _make_flash(conf, board="rp2040w"):
    # a port that does not exist: had flash.py touched the board, mpremote would fail on it instead
    return subprocess.run(["make", "-s", "flash", "BOARD=" + board, "PORT=/nonexistent/ttyACM9", "CONFIG=" + str(conf)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_flash_refuses_a_config_before_touching_the_board(tmp_path):
    pki = make_pki(str(tmp_path / "pki"))
    good = ov.client_config(pki, 1194, mode="p2mp")
    cases = [
        ("missing.ovpn", None, "flash: cannot read %s: No such file or directory" % (tmp_path / "missing.ovpn")),
        ("typo.ovpn", good + "remote-cert-tsl server\n",
         "typo.ovpn:%d: remote-cert-tsl: unknown directive (did you mean remote-cert-tls?)" % (good.count("\n") + 1)),
        ("tls13.ovpn", good + "tls-version-min 1.3\n",
         "tls13.ovpn:%d: tls-version-min: board rp2040w (stock MicroPython) cannot honour it: its TLS offers 1.2 at "
         "most" % (good.count("\n") + 1)),
        ("chacha.ovpn", good.replace("data-ciphers AES-256-GCM", "data-ciphers CHACHA20-POLY1305"),
         "data-ciphers: board rp2040w (stock MicroPython) cannot honour it: cipher CHACHA20-POLY1305")]
    for name, text, want in cases:
        conf = tmp_path / name
        if text is not None:
            conf.write_text(text)
        proc = _make_flash(conf)
        assert proc.returncode != 0 and want in proc.stderr, (name, proc.stdout, proc.stderr)
        assert "(nothing was written to the board)" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert "mpremote" not in proc.stderr


def test_flash_checks_the_board_and_the_firmware_tree(tmp_path):
    from ovpnkx_host.capabilities import tree_tls_crypt
    from ovpnkx_sim.boards import load_board

    flash = flash_tool

    pki = make_pki(str(tmp_path / "pki"))
    conf = tmp_path / "c.ovpn"
    # SHA-512: the stock hashlib lacks it, ovpnkx.sha512 stands in (it used to be accepted, then retried for ever)
    conf.write_text(ov.client_config(pki, 1194, mode="p2mp", tls_auth=True, auth="SHA512") + "comp-lzo no\n")
    rp2040 = load_board("rp2040w")
    assert flash.check_config(rp2040, str(conf)) == ["note: host-only directives, nothing to do here: dev, nobind"]
    # a board whose firmware lacks modules (board.json "firmware": {"modules": [...]}, when the board says so)
    no_tls = dict(rp2040, stock_firmware=None, firmware={"modules": ["hashlib", "cryptolib"], "hashlib": ["md5", "sha1", "sha256"]})
    with pytest.raises(flash.FlashConfigError, match="c.ovpn: board rp2040w .* has no TLS engine"):
        flash.check_config(no_tls, str(conf))
    no_aes = dict(rp2040, stock_firmware=None, firmware={"modules": ["tls", "hashlib"]})
    with pytest.raises(flash.FlashConfigError, match="data-ciphers: .* cannot honour it: cipher AES-256-GCM is not available .it has none"):
        flash.check_config(no_aes, str(conf))
    # tls-crypt given to a firmware tree without it
    key = tmp_path / "tc.key"
    subprocess.run([ov.openvpn_binary(), "--genkey", "tls-crypt", str(key)], check=True)
    conf.write_text(ov.client_config(pki, 1194, mode="p2mp") + "tls-crypt %s\n" % key)
    tree = tmp_path / "fw"
    shutil.copytree(os.path.join(REPO, "firmware"), str(tree), ignore=shutil.ignore_patterns("tlscrypt.py"))
    if tree_tls_crypt(str(tree)) != (False, False):
        pytest.skip("tls-crypt lives in tlswrap.py here: no tree without it to test")
    with pytest.raises(flash.FlashConfigError, match=r"c.ovpn:\d+: tls-crypt: .* this build has no tls-crypt"):
        flash.check_config(rp2040, str(conf), firmware=str(tree))


def test_make_flash_refuses_a_board_without_tls(tmp_path):
    """A plain Pico's stock firmware has no tls: refused before any contact with the
    port (which does not even exist here), naming the module and the board to use."""
    proc = subprocess.run(["make", "-s", "flash", "BOARD=rp2040", "PORT=/dev/ovpnkx-no-such-port"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "no `tls` module" in err and "use rp2040w" in err and "mpremote" not in err, err
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "flash.py"), "--board", "rp2350",
                           "--port", "/dev/ovpnkx-no-such-port"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "no `tls` module" in proc.stderr and "use rp2350w" in proc.stderr


def test_flash_compiles_without_line_numbers_unless_asked(tmp_path):
    """The board's .mpy carry no line-number tables (stock firmware loads them into the GC
    heap); --source-lines keeps them, and a traceback on the MicroPython port then names
    the line."""
    src = tmp_path / "crash.py"
    src.write_text("def f(x):\n    return x[3]\n\n\nf(b'')\n")
    out = {}
    for lines in (False, True):
        d = tmp_path / ("lines" if lines else "plain")
        d.mkdir()
        subprocess.run(flash_tool.mpy_cross_cmd(str(src), str(d / "crash.mpy"), "crash.py", source_lines=lines),
                       check=True)
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "micropython"), "-c", "import crash"],
                              cwd=str(d), env=dict(os.environ, MICROPYPATH=str(d)), capture_output=True, text=True)
        assert "IndexError" in proc.stdout, proc  # the unix port prints its traceback on stdout
        out[lines] = (os.path.getsize(d / "crash.mpy"), proc.stdout)
    assert out[False][0] < out[True][0]
    assert 'File "crash.py", line 2, in f' in out[True][1]
    assert "line 2" not in out[False][1] and "in f" in out[False][1], out[False][1]  # "line 1": unknown
