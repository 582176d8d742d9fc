"""`make flash` and `mpremote mip install` against a simulated Pico (no frozen modules)."""

import json
import os
import subprocess
import sys

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki

from _device import REPO, Console, mp, start_sim

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
        # after the soft reset main.py runs: nobody serves the uart, so no host gives the
        # date, and the board (RTC at 2021-01-01) refuses to start a session without one
        con = Console(sim.info)
        try:
            con.read_until(("result",), 30)
        finally:
            con.close()
        assert con.kinds()[:2] == ["boot", "entropy"] and "connecting" not in con.kinds()
        result = [e for e in con.events if e["event"] == "result"][0]
        assert result["reason"].startswith("no date: the host on the serial line did not answer"), result
        # mpremote interrupts it (Ctrl-C works: the uart is not the REPL port)
        out = mp(sim.info, "exec", "import ovpnkx; print(ovpnkx.__file__)").stdout
        assert out.strip() == "/lib/ovpnkx/__init__.mpy"
    finally:
        sim.stop()


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
