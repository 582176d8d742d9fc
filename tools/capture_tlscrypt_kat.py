#!/usr/bin/env python3
"""Capture tls-crypt and tls-crypt-v2 known-answer packets from the real openvpn 2.6.

Usage: .venv/bin/python tools/capture_tlscrypt_kat.py [--out tests/data/tlscrypt_kat.json]

Nothing in the output comes from ovpnkx's code. For each scenario the tool

1. makes the keys with openvpn itself (``--genkey secret``, ``--genkey
   tls-crypt-v2-server``, ``--genkey tls-crypt-v2-client``) and a test PKI;
2. starts a real openvpn server (p2mp UDP where /dev/net/tun exists, so that the
   2.6 stateless HMAC-cookie flow runs; else p2p) and a real openvpn client, both
   on 127.0.0.1 and both under ``timeout``, the client talking to the server
   through a UDP relay in this process that records every datagram;
3. keeps the first three client datagrams and the first two server datagrams
   (tls-crypt-v2 on p2mp: the client's P_CONTROL_HARD_RESET_CLIENT_V3, the
   server's stateless P_CONTROL_HARD_RESET_SERVER_V2 with the resend-WKc TLV, the
   client's P_CONTROL_WKC_V1), then stops both processes.

The JSON holds the key files as text and the datagrams as hex, per scenario.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, "host"))

from ovpnkx_host.pki import make_pki  # noqa: E402
from ovpnkx_host.process import stop_process  # noqa: E402

OPENVPN = shutil.which("openvpn") or "/usr/sbin/openvpn"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """UDP relay front:port <-> 127.0.0.1:server_port that records both directions."""

    def __init__(self, server_port: int) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.front.settimeout(0.1)
        self.back.settimeout(0.1)
        self.port = self.front.getsockname()[1]
        self.server = ("127.0.0.1", server_port)
        self.client = None
        self.from_client: list = []
        self.from_server: list = []
        self.stop = False
        self._threads = [threading.Thread(target=self._up, daemon=True),
                         threading.Thread(target=self._down, daemon=True)]
        for t in self._threads:
            t.start()

    def _up(self) -> None:
        while not self.stop:
            try:
                data, addr = self.front.recvfrom(4096)
            except socket.timeout:
                continue
            self.client = addr
            self.from_client.append(data)
            self.back.sendto(data, self.server)

    def _down(self) -> None:
        while not self.stop:
            try:
                data, _ = self.back.recvfrom(4096)
            except socket.timeout:
                continue
            self.from_server.append(data)
            if self.client is not None:
                self.front.sendto(data, self.client)

    def close(self) -> None:
        self.stop = True
        for t in self._threads:
            t.join()
        self.front.close()
        self.back.close()


def _genkeys(d: str) -> dict:
    files = {"static": os.path.join(d, "tc.key"), "v2_server": os.path.join(d, "v2s.key"),
             "v2_client": os.path.join(d, "v2c.key")}
    subprocess.run([OPENVPN, "--genkey", "secret", files["static"]], check=True, capture_output=True)
    subprocess.run([OPENVPN, "--genkey", "tls-crypt-v2-server", files["v2_server"]], check=True,
                   capture_output=True)
    subprocess.run([OPENVPN, "--tls-crypt-v2", files["v2_server"], "--genkey", "tls-crypt-v2-client",
                    files["v2_client"]], check=True, capture_output=True)
    return files


def capture(workdir: str, kind: str, p2mp: bool, timeout_s: float = 20.0) -> dict:
    """One scenario: (kind "tls-crypt" or "tls-crypt-v2") -> keys and datagrams."""
    pki = make_pki(os.path.join(workdir, "pki"))
    keys = _genkeys(workdir)
    port = _free_udp_port()
    common = ["--dev-type", "tun", "--ifconfig-noexec", "--route-noexec", "--proto", "udp4",
              "--ca", pki.ca, "--verb", "4", "--keepalive", "2", "10"]
    server = [OPENVPN, "--local", "127.0.0.1", "--port", str(port), "--cert", pki.server_cert,
              "--key", pki.server_key, "--dh", "none"] + common
    server += (["--dev", "tun", "--topology", "subnet", "--server", "10.8.0.0", "255.255.255.0"] if p2mp
               else ["--dev", "null", "--tls-server"])
    server += ["--tls-crypt", keys["static"]] if kind == "tls-crypt" else ["--tls-crypt-v2", keys["v2_server"]]
    rec = Recorder(port)
    client = [OPENVPN, "--remote", "127.0.0.1", str(rec.port), "--nobind", "--dev", "null",
              "--cert", pki.client_cert, "--key", pki.client_key] + common
    client += ["--client"] if p2mp else ["--tls-client"]
    client += ["--tls-crypt", keys["static"]] if kind == "tls-crypt" else ["--tls-crypt-v2", keys["v2_client"]]
    limit = ["timeout", "--kill-after=5", str(int(timeout_s) + 10)]
    procs = []
    try:
        with open(os.path.join(workdir, "server.log"), "w") as slog, \
                open(os.path.join(workdir, "client.log"), "w") as clog:
            procs.append(subprocess.Popen(limit + server, stdout=slog, stderr=subprocess.STDOUT))
            time.sleep(1.0)
            procs.append(subprocess.Popen(limit + client, stdout=clog, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and (len(rec.from_client) < 3 or len(rec.from_server) < 2):
                time.sleep(0.05)
    finally:
        for p in procs:
            stop_process(p, 5)
        rec.close()
    if len(rec.from_client) < 3 or len(rec.from_server) < 2:
        raise SystemExit("%s: too few datagrams (logs in %s)" % (kind, workdir))

    def text(path: str) -> str:
        with open(path) as f:
            return f.read()

    out = {"mode": "p2mp" if p2mp else "p2p",
           "client": [d.hex() for d in rec.from_client[:3]],
           "server": [d.hex() for d in rec.from_server[:2]]}
    if kind == "tls-crypt":
        out["static_key"] = text(keys["static"])
    else:
        out["v2_server_key"] = text(keys["v2_server"])
        out["v2_client_key"] = text(keys["v2_client"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(_ROOT, "tests", "data", "tlscrypt_kat.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, keys)")
    args = ap.parse_args()
    p2mp = os.path.exists("/dev/net/tun") and os.access("/dev/net/tun", os.R_OK | os.W_OK)
    version = subprocess.run([OPENVPN, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    work = tempfile.mkdtemp(prefix="ovpnkx-tlscrypt-kat-")
    try:
        result = {"openvpn": version}
        for kind in ("tls-crypt", "tls-crypt-v2"):
            d = os.path.join(work, kind)
            os.makedirs(d)
            result[kind] = capture(d, kind, p2mp)
    finally:
        if args.keep:
            print("work folder kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
