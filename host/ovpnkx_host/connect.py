"""`ovpnkx connect --config FILE`: a client for an OpenVPN 2.6 server.

``--runtime micropython`` runs the client on the MicroPython unix port as the
simulated device does (its sockets stand in for Wi-Fi; it derives keys with the
PRF since MicroPython's TLS has no exporter). ``--runtime cpython`` runs the same
core on the host with pyOpenSSL, and asks for tls-ekm.

Entropy: the MicroPython runtime *is* the simulated device, so by default it
draws from the sim board's modelled TRNG through the whole chain (noise ->
health tests -> SHA-256 -> HMAC_DRBG; ``--trng-fault`` breaks the model);
``--entropy host`` uses os.urandom. The CPython runtime always uses the host's.
"""

import argparse
import os
import subprocess
import sys

from ovpnkx.config import engine_args, engine_options
from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import LocalProtocolError
from ovpnkx.noise import SimTrng
from ovpnkx_device.runner import json_emitter, run_client, text_emitter

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
                   help="exit 0 once N server pings were decrypted and N of ours sent")
    p.add_argument("--timeout", type=int, default=0, metavar="S",
                   help="give up after S seconds (default: hand-window + time for the pings)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--entropy", choices=("host", "sim"), default=None,
                   help="micropython runtime: the sim board's modelled TRNG (default) or os.urandom")
    p.add_argument("--trng-fault", default=None, metavar="FAULT",
                   help="break the modelled TRNG: stuck, stuck=1, bias=P, repeat=N, correlated=R")


def run(args: argparse.Namespace) -> int:
    """Run the client; the exit status says whether it worked."""
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
    timeout = args.timeout or (cfg.hand_window + 10 + 3 * max(args.pings, 1) * max(cfg.ping, 2))
    if args.runtime == "micropython":
        cmd = [micropython_binary(), "-m", "ovpnkx_device.connect_main", path, str(args.pings),
               str(timeout), "json" if args.json else "text",
               entropy + (":" + args.trng_fault if args.trng_fault else "")]
        board = os.path.join(os.path.dirname(FIRMWARE), "boards", "sim")  # its noise.py
        return subprocess.call(cmd, env=micropython_env(board))

    def tls_factory():
        return OpenSslEngine(False, *engine_args(cfg), **engine_options(cfg))

    return run_client(cfg, HostEntropy(), HostCrypto(), tls_factory, ask_ekm=True,
                      platform=sys.platform, pings=args.pings, timeout_s=timeout,
                      emit=json_emitter if args.json else text_emitter)
