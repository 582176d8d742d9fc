"""`ovpnkx serve --config FILE`: the CPython peer as an OpenVPN 2.6 p2mp server.

One sans-IO ``Session`` per client (UDP: per source address; TCP: per
connection), driven by asyncio: packets in, packets out, one timer per session.
A client's failure ends only its own session. The first line printed is one JSON
object with the bound ports, so scripts and tests can find the server.
"""

import argparse
import asyncio
import json
import signal
import sys
import time

from ovpnkx.certinfo import REMOTE_CERT_TLS
from ovpnkx.config import engine_args, engine_options
from ovpnkx.cookie import CookieResponder, stateless_reset
from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import ProtocolError, RemoteProtocolError
from ovpnkx.packet import (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3, StreamDeframer, frame,
                           opcode_key_id)
from ovpnkx.session import Session, SessionConfig
from ovpnkx.tlswrap import TlsPlain, control_wrap_factory

CLIENT_RESETS = (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3)

from .configfile import load_config
from .crypto_host import HostCrypto
from .tls_openssl import OpenSslEngine


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `ovpnkx serve`."""
    p.add_argument("--config", required=True, help="OpenVPN-style server config")
    p.add_argument("--proto", choices=("udp", "tcp", "both"), help="override the config's proto")
    p.add_argument("--port", type=int, help="override the config's port (0 = any free port)")
    p.add_argument("--no-ekm", action="store_true", help="never grant tls-ekm (derive with the PRF)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--serial", metavar="PORT", help="serve a device on a serial line (pyserial URL)")
    p.add_argument("--baud", type=int, default=115200, help="serial line rate (default 115200)")


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Server:
    """Sessions keyed by peer, their timers, and event output."""

    def __init__(self, cfg, ask_ekm: bool, emit) -> None:
        self.cfg = cfg
        self.ask_ekm = ask_ekm
        self.emit = emit
        self.crypto = HostCrypto()
        self.entropy = HostEntropy()
        self.sessions: dict = {}  # peer -> [Session, send(packet), timer handle]
        self.on_close: dict = {}  # peer -> called when its session ends (TCP: drop the connection)
        self.next_peer_id = 0
        # tls-auth, tls-crypt or tls-crypt-v2 (server key): keys parsed once
        self.wrap_factory = control_wrap_factory(cfg, True, self.crypto)
        # tls-crypt-v2 force-cookie: no session for a client that cannot resend its key
        self.force_cookie = bool(getattr(cfg, "tls_crypt_v2_force_cookie", False))
        # UDP: answer resets statelessly, create a session only for a proven cookie
        self.cookies = CookieResponder(self.entropy.random_bytes(32), self._wrap)

    def _wrap(self):
        """A fresh control-packet wrapper (its own replay window), or TlsPlain."""
        return TlsPlain() if self.wrap_factory is None else self.wrap_factory()

    def _session_config(self, proto: str) -> SessionConfig:
        cfg = self.cfg
        tls_auth = None if self.wrap_factory is None else self.wrap_factory()  # a replay window per client
        ciphers = [c for c in cfg.data_ciphers if self.crypto.supports(c)]
        peer_id = self.next_peer_id
        self.next_peer_id = (self.next_peer_id + 1) % (1 << 24)
        return SessionConfig(is_server=True, p2mp=True, ciphers=ciphers, auth=cfg.auth, tls_auth=tls_auth,
                             ask_ekm=self.ask_ekm, proto=proto, hand_window_ms=cfg.hand_window * 1000,
                             timeout_ms=cfg.tls_timeout * 1000, ping_ms=(cfg.ping or 10) * 1000,
                             ping_restart_ms=(cfg.ping_restart or 60) * 1000, platform=sys.platform,
                             push_options=cfg.push, peer_id=peer_id)

    def _tls(self):
        # the config's checks of client certificates; remote-cert-tls client unless it names its own
        opts = engine_options(self.cfg)
        if self.cfg.remote_cert_eku is None:
            opts["peer"].eku, opts["peer"].why = REMOTE_CERT_TLS["client"], "remote-cert-tls client"
        return OpenSslEngine(True, *engine_args(self.cfg), **opts)

    def open(self, peer, proto: str, send, cookie=None) -> Session:
        """A new session for ``peer``; ``send(packet)`` puts a packet on its transport.

        ``cookie`` (server sid, client sid): the resets went statelessly (UDP).
        """
        self.close(peer, "replaced by a new session from the same peer")
        session = Session(self._session_config(proto), self.entropy, self.crypto, self._tls, _now_ms(),
                          cookie=cookie)
        if cookie is not None and hasattr(session.wrap, "continue_sending_after"):
            session.wrap.continue_sending_after(self.cookies.sender)
        self.sessions[peer] = [session, send, None]
        self.emit({"event": "session", "peer": _label(peer), "proto": proto})
        return session

    def receive(self, peer, data: bytes) -> None:
        """One packet from ``peer``."""
        entry = self.sessions.get(peer)
        if entry is None:
            return
        entry[0].receive(data, _now_ms())
        self.pump(peer)

    def pump(self, peer) -> None:
        """Send what the session has due, print its events, re-arm its timer."""
        entry = self.sessions.get(peer)
        if entry is None:
            return
        session, send, timer = entry
        now = _now_ms()
        try:
            for packet in session.packets_to_send(now):
                send(packet)
        except OSError as exc:
            session.close(now, "transport failed: %s" % exc)
        for ev in session.events():
            record = ev.to_dict()
            record["peer"] = _label(peer)
            self.emit(record)
        if timer is not None:
            timer.cancel()
        if session.closed:
            del self.sessions[peer]
            hook = self.on_close.pop(peer, None)
            if hook is not None:
                hook()
            return
        when = session.get_timer()
        if when is not None:
            loop = asyncio.get_running_loop()
            entry[2] = loop.call_later(max(0, when - now) / 1000, self.pump, peer)

    def close(self, peer, reason: str) -> None:
        """End ``peer``'s session (if any)."""
        entry = self.sessions.get(peer)
        if entry is not None:
            entry[0].close(_now_ms(), reason)
            self.pump(peer)


def _label(peer) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[0], str):
        return "%s:%s" % (peer[0], peer[1])
    return str(peer)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr) -> None:
        srv = self.server
        try:
            opcode, key_id = opcode_key_id(data)
        except RemoteProtocolError:
            return
        entry = srv.sessions.get(addr)
        if entry is None or (opcode in CLIENT_RESETS and entry[0].remote_session_id != data[1:9]):
            # a new client, or one that restarted: the 2.6 stateless cookie flow
            now, peer = _now_ms(), ("%s:%d" % addr[:2]).encode()
            if opcode in CLIENT_RESETS and stateless_reset(data):
                reply = srv.cookies.reply(data, peer, now)
                if reply is not None:
                    self._sendto(reply, addr)
                return
            if opcode in CLIENT_RESETS:  # tls-crypt-v2 client that cannot resend its key (< 2.6)
                if srv.force_cookie or not srv.cookies.authentic_reset(data, now):
                    return
                srv.open(addr, "udp", lambda p, a=addr: self._sendto(p, a))
            else:
                cookie = srv.cookies.verify(data, peer, now)
                if cookie is None:
                    return  # 2.6: "invalid or missing SID"; no state for unproven peers
                srv.open(addr, "udp", lambda p, a=addr: self._sendto(p, a), cookie=cookie)
        srv.receive(addr, data)


    def _sendto(self, packet: bytes, addr) -> None:
        if self.transport is not None:
            self.transport.sendto(packet, addr)


async def _serve_tcp_client(server: Server, reader, writer) -> None:
    peer = writer.get_extra_info("peername")
    server.open(peer, "tcp", lambda p: writer.write(frame(p)))
    server.on_close[peer] = writer.close  # a session ended by its timers must not leave the socket open
    server.pump(peer)  # arms its hand-window timer, even if the peer never sends a byte
    deframer = StreamDeframer()
    try:
        while peer in server.sessions:
            data = await reader.read(4096)
            if not data:
                server.close(peer, "client closed the TCP connection")
                break
            try:
                packets = deframer.feed(data)
            except RemoteProtocolError as exc:
                server.close(peer, "bad TCP framing: %s" % exc)
                break
            for p in packets:
                server.receive(peer, p)
            await writer.drain()
    except (ConnectionError, ProtocolError) as exc:
        server.close(peer, str(exc))
    finally:
        server.on_close.pop(peer, None)
        writer.close()


def _serve_serial(server: Server, link, loop) -> None:
    """A device on a serial line: one more session source, packets as over UDP
    (one per frame, a line may lose them), opened by the device's hard reset."""
    peer = "serial:" + link.url

    def on_packet(data: bytes) -> None:
        try:
            opcode, key_id = opcode_key_id(data)
        except RemoteProtocolError:
            return
        entry = server.sessions.get(peer)
        if opcode in CLIENT_RESETS and key_id == 0:
            if entry is None or entry[0].remote_session_id is not None and entry[0].remote_session_id != data[1:9]:
                server.open(peer, "udp", link.send)
        server.receive(peer, data)

    def on_error(exc: Exception) -> None:
        server.emit({"event": "serial_error", "peer": peer, "reason": str(exc)})
        server.close(peer, "serial line failed: %s" % exc)

    def on_line(text: str) -> None:
        # the device's console (when the line is its REPL port): its own events
        try:
            record = json.loads(text)
        except ValueError:
            return
        server.emit({"event": "device", "peer": peer, "record": record})

    link.start(lambda d: loop.call_soon_threadsafe(on_packet, d),
               on_line=lambda t: loop.call_soon_threadsafe(on_line, t),
               on_error=lambda e: loop.call_soon_threadsafe(on_error, e))


async def serve(cfg, proto: str, port: int, ask_ekm: bool, emit, serial_link=None) -> None:
    """Run the server until cancelled (``serial_link``: a SerialLink to serve too)."""
    server = Server(cfg, ask_ekm, emit)
    loop = asyncio.get_running_loop()
    listening = {"event": "listening", "local": cfg.local}
    if serial_link is not None:
        _serve_serial(server, serial_link, loop)
        listening["serial"] = serial_link.url
    if proto in ("udp", "both"):
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(server), local_addr=(cfg.local, port))
        listening["udp"] = transport.get_extra_info("sockname")[1]
    if proto in ("tcp", "both"):
        tcp = await asyncio.start_server(lambda r, w: _serve_tcp_client(server, r, w), cfg.local,
                                         port if proto == "tcp" else listening.get("udp", port))
        listening["tcp"] = tcp.sockets[0].getsockname()[1]
    print(json.dumps(listening), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for peer in list(server.sessions):
        server.close(peer, "server shutting down")
    if serial_link is not None:
        emit(dict(serial_link.stats(), event="serial_stats", peer="serial:" + serial_link.url))


def run(args: argparse.Namespace) -> int:
    """Start the server; runs until SIGINT/SIGTERM."""
    if args.port is not None and not 0 <= args.port <= 65535:
        print("ovpnkx serve: --port must be 0..65535 (0: any free port)", file=sys.stderr)
        return 2
    cfg = load_config(args.config, "ovpnkx serve", server=True)
    if cfg is None:
        return 2
    emit = (lambda r: print(json.dumps(r), flush=True)) if args.json else _print_text
    port = cfg.port if args.port is None else args.port
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
        asyncio.run(serve(cfg, args.proto or cfg.proto, port, not args.no_ekm, emit, link))
    except OSError as exc:
        print("ovpnkx serve: cannot listen on %s:%d: %s" % (cfg.local, port, exc.strerror), file=sys.stderr)
        return 1
    finally:
        if link is not None:
            link.close()
    return 0


def _print_text(record: dict) -> None:
    rest = ", ".join("%s=%s" % (k, v) for k, v in record.items() if k not in ("event", "peer", "at_ms"))
    print("%-21s %-13s %s" % (record.get("peer", ""), record.get("event"), rest), flush=True)
