"""Start and watch a real `openvpn` 2.6 on 127.0.0.1 (tests, benchmarks, demos).

Servers run with ``--ifconfig-noexec --route-noexec``: the host's interfaces and
routes are never touched and nothing is sent into the tunnel's addresses.
"""

import os
import re
import shutil
import socket
import subprocess
import time

from .process import stop_process

# Lines in openvpn's log that mean the data-channel keys differ, or tls-auth failed.
KEY_ERRORS = re.compile(r"AEAD Decrypt error|packet HMAC authentication failed|"
                        r"Authenticate/Decrypt packet error|incoming packet authentication failed")
# CBC plaintext starts with the packet-id; AEAD plaintext is the payload alone.
PING_DECRYPTED = re.compile(r"DECRYPT TO: (?:[0-9a-f]{8} )?2a187bf3 641eb4cb 07ed2d0a 981fc748")


def openvpn_binary() -> str:
    """Path of Debian's openvpn (installed by `make setup`)."""
    path = shutil.which("openvpn") or "/usr/sbin/openvpn"
    if not os.path.exists(path):
        raise FileNotFoundError("openvpn is not installed: run `make setup`")
    return path


def have_tun() -> bool:
    """Whether a p2mp server can open a tun device here."""
    return os.path.exists("/dev/net/tun") and os.access("/dev/net/tun", os.R_OK | os.W_OK)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A free port on 127.0.0.1 for UDP (or TCP)."""
    return free_ports(1, kind)[0]


def free_ports(n: int, kind: int = socket.SOCK_DGRAM) -> list:
    """``n`` different free ports on 127.0.0.1: each is held until all are chosen (one at a
    time, the kernel may hand out a port it just gave again)."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind)
            held.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def server_args(pki, port: int, *, mode: str = "p2mp", proto: str = "udp", tls_auth: bool = False,
                cipher: str = "AES-256-GCM", auth: str = "SHA1", verb: int = 4) -> list:
    """Arguments of a loopback openvpn server (mode p2mp or p2p) for ``pki``."""
    args = [openvpn_binary(), "--local", "127.0.0.1", "--port", str(port),
            "--ca", pki.ca, "--cert", pki.server_cert, "--key", pki.server_key, "--dh", "none",
            "--keepalive", "2", "10", "--verb", str(verb), "--auth", auth,
            "--ifconfig-noexec", "--route-noexec", "--hand-window", "20"]
    if mode == "p2mp":
        args += ["--dev", "tun", "--topology", "subnet", "--server", "10.8.0.0", "255.255.255.0",
                 "--proto", "udp4" if proto == "udp" else "tcp4-server"]
    else:
        args += ["--dev", "null", "--tls-server", "--proto", "udp4" if proto == "udp" else "tcp4-server"]
    args += ["--data-ciphers", cipher]
    if cipher.endswith("CBC"):
        args += ["--cipher", cipher]
    if tls_auth:
        args += ["--tls-auth", pki.tls_auth, "0"]
    return args


def client_config(pki, port: int, *, mode: str = "p2mp", proto: str = "udp", tls_auth: bool = False,
                  cipher: str = "AES-256-GCM", auth: str = "SHA1", inline: bool = True) -> str:
    """A standard client .ovpn for the server of ``server_args``."""
    lines = ["client" if mode == "p2mp" else "tls-client",
             "dev tun", "nobind", "remote 127.0.0.1 %d" % port,
             "proto %s" % ("udp" if proto == "udp" else "tcp-client"),
             "remote-cert-tls server", "data-ciphers %s" % cipher, "auth %s" % auth, "verb 3",
             "hand-window 20"]
    if mode == "p2p":
        lines.append("keepalive 2 10")
    blobs = [("ca", pki.ca), ("cert", pki.client_cert), ("key", pki.client_key)]
    if tls_auth:
        blobs.append(("tls-auth", pki.tls_auth))
        lines.append("key-direction 1")
    for tag, path in blobs:
        if inline:
            with open(path) as f:
                lines += ["<%s>" % tag, f.read().strip(), "</%s>" % tag]
        else:
            lines.append("%s %s" % (tag, path))
    return "\n".join(lines) + "\n"


class OpenVpn:
    """A running openvpn process whose log goes to a file."""

    def __init__(self, args: list, log_path: str) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Everything logged so far."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, pattern: str, timeout_s: float = 20.0) -> bool:
        """Wait until the log matches ``pattern`` (regex); False on timeout or exit."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if rx.search(self.log()):
                return True
            if self.proc.poll() is not None:
                return bool(rx.search(self.log()))
            time.sleep(0.05)
        return False

    def key_errors(self) -> list:
        """Log lines that show the data keys or tls-auth keys differ."""
        return [line for line in self.log().splitlines() if KEY_ERRORS.search(line)]

    def stop(self) -> None:
        """Terminate the process (kill if it lingers)."""
        stop_process(self.proc, 5)
        self._log.close()

    def __enter__(self) -> "OpenVpn":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
