"""`ovpnkx demo`: a whole key exchange between the two runtimes, on loopback.

The device side is the firmware on the MicroPython unix port (as a board would
run it, sockets standing in for Wi-Fi); the other side is `ovpnkx serve` on
CPython. Both print what they derived; the summary shows the states with their
times, the cipher, a fingerprint of key2 on each side (never the keys) and the
bytes on the wire. Exit 0 only when both sides derived the same keys and
decrypted each other's pings.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from . import pki as pkimod
from .runtime import micropython_binary, micropython_env


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx demo`."""
    p.add_argument("--pings", type=int, default=3, help="pings each way (default 3)")
    p.add_argument("--proto", choices=("udp", "tcp"), default="udp")
    p.add_argument("--keep", metavar="DIR", help="write the PKI and configs to DIR and keep them")


def _write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary."""
    work = args.keep or tempfile.mkdtemp(prefix="ovpnkx-demo-")
    os.makedirs(work, exist_ok=True)
    pki = pkimod.make_pki(os.path.join(work, "pki"))
    server_conf = _write(os.path.join(work, "server.conf"), "\n".join([
        "server 10.8.0.0 255.255.255.0", "proto %s" % args.proto, "port 0", "local 127.0.0.1",
        "ca %s" % pki.ca, "cert %s" % pki.server_cert, "key %s" % pki.server_key,
        "tls-auth %s 0" % pki.tls_auth, "keepalive 1 10", "data-ciphers AES-256-GCM:AES-128-GCM", ""]))
    ovpnkx = os.path.join(os.path.dirname(sys.executable), "ovpnkx")
    # both sides print a key2 fingerprint, asked for here only: the agreement check compares them
    server = subprocess.Popen([ovpnkx, "serve", "--config", server_conf, "--json", "--key-fingerprint"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stderr is not None
        listening = json.loads(server.stdout.readline() or "{}")
        if args.proto not in listening:
            print("demo: ovpnkx serve did not start:", server.stderr.read(), file=sys.stderr)
            return 1
        client_conf = _write(os.path.join(work, "client.ovpn"), "\n".join([
            "client", "remote 127.0.0.1 %d %s" % (listening[args.proto], args.proto),
            "remote-cert-tls server", "ca %s" % pki.ca, "cert %s" % pki.client_cert,
            "key %s" % pki.client_key, "tls-auth %s 1" % pki.tls_auth, "data-ciphers AES-256-GCM", ""]))
        print("demo: device = firmware on the MicroPython unix port; peer = ovpnkx serve on CPython"
              " (%s 127.0.0.1:%d, tls-auth)" % (args.proto, listening[args.proto]))
        proc = subprocess.run([micropython_binary(), "-m", "ovpnkx_device.connect_main", client_conf,
                               str(args.pings), "60", "json", "host", "fingerprint"], env=micropython_env(),
                              capture_output=True, text=True, timeout=120)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    device = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    peer = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return _summary(device, peer, proc.stderr)


def agreement_rows(device_keys: list, peer_keys: list, result: dict, peer_pings: int,
                   peer_decrypt_errors: int) -> list:
    """(label, device, peer) rows showing whether the two sides' keys agree (never the keys)."""
    rows = []
    if device_keys and peer_keys:
        d, p = device_keys[0], peer_keys[0]
        rows += [("cipher", d["cipher"], p["cipher"]), ("key derivation", d["method"], p["method"]),
                 ("key2 fingerprint", d["fingerprint"], p["fingerprint"])]
    rows += [("pings decrypted", result.get("pings_received", 0), peer_pings),
             ("decrypt errors", result.get("decrypt_errors", 0), peer_decrypt_errors)]
    return rows


def _summary(device: list, peer: list, stderr: str) -> int:
    print("\ndevice (MicroPython) states:")
    for e in device:
        if e["event"] == "state":
            print("  %8.3f s  key_id %d  %s" % (e["at_ms"] / 1000, e["key_id"], e["state"]))
    dev_keys = [e for e in device if e["event"] == "keys"]
    peer_keys = [e for e in peer if e["event"] == "keys"]
    result = device[-1] if device else {"ok": False, "reason": stderr.strip()[-500:]}
    peer_pings = sum(1 for e in peer if e["event"] == "ping")
    peer_errors = [e for e in peer if e["event"] in ("decrypt_error", "dropped")]
    print("\n%-26s %-22s %-22s" % ("", "device (MicroPython)", "peer (CPython)"))
    for row in agreement_rows(dev_keys, peer_keys, result, peer_pings,
                              sum(1 for e in peer_errors if e["event"] == "decrypt_error")):
        print("%-26s %-22s %-22s" % row)
    print("%-26s %-22s" % ("bytes sent / received", "%s / %s" % (result.get("bytes_out", 0), result.get("bytes_in", 0))))
    agree = bool(dev_keys and peer_keys and dev_keys[0]["fingerprint"] == peer_keys[0]["fingerprint"])
    ok = bool(result.get("ok")) and agree and peer_pings > 0 and not peer_errors
    print("\n%s: %s" % ("OK" if ok else "FAILED",
                        "both sides derived the same keys and decrypted each other's pings" if ok
                        else result.get("reason") or "the two sides do not agree"))
    return 0 if ok else 1
