"""`make flash` and `mpremote mip install` against a simulated Pico (no frozen modules)."""

import json
import os
import subprocess

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki

from _device import REPO, Console, flash_tool, mp, start_sim

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
    sim = start_sim("--board", "rp2040", "--frozen", "")
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
    sim = start_sim("--board", "rp2040", "--frozen", "")
    try:
        repl = sim.info["repl"]
        proc = subprocess.run(["make", "-s", "flash", "BOARD=rp2040", "PORT=" + repl, "CONFIG=" + str(conf)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["settings"]["transport"] == "serial"  # rp2040: no Wi-Fi
        # after the soft reset main.py runs: nobody serves the uart, so it keeps trying
        con = Console(sim.info)
        try:
            con.read_until(("state",), 20)
        finally:
            con.close()
        assert con.kinds()[:2] == ["boot", "entropy"] and "connecting" in con.kinds()
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
