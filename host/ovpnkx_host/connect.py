"""`ovpnkx connect --config FILE`: a client for an OpenVPN 2.6 server.

``--runtime micropython`` runs the client on the MicroPython unix port as the
simulated device does (its sockets stand in for Wi-Fi; it derives keys with the
PRF since MicroPython's TLS has no exporter). ``--runtime cpython`` runs the same
core on the host with pyOpenSSL, and asks for tls-ekm.

Entropy: the MicroPython runtime *is* the simulated device, so by default it
draws from the sim board's modelled TRNG through the whole chain (noise ->
health tests -> SHA-256 -> HMAC_DRBG; ``--trng-fault`` breaks the model);
``--entropy host`` uses os.urandom. The CPython runtime always uses the host's.

Without ``--pings`` the client runs as openvpn's does until SIGINT (Ctrl-C) or
SIGTERM: then it tells the server it leaves and exits 0. On the MicroPython
runtime, which has no ``signal`` module, this process forwards either signal to
the client as SIGINT (KeyboardInterrupt there), saying which it was on the
client's stdin.
"""

import argparse
import os
import signal
import subprocess
import sys

from ovpnkx.config import engine_args, engine_options
from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import LocalProtocolError
from ovpnkx.noise import SimTrng
from ovpnkx_device.emitters import json_emitter, text_emitter
from ovpnkx_device.runner import Stop, run_client

from .configfile import load_config
from .crypto_host import HostCrypto
from .runtime import FIRMWARE, micropython_binary, micropython_env
from .tls_openssl import OpenSslEngine


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx connect`."""
    p.add_argument("--config", required=True, help="OpenVPN client config (.ovpn)")
    p.add_argument("--runtime", choices=("micropython", "cpython"), default="cpython",
                   help="run the client on the MicroPython unix port or on CPython (default)")
    p.add_argument("--pings", type=int, default=0, metavar="N",
                   help="exit 0 once N server pings were decrypted and N of ours sent (default: run "
                        "until SIGINT/SIGTERM, reconnecting as openvpn does)")
    p.add_argument("--timeout", type=int, default=0, metavar="S",
                   help="give up after S seconds (default with --pings: hand-window + time for the pings, "
                        "per remote; without: never)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--entropy", choices=("host", "sim"), default=None,
                   help="micropython runtime: the sim board's modelled TRNG (default) or os.urandom")
    p.add_argument("--trng-fault", default=None, metavar="FAULT",
                   help="break the modelled TRNG: stuck, stuck=1, bias=P, repeat=N, correlated=R")


def run(args: argparse.Namespace) -> int:
    """Run the client; the exit status says whether it worked.

    SIGINT and SIGTERM are ours from the start: one that comes before the client
    runs stops it at once (status 0), one that comes later reaches it.
    """
    stop = Stop()
    child: list = []  # the MicroPython client, once started

    def on_signal(name: str) -> None:
        stop.request(name)
        if child:
            _forward(child[0], name)

    with _handled_signals(on_signal):
        return _run(args, stop, child)


def _run(args: argparse.Namespace, stop: Stop, child: list) -> int:
    if args.pings < 0:
        print("ovpnkx connect: --pings must be >= 0", file=sys.stderr)
        return 2
    path = os.path.abspath(args.config)
    # the MicroPython runtime checks the config against itself, as a board does
    cfg = load_config(args.config, "ovpnkx connect", quiet=True, check_runtime=args.runtime == "cpython")
    if cfg is None:
        return 2
    entropy = args.entropy or ("sim" if args.runtime == "micropython" else "host")
    if args.trng_fault is not None:
        try:
            SimTrng(fault=args.trng_fault)
        except LocalProtocolError as exc:
            print("ovpnkx connect: --trng-fault: %s" % exc, file=sys.stderr)
            return 2
    if (entropy == "sim" or args.trng_fault) and (args.runtime != "micropython" or entropy != "sim"):
        print("ovpnkx connect: --entropy sim and --trng-fault need --runtime micropython "
              "(and the sim entropy)", file=sys.stderr)
        return 2
    if args.timeout < 0:
        print("ovpnkx connect: --timeout must be >= 0", file=sys.stderr)
        return 2
    timeout = args.timeout or (_pings_budget(cfg, args.pings) if args.pings else 0)
    if args.runtime == "micropython":
        cmd = [micropython_binary(), "-m", "ovpnkx_device.connect_main", path, str(args.pings),
               str(timeout), "json" if args.json else "text",
               entropy + (":" + args.trng_fault if args.trng_fault else "")]
        board = os.path.join(os.path.dirname(FIRMWARE), "boards", "sim")  # its noise.py
        if stop.signal:
            return 0
        return _run_child(cmd, micropython_env(board), stop, child)

    def tls_factory():
        return OpenSslEngine(False, *engine_args(cfg), **engine_options(cfg))

    return run_client(cfg, HostEntropy(), HostCrypto(), tls_factory, ask_ekm=True,
                      platform=sys.platform, pings=args.pings, timeout_s=timeout,
                      emit=json_emitter if args.json else text_emitter, stop=stop)


def _pings_budget(cfg, pings: int) -> int:
    """Seconds for --pings N: the handshake, or the server poll, and the pings, for each remote."""
    per_remote = min(cfg.hand_window, cfg.server_poll_timeout or cfg.hand_window)
    per_remote += 10 + 3 * pings * max(cfg.ping, 2) + cfg.connect_retry[0]
    return per_remote * len(cfg.remotes)


class _handled_signals:
    """SIGINT and SIGTERM call ``on_signal(name)`` while the block runs (then as before)."""

    def __init__(self, on_signal) -> None:
        self.on_signal = on_signal
        self.saved: dict = {}

    def __enter__(self) -> "_handled_signals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, lambda num, frame: self.on_signal(signal.Signals(num).name))
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _run_child(cmd: list, env: dict, stop: Stop, child: list) -> int:
    """Run the MicroPython client; SIGINT/SIGTERM reach it as SIGINT, named on its stdin.

    The child runs in its own session, so that a terminal's Ctrl-C reaches it once,
    through us, and not twice.
    """
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, start_new_session=True)
    child.append(proc)
    try:
        if stop.signal:  # it came while the child was starting
            _forward(proc, stop.signal)
        return proc.wait()
    finally:
        if proc.stdin is not None:
            proc.stdin.close()


def _forward(proc: subprocess.Popen, name: str) -> None:
    """Tell the MicroPython client which signal came, then interrupt it."""
    try:
        if proc.stdin is not None:
            proc.stdin.write((name + "\n").encode())
            proc.stdin.flush()
    except OSError:  # the client is gone already
        pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
