"""Helpers for interop tests: run `ovpnkx connect`, skip without tun."""

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from ovpnkx_host import openvpn as ov

OVPNKX = os.path.join(os.path.dirname(sys.executable), "ovpnkx")


def run_connect(config_path: str, runtime: str, pings: int = 2, timeout: int = 60, extra=()) -> tuple:
    """Run `ovpnkx connect --json`; returns (exit code, events, stderr)."""
    proc = subprocess.run([OVPNKX, "connect", "--config", config_path, "--runtime", runtime,
                           "--pings", str(pings), "--json", *extra],
                          capture_output=True, text=True, timeout=timeout)
    events = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return proc.returncode, events, proc.stderr


class Client:
    """`ovpnkx connect --json` in a subprocess; events and timings collected by a thread."""

    def __init__(self, config: str, runtime: str, pings: "int | None" = 2, on_event=None,
                 timeout: "int | None" = 40) -> None:
        """``pings``/``timeout`` None: run without --pings / --timeout (until stopped)."""
        self.runtime = runtime
        self.events = []
        self.times = []  # monotonic time of each event
        self.on_event = on_event
        self.started = time.monotonic()
        args = [OVPNKX, "connect", "--config", config, "--runtime", runtime, "--json"]
        if pings is not None:
            args += ["--pings", str(pings)]
        if timeout is not None:
            args += ["--timeout", str(timeout)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            ev = json.loads(line)
            self.events.append(ev)
            self.times.append(time.monotonic())
            if self.on_event is not None:
                self.on_event(self, ev)
        self.ended = time.monotonic()  # stdout closed: the client is exiting

    def wait(self) -> "Client":
        """Wait for the exit; sets code, stderr, result, elapsed."""
        self.stderr = self.proc.stderr.read()
        self.code = self.proc.wait(60)
        self._thread.join(10)
        self.elapsed = self.ended - self.started
        last = self.events[-1] if self.events else {}
        self.result = last if last.get("event") == "result" else {}
        return self

    @property
    def reason(self) -> str:
        return self.result.get("reason", "")

    def of(self, kind: str) -> list:
        """The events of ``kind``, in order."""
        return [e for e in self.events if e["event"] == kind]

    def signal(self, sig) -> None:
        """Send ``sig`` to the client process (the `ovpnkx connect` command)."""
        self.signalled_at = time.monotonic()
        self.proc.send_signal(sig)

    def first(self, kind: str) -> "float | None":
        """When the first event of ``kind`` arrived (monotonic), or None."""
        for ev, t in zip(self.events, self.times):
            if ev["event"] == kind:
                return t
        return None

    def __repr__(self) -> str:
        return "Client(%s, exit %s, %.1f s, %r)\nstderr: %s" % (
            self.runtime, getattr(self, "code", None), getattr(self, "elapsed", -1), self.result,
            getattr(self, "stderr", "")[-1500:])


def pings_decrypted_by_key(log: str) -> dict:
    """key_id -> pings an openvpn at verb 9 decrypted with it (its "tls_pre_decrypt, key_id=N"
    line comes just before each "DECRYPT TO" line)."""
    counts: dict = {}
    key_id = None
    for line in log.splitlines():
        m = re.search(r"tls_pre_decrypt, key_id=(\d+)", line)
        if m:
            key_id = int(m.group(1))
        elif ov.PING_DECRYPTED.search(line) and key_id is not None:
            counts[key_id] = counts.get(key_id, 0) + 1
    return counts


def need_tun(mode: str) -> None:
    """Skip (saying why) where a p2mp openvpn server cannot open /dev/net/tun."""
    if mode == "p2mp" and not ov.have_tun():
        pytest.skip("a p2mp openvpn server needs /dev/net/tun, which is missing here")


def server_ready_pattern(proto: str) -> str:
    """Log line that says the openvpn server listens."""
    return r"UDPv4 link local|Listening for incoming TCP connection|TCPv4_SERVER link local"


class OvpnkxServer:
    """`ovpnkx serve --json` in a subprocess; ``port`` from its first line, events as they come."""

    def __init__(self, config_path: str, extra=()) -> None:
        self.proc = subprocess.Popen([OVPNKX, "serve", "--config", config_path, "--json", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("{"):
            self.proc.kill()
            raise RuntimeError("ovpnkx serve did not start: %s %s" % (first, self.proc.stderr.read()))
        self.listening = json.loads(first)
        self.events: list = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self._changed:
                    self.events.append(json.loads(line))
                    self._changed.notify_all()

    def wait_for(self, done, timeout: float) -> bool:
        """Wait until ``done(events)`` is true (False after ``timeout`` seconds)."""
        with self._changed:
            return self._changed.wait_for(lambda: done(self.events), timeout)

    def stop(self) -> list:
        """Stop the server; returns all events it printed."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        return self.events


def server_config(pki, proto: str = "udp", tls_auth: bool = False, cipher: str = "AES-256-GCM") -> str:
    """An OpenVPN-style server config for `ovpnkx serve` (port 0: any free port)."""
    lines = ["server 10.8.0.0 255.255.255.0", "proto %s" % proto, "port 0", "local 127.0.0.1",
             "ca %s" % pki.ca, "cert %s" % pki.server_cert, "key %s" % pki.server_key, "dh none",
             "keepalive 2 10", "data-ciphers %s" % cipher]
    if tls_auth:
        lines.append("tls-auth %s 0" % pki.tls_auth)
    return "\n".join(lines) + "\n"


def openvpn_client_args(pki, port: int, proto: str = "udp", tls_auth: bool = False,
                        cipher: str = "AES-256-GCM", verb: int = 9) -> list:
    """A real openvpn p2mp client for 127.0.0.1:port; no tun, no routes."""
    args = [ov.openvpn_binary(), "--client", "--dev", "null", "--nobind",
            "--proto", "udp4" if proto == "udp" else "tcp4-client", "--remote", "127.0.0.1", str(port),
            "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key,
            "--remote-cert-tls", "server", "--data-ciphers", cipher, "--verb", str(verb),
            "--ifconfig-noexec", "--route-noexec", "--hand-window", "20"]
    if tls_auth:
        args += ["--tls-auth", pki.tls_auth, "1"]
    return args
