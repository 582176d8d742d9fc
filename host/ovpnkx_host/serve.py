"""`ovpnkx serve --config FILE`: the CPython peer as an OpenVPN 2.6 p2mp server.

One sans-IO ``Session`` per client (``server.Server``). With ``--workers N``
the server runs N processes that share the port (``SO_REUSEPORT``: the kernel
keeps each client address on one worker), the cookie secret (any worker can
answer a first contact) and the limits (``admission``). ``--reuseport`` with
``--cookie-secret FILE`` lets several ``serve`` instances share one port or sit
behind one L4 balancer (docs/fleet.md).

A client's failure ends only its own session. The first line printed is one
JSON object with the bound ports, so scripts and tests can find the server;
then one line per event (``--events`` picks which kinds).
"""

import argparse
import asyncio
import json
import os
import sys

from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import LocalProtocolError
from ovpnkx.wrapconfig import parse_static_key

from .configfile import load_config
from .eventwriter import EventWriter
from .server import Server, server_admission, serve_serial
from .workers import listeners, run_worker, supervise

# `ovpnkx run` drives a Server over a serial line itself
_serve_serial = serve_serial

EVENT_KINDS = ("session", "state", "keys", "ping", "data", "message", "dropped", "decrypt_error", "closed",
               "refused", "limited", "warning", "worker_exit", "serial_error", "serial_stats",
               "device", "dropped_events", "udp_stats")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx serve`."""
    p.add_argument("--config", required=True, help="OpenVPN-style server config")
    p.add_argument("--proto", choices=("udp", "tcp", "both"), help="override the config's proto")
    p.add_argument("--port", type=int, help="override the config's port (0 = any free port)")
    p.add_argument("--no-ekm", action="store_true", help="never grant tls-ekm (derive with the PRF)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--events", default="all", metavar="KINDS",
                   help="event kinds to print, comma-separated (default all; 'none': only the first line)")
    p.add_argument("--workers", default="1", metavar="N",
                   help="processes sharing the port (SO_REUSEPORT); 'auto': one per CPU (default 1)")
    p.add_argument("--reuseport", action="store_true",
                   help="bind with SO_REUSEPORT, so that other serve instances may share the port")
    p.add_argument("--cookie-secret", metavar="FILE",
                   help="the UDP cookie secret, shared with other instances (hex, or an OpenVPN static key)")
    p.add_argument("--serial", metavar="PORT",
                   help="serve a device on a serial line (pyserial URL); binds no network port "
                        "unless --proto or --port asks for one")
    p.add_argument("--baud", type=int, default=115200, help="serial line rate (default 115200)")
    p.add_argument("--key-fingerprint", action="store_true",
                   help="print a fingerprint of each key2 in the keys event (to check agreement; it lets"
                        " a reader of the log test a guessed key, so only where needed)")


def read_cookie_secret(path: str) -> bytes:
    """A shared cookie secret: hex text (>= 16 bytes) or an OpenVPN static key file."""
    with open(path) as f:
        text = f.read()
    if "BEGIN OpenVPN Static key" in text:
        return parse_static_key(text)
    try:
        secret = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise LocalProtocolError("%s: not hex and not an OpenVPN static key" % path)
    if len(secret) < 16:
        raise LocalProtocolError("%s: %d bytes; a cookie secret needs at least 16" % (path, len(secret)))
    return secret


def _parse_workers(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise ValueError("--workers must be 1..256 or auto")
    return n


def run(args: argparse.Namespace) -> int:
    """Start the server; runs until SIGINT/SIGTERM."""
    if args.port is not None and not 0 <= args.port <= 65535:
        print("ovpnkx serve: --port must be 0..65535 (0: any free port)", file=sys.stderr)
        return 2
    try:
        workers = _parse_workers(args.workers)
    except ValueError as exc:
        print("ovpnkx serve: %s" % exc, file=sys.stderr)
        return 2
    kinds = None
    if args.events != "all":
        kinds = {k for k in args.events.split(",") if k and k != "none"}
        unknown = sorted(kinds - set(EVENT_KINDS))
        if unknown:
            print("ovpnkx serve: --events: unknown kind %s (kinds: %s)" % (", ".join(unknown), ", ".join(EVENT_KINDS)),
                  file=sys.stderr)
            return 2
    cfg = load_config(args.config, "ovpnkx serve", server=True)
    if cfg is None:
        return 2
    if args.serial and workers > 1:
        print("ovpnkx serve: --serial serves one device: it needs --workers 1", file=sys.stderr)
        return 2
    try:
        secret = read_cookie_secret(args.cookie_secret) if args.cookie_secret else HostEntropy().random_bytes(32)
    except (OSError, LocalProtocolError) as exc:
        print("ovpnkx serve: --cookie-secret: %s" % (exc.strerror if isinstance(exc, OSError) else exc),
              file=sys.stderr)
        return 2
    # --serial alone binds no network port
    network = not args.serial or args.proto is not None or args.port is not None
    proto = (args.proto or cfg.proto) if network else "none"
    port = cfg.port if args.port is None else args.port
    emit = EventWriter(args.json, kinds)
    link = None
    if args.serial:
        import serial  # type: ignore[import-untyped]

        from .serial_link import SerialLink
        try:
            link = SerialLink(args.serial, args.baud)
        except (serial.SerialException, ValueError) as exc:
            print("ovpnkx serve: cannot open %s: %s" % (args.serial, exc), file=sys.stderr)
            return 2
    try:
        socks = listeners(cfg, proto, port, workers, workers > 1 or args.reuseport)
    except OSError as exc:
        print("ovpnkx serve: cannot listen on %s:%d: %s" % (cfg.local, port, exc.strerror), file=sys.stderr)
        if link is not None:
            link.close()
        return 1
    listening: dict = {"event": "listening", "local": cfg.local}
    udp, tcp = socks[0]
    if udp is not None:
        listening["udp"] = udp.getsockname()[1]
    if tcp is not None:
        listening["tcp"] = tcp.getsockname()[1]
    if link is not None:
        listening["serial"] = link.url
    admission = server_admission(cfg, workers)
    try:
        if workers == 1:
            listening["pid"] = os.getpid()
            print(json.dumps(listening), flush=True)
            asyncio.run(run_worker(cfg, not args.no_ekm, emit, socks[0], admission, secret, 0, 1, None, link,
                                   args.key_fingerprint))
            emit.flush()
            return 0
        return supervise(cfg, not args.no_ekm, emit, socks, admission, secret, listening, args.key_fingerprint)
    finally:
        if link is not None:
            link.close()
        admission.close()


