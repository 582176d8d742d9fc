#!/usr/bin/env python3
"""Capture the options strings the real openvpn 2.6 sends in key method 2, for several configs.

Usage: .venv/bin/python tools/capture_occ.py [--out tests/data/occ_openvpn.json]

For each config an openvpn server and an openvpn client (``--dev null`` on the
client; the p2mp server needs ``--dev tun`` and ``/dev/net/tun``) run on 127.0.0.1
at verb 7 until the client completes, and each side's ``Local Options String``
is recorded with the settings that made it. tests/core/test_options_string.py
compares ``SessionConfig.options_string()`` with them. Every openvpn started here
is stopped (terminated, then killed).
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host"))

from ovpnkx_host import openvpn as ov  # noqa: E402
from ovpnkx_host import pki as pkimod  # noqa: E402

# name, mode, proto, auth, data-ciphers, --cipher (None: openvpn's default), tls-auth,
# client-only extras (a client --cipher that differs from the server's)
CASES = [
    ("p2mp-udp", "p2mp", "udp", "SHA1", "AES-256-GCM", None, False, None),
    ("p2mp-udp-tls-auth", "p2mp", "udp", "SHA1", "AES-256-GCM", None, True, None),
    ("p2mp-udp-sha256", "p2mp", "udp", "SHA256", "AES-256-GCM", None, False, None),
    ("p2mp-udp-sha512", "p2mp", "udp", "SHA512", "AES-256-GCM", None, False, None),
    ("p2mp-tcp", "p2mp", "tcp", "SHA1", "AES-256-GCM", None, False, None),
    ("p2mp-udp-aes256cbc", "p2mp", "udp", "SHA1", "AES-256-CBC", "AES-256-CBC", False, None),
    ("p2mp-tcp-aes128cbc-sha256-tls-auth", "p2mp", "tcp", "SHA256", "AES-128-CBC", "AES-128-CBC", True, None),
    ("p2mp-udp-client-cipher-aead", "p2mp", "udp", "SHA1", "AES-256-GCM", None, False, "AES-128-GCM"),
    ("p2p-udp", "p2p", "udp", "SHA1", "AES-256-GCM", None, False, None),
    ("p2p-udp-aes256gcm", "p2p", "udp", "SHA1", "AES-256-GCM", "AES-256-GCM", False, None),
    ("p2p-tcp-chacha-tls-auth", "p2p", "tcp", "SHA1", "CHACHA20-POLY1305", "CHACHA20-POLY1305", True, None),
]

LOCAL = re.compile(r"Local Options String \(VER=V4\): '([^']*)'")


def capture(pki, tmp: str, case: tuple) -> dict:
    name, mode, proto, auth, ciphers, cipher, tls_auth, client_cipher = case
    port = ov.free_port(ov.socket.SOCK_STREAM if proto == "tcp" else ov.socket.SOCK_DGRAM)
    sargs = ov.server_args(pki, port, mode=mode, proto=proto, tls_auth=tls_auth, auth=auth, verb=7)
    sargs += ["--data-ciphers", ciphers] + (["--cipher", cipher] if cipher else [])
    cargs = [ov.openvpn_binary(), "--client" if mode == "p2mp" else "--tls-client", "--dev", "null",
             "--nobind", "--proto", "udp4" if proto == "udp" else "tcp4-client", "--remote", "127.0.0.1",
             str(port), "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key, "--verb", "7",
             "--auth", auth, "--data-ciphers", ciphers, "--ifconfig-noexec", "--route-noexec"]
    if client_cipher or cipher:
        cargs += ["--cipher", client_cipher or cipher]
    if tls_auth:
        cargs += ["--tls-auth", pki.tls_auth, "1"]
    with ov.OpenVpn(sargs, os.path.join(tmp, name + ".server.log")) as server:
        if not server.wait_for(r"UDPv4 link local|TCPv4_SERVER link local|Listening for incoming TCP"):
            raise RuntimeError("%s: the server did not start:\n%s" % (name, server.log()[-2000:]))
        with ov.OpenVpn(cargs, os.path.join(tmp, name + ".client.log")) as client:
            if not client.wait_for("Initialization Sequence Completed", 20):
                raise RuntimeError("%s: the client did not complete:\n%s" % (name, client.log()[-2000:]))
            time.sleep(0.3)
    out = {"name": name, "mode": mode, "proto": proto, "auth": auth, "data_ciphers": ciphers.split(":"),
           "tls_auth": tls_auth}
    for side, log, side_cipher in (("server", server.log(), cipher), ("client", client.log(), client_cipher or cipher)):
        m = LOCAL.search(log)
        if not m:
            raise RuntimeError("%s: no options string in the %s log" % (name, side))
        out[side] = {"cipher": side_cipher, "key_direction": (0 if side == "server" else 1) if tls_auth else None,
                     "dev": "tun" if side == "server" and mode == "p2mp" else "null", "options": m.group(1)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/data/occ_openvpn.json")
    args = parser.parse_args()
    if not ov.have_tun():
        print("capture_occ: a p2mp openvpn server needs /dev/net/tun", file=sys.stderr)
        return 1
    version = os.popen(ov.openvpn_binary() + " --version").readline().strip()
    with tempfile.TemporaryDirectory(prefix="ovpnkx-occ-") as tmp:
        pki = pkimod.make_pki(os.path.join(tmp, "pki"))
        cases = [capture(pki, tmp, c) for c in CASES]
    with open(args.out, "w") as f:
        json.dump({"openvpn": version, "cases": cases}, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s (%s)" % (len(cases), args.out, version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
