"""The client sessions of one ``ovpnkx serve`` process (one worker), on asyncio.

One sans-IO ``Session`` per client (UDP: per source address; TCP: per
connection; serial: per line), all sharing one ``SessionConfig`` and one TLS
context. Their deadlines sit in one timer heap behind a single asyncio handle.
What a client may take is bounded by ``Admission`` (max-clients, the stateless
reply rate, the ifconfig pool), shared with the other workers of the server.

UDP first contact is stateless (the 2.6 HMAC cookie). A client that restarts
from the same address and port gets a new session once it proves the cookie;
its old session keeps running beside it until the new one has keys, as
openvpn keeps its active session until the new one has authenticated.
"""

import asyncio
import collections
import time

from ovpnkx.certinfo import REMOTE_CERT_TLS
from ovpnkx.config import engine_args, engine_options
from ovpnkx.cookie import CookieResponder, continue_sending_after, stateless_reset
from ovpnkx.lifetime import key_lifetime_options
from ovpnkx.entropy import HostEntropy
from ovpnkx.errors import RemoteProtocolError
from ovpnkx.packet import (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3, P_DATA_V1, P_DATA_V2,
                           opcode_key_id)
from ovpnkx.session import Session, SessionConfig
from ovpnkx.streambuf import StreamDeframer, frame
from ovpnkx.tlswrap import TlsPlain
from ovpnkx.wrapconfig import control_wrap_factory

from .admission import Admission
from .crypto_host import HostCrypto
from .ifpool import IfconfigPool
from .timerheap import TimerHeap
from .tls_openssl import OpenSslContext

PEER_ID_MAX = 1 << 24
CLIENT_RESETS = (P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3)


def now_ms() -> int:
    """CLOCK_MONOTONIC in ms: asyncio's clock, shared by every process."""
    return time.monotonic_ns() // 1_000_000


def label(peer) -> str:
    """``host:port`` for a socket address, the name otherwise."""
    if isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[0], str):
        return "%s:%s" % (peer[0], peer[1])
    return str(peer)


class Peer:
    """One client session and what the server keeps beside it."""

    __slots__ = ("key", "label", "session", "proto", "target", "previous", "cn", "address", "established")

    def __init__(self, key, session: Session, proto: str, target) -> None:
        self.key = key  # the address (UDP), connection (TCP) or line (serial)
        self.label = label(key)
        self.session = session
        self.proto = proto
        self.target = target  # UDP: the address; TCP: its transport; serial: send(packet)
        self.previous = None  # type: Peer | None  # the session this one replaces, until it has keys
        self.cn = None  # type: str | None
        self.address = -1  # its ifconfig pool entry
        self.established = 0  # ns (CLOCK_MONOTONIC) when it was accepted (duplicate-cn: newest wins)


def server_admission(cfg, workers: int = 1) -> Admission:
    """The limits of ``cfg`` (max-clients, connect-freq-initial, the pool), for ``workers`` processes."""
    pool = server_pool(cfg)
    return Admission(cfg.max_clients, cfg.connect_freq_initial, pool.size if pool else 0, workers)


def server_pool(cfg) -> "IfconfigPool | None":
    """The ``server`` directive's address pool, or None (no ``server``, or ``nopool``)."""
    if cfg.server_network is None or cfg.server_nopool:
        return None
    return IfconfigPool(cfg.server_network, cfg.server_netmask, cfg.topology)


class Server:
    """Sessions keyed by peer, their timers, their limits, and event output.

    ``emit(record)`` prints one event. ``admission`` and ``cookie_secret`` are
    shared with the other workers of the server (default: this process alone).
    ``claims`` tells the other workers when a common name connects anew
    (duplicate-cn); None with one worker.
    """

    def __init__(self, cfg, ask_ekm: bool, emit, admission: "Admission | None" = None,
                 cookie_secret: "bytes | None" = None, worker: int = 0, workers: int = 1,
                 claims=None, key_fingerprint: bool = False) -> None:
        self.cfg = cfg
        self.emit = emit
        wants = getattr(emit, "wants", None)
        self._wants = wants if wants is not None else (lambda kind: True)  # skip what is not printed
        self.worker = worker
        self.workers = workers
        self.crypto = HostCrypto()
        self.entropy = HostEntropy()
        self.sessions: dict = {}  # peer key -> Peer
        self.on_close: dict = {}  # peer key -> called when its session ends (serial, embedders)
        self.admission = admission if admission is not None else server_admission(cfg)
        self.pool = server_pool(cfg)
        # tls-auth, tls-crypt or tls-crypt-v2 (server key): the keys parsed once; one wrapper per client
        self.wrap_factory = control_wrap_factory(cfg, True, self.crypto)
        # tls-crypt-v2 force-cookie: no session for a client that cannot resend its key
        self.force_cookie = bool(getattr(cfg, "tls_crypt_v2_force_cookie", False))
        # one config and one TLS context for every session (parse_config guarantees ca, cert, key)
        push = list(cfg.push) + (self.pool.push if self.pool else [])
        self.session_config = SessionConfig(
            is_server=True, p2mp=True, ciphers=[c for c in cfg.data_ciphers if self.crypto.supports(c)],
            auth=cfg.auth, tls_auth=None, ask_ekm=ask_ekm, proto="udp", hand_window_ms=cfg.hand_window * 1000,
            timeout_ms=cfg.tls_timeout * 1000, ping_ms=(cfg.ping or 10) * 1000,
            ping_restart_ms=(cfg.ping_restart or 60) * 1000, platform="linux", push_options=push,
            key_fingerprint=key_fingerprint, cipher=cfg.cipher,
            release_tls=True,  # an idle session keeps no TLS engine
            **key_lifetime_options(cfg))  # reneg-*, tran-window, replay-window where given
        self.tcp_config = _copy_config(self.session_config, proto="tcp")
        # the config's checks of client certificates; remote-cert-tls client unless it names its own
        opts = engine_options(cfg)
        if cfg.remote_cert_eku is None:
            opts["peer"].eku, opts["peer"].why = REMOTE_CERT_TLS["client"], "remote-cert-tls client"
        ca, cert, key = engine_args(cfg)
        self.tls = OpenSslContext(True, ca, cert, key, **opts)
        secret = cookie_secret if cookie_secret is not None else self.entropy.random_bytes(32)
        # UDP: answer resets statelessly, create a session only for a proven cookie
        self.cookies = CookieResponder(secret, self._wrap, hand_window_s=cfg.hand_window)
        self.udp = None  # type: UdpListener | None  # the UDP socket, once listening
        self.claims = claims
        self.timers = TimerHeap()
        self._wake = None  # type: asyncio.TimerHandle | None  # the handle of the earliest deadline
        self._wake_at = None  # type: int | None
        self._peer_of: dict = {}  # Session -> Peer (for the push hook)
        self._by_cn: dict = {}  # common name -> set of Peers that were accepted
        self._next_peer_id = 0
        self._limited_at = 0  # when the last "connect-freq-initial" note was printed

    def _wrap(self):
        """A fresh control-packet wrapper (tls-auth, tls-crypt or tls-crypt-v2, with its own
        replay window), or TlsPlain: the one place serve chooses it."""
        return TlsPlain() if self.wrap_factory is None else self.wrap_factory()

    def _peer_id(self) -> int:
        # unique across workers: worker, worker + workers, ...
        n = self._next_peer_id
        self._next_peer_id = (n + 1) % (PEER_ID_MAX // self.workers)
        return n * self.workers + self.worker

    def _emit(self, record: dict, peer=None) -> None:
        if peer is not None:
            record["peer"] = peer.label if isinstance(peer, Peer) else label(peer)
        if self.workers > 1:
            record["worker"] = self.worker
        self.emit(record)

    # -- sessions ------------------------------------------------------------------
    def open(self, peer, proto: str, send, cookie=None) -> "Session | None":
        """A new session for ``peer``; ``send(packet)`` puts a packet on its transport
        (None for UDP: the server's socket, to the address ``peer``).

        ``cookie`` (server sid, client sid): the resets went statelessly (UDP).
        Returns None when max-clients is reached (nothing is created).
        """
        if not self.admission.admit():
            self._emit({"event": "refused", "reason": "max-clients %d reached" % self.cfg.max_clients}, peer)
            return None
        old = self.sessions.get(peer)
        wrap = self._wrap()
        if cookie is not None:
            continue_sending_after(wrap, self.cookies.sender)
        session = Session(self.tcp_config if proto == "tcp" else self.session_config, self.entropy,
                          self.crypto, self.tls.engine, now_ms(), cookie=cookie, wrap=wrap,
                          peer_id=self._peer_id(), push_hook=self._push_hook)
        p = Peer(peer, session, proto, send if send is not None else peer)
        if old is not None:
            if proto == "udp" and cookie is not None and old.session.data_ready:
                # the client restarted: its old session lives on until the new one has keys
                if old.previous is not None:
                    self._close_peer(old.previous, "replaced by a new session from the same peer")
                p.previous = old
            else:
                self._close_peer(old, "replaced by a new session from the same peer")
        self.sessions[peer] = p
        self._peer_of[session] = p
        self._emit({"event": "session", "proto": proto}, p)
        return session

    def receive(self, peer, data: bytes) -> None:
        """One packet from ``peer``."""
        p = self.sessions.get(peer)
        if p is not None:
            self._receive(p, data)

    def _receive(self, p: Peer, data: bytes) -> None:
        p.session.receive(data, now_ms())
        self.pump(p)

    def pump(self, p) -> None:
        """Send what the session has due, print its events, re-arm its timer."""
        if not isinstance(p, Peer):  # a peer key (embedders)
            p = self.sessions.get(p)
            if p is None:
                return
        session = p.session
        now = now_ms()
        try:
            packets = session.packets_to_send(now)
            if packets:
                self._send(p, packets)
        except OSError as exc:
            session.close(now, "transport failed: %s" % exc)
        wants = self._wants
        for ev in session.events():
            if ev.kind == "keys" and ev.fields.get("key_id") == 0 and p.previous is not None:
                self._close_peer(p.previous, "replaced by a new session from the same peer")
                p.previous = None
            if wants(ev.kind):
                self._emit(ev.to_dict(), p)
        if session.closed:
            self._finish(p)
            return
        when = session.get_timer()
        if when is not None:
            self._arm(p, when)

    def _send(self, p: Peer, packets: list) -> None:
        if p.proto == "udp" and not callable(p.target):
            udp = self.udp
            if udp is not None:
                for packet in packets:
                    udp.sendto(packet, p.target)
        elif p.proto == "tcp" and not callable(p.target):
            p.target.write(b"".join(frame(packet) for packet in packets))
        else:
            for packet in packets:
                p.target(packet)

    def close(self, peer, reason: str) -> None:
        """End ``peer``'s session (if any)."""
        p = self.sessions.get(peer)
        if p is not None:
            if p.previous is not None:
                self._close_peer(p.previous, reason)
            self._close_peer(p, reason)

    def close_all(self, reason: str) -> None:
        """End every session (the server stops)."""
        for p in list(self.sessions.values()):
            if p.previous is not None:
                self._close_peer(p.previous, reason)
            self._close_peer(p, reason)

    def _close_peer(self, p: Peer, reason: str) -> None:
        if not p.session.closed:
            p.session.close(now_ms(), reason)
            self.pump(p)

    def _drop_peer(self, p: Peer, reason: str) -> None:
        """Forget ``p``'s session without a word to its client, as openvpn drops the
        older session of a common name: a client told to go would reconnect at once
        and replace the newer one in turn."""
        if not p.session.closed:
            p.session.events()  # whatever it had to say goes with it
            self._emit({"event": "closed", "at_ms": now_ms(), "reason": reason, "error": False,
                        "silent": True}, p)
            self._finish(p)

    def _finish(self, p: Peer) -> None:
        """``p``'s session ended: give back what it held."""
        self.timers.cancel(p)
        self._peer_of.pop(p.session, None)
        current = self.sessions.get(p.key)
        if current is p:
            if p.previous is not None and not p.previous.session.closed:
                self.sessions[p.key] = p.previous  # the new session failed: the old one goes on
            else:
                del self.sessions[p.key]
                hook = self.on_close.pop(p.key, None)
                if hook is not None:
                    hook()
                if p.proto == "tcp" and not callable(p.target):
                    p.target.close()
        elif current is not None and current.previous is p:
            current.previous = None
        p.previous = None
        self.admission.release()
        if p.address >= 0:
            self.admission.release_address(p.address)
            p.address = -1
        if p.cn is not None:
            peers = self._by_cn.get(p.cn)
            if peers is not None:
                peers.discard(p)
                if not peers:
                    del self._by_cn[p.cn]

    # -- the client is accepted: duplicate-cn and its address ---------------------------
    def _push_hook(self, session: Session) -> list:
        """Called as the server sends PUSH_REPLY (the client's certificate was
        verified): the one-session-per-CN rule, then the client's ifconfig."""
        p = self._peer_of.get(session)
        if p is None:
            return []
        channel = session.channels.get(0)
        cn = getattr(channel.tls, "peer_subject", None) if channel is not None else None
        p.established = time.monotonic_ns()
        if cn is not None:
            p.cn = cn
            if not self.cfg.duplicate_cn:
                self.cn_claimed(cn, p.established, p)
                if self.claims is not None:
                    self.claims.announce(cn, p.established)
            self._by_cn.setdefault(cn, set()).add(p)
        extra = []
        if self.pool is not None:
            index = self.admission.acquire_address()
            if index < 0:
                self._emit({"event": "warning", "reason": "no free --ifconfig-pool addresses are available"}, p)
            else:
                p.address = index
                extra.append(self.pool.ifconfig(index))
        return extra

    def cn_claimed(self, cn: str, at_ns: int, newer: "Peer | None" = None) -> None:
        """A session with common name ``cn`` was accepted at ``at_ns``: without
        duplicate-cn, every earlier one of that name ends (openvpn's multi_delete_dup)."""
        for old in list(self._by_cn.get(cn, ())):
            if old is not newer and old.established < at_ns:
                self._drop_peer(old, "a new session of common name %s replaces this one "
                                     "(duplicate-cn allows several)" % cn)

    # -- timers: one heap, one asyncio handle ---------------------------------------------
    def _arm(self, p: Peer, when: int) -> None:
        if self.timers.arm(p, when) and (self._wake_at is None or when < self._wake_at):
            self._schedule(when)

    def _schedule(self, when: int) -> None:
        if self._wake is not None:
            self._wake.cancel()
        self._wake_at = when
        self._wake = asyncio.get_running_loop().call_at(when / 1000, self._fire)

    def _fire(self) -> None:
        self._wake = self._wake_at = None
        for p in self.timers.pop_due(now_ms() + 1):
            self.pump(p)
        nxt = self.timers.next_deadline()
        if nxt is not None and (self._wake_at is None or nxt < self._wake_at):
            self._schedule(nxt)

    # -- UDP: first contact is stateless ----------------------------------------------------
    def datagram(self, addr, data: bytes) -> None:
        """One datagram from ``addr``."""
        try:
            opcode, key_id = opcode_key_id(data)
        except RemoteProtocolError:
            return
        p = self.sessions.get(addr)
        if opcode == P_DATA_V1 or opcode == P_DATA_V2:
            if p is not None:
                if p.previous is not None and not p.session.data_ready:
                    p = p.previous  # the old session still holds the keys
                self._receive(p, data)
            return
        sid = data[1:9]  # the sender's session id, in clear with or without tls-auth
        if p is not None:
            if sid == p.session.remote_session_id:
                self._receive(p, data)
                return
            if p.previous is not None and sid == p.previous.session.remote_session_id:
                self._receive(p.previous, data)
                return
        # a new client, or one that restarted: the 2.6 stateless cookie flow
        now, who = now_ms(), ("%s:%d" % addr[:2]).encode()
        if opcode in CLIENT_RESETS and not stateless_reset(data):
            # a tls-crypt-v2 client that cannot resend its key (< 2.6): state from its first packet
            if self.force_cookie or not self.cookies.authentic_reset(data, now):
                return
            if self.open(addr, "udp", None) is not None:
                self._receive(self.sessions[addr], data)
            return
        if opcode in CLIENT_RESETS:
            reply = self.cookies.reply(data, who, now)
            if reply is None:
                return
            if not self.admission.initial_allowed(now // 1000):
                if now - self._limited_at >= 1000:
                    self._limited_at = now
                    n, s = self.cfg.connect_freq_initial
                    self._emit({"event": "limited", "reason": "connect-freq-initial %d %d exceeded: "
                                "dropping initial handshake packets" % (n, s)}, addr)
                return
            if self.udp is not None:
                self.udp.sendto(reply, addr)
            return
        cookie = self.cookies.verify(data, who, now)
        if cookie is None:
            return  # 2.6: "invalid or missing SID"; no state for unproven peers
        self.admission.initial_proven()
        if self.open(addr, "udp", None, cookie=cookie) is not None:
            self._receive(self.sessions[addr], data)


def _copy_config(cfg: SessionConfig, **changes) -> SessionConfig:
    c = SessionConfig.__new__(SessionConfig)
    c.__dict__.update(cfg.__dict__)
    c.__dict__.update(changes)
    c._options = None  # the options string is cached, and names the proto
    return c


class UdpListener:
    """The server's UDP socket, read straight from the event loop.

    Each time it is readable it is drained (up to ``BATCH`` datagrams) before
    the loop turns to timers and other sockets: a burst of first contacts must
    not overflow the socket's receive buffer while the loop does one datagram
    per pass. When the send buffer is full (EAGAIN), datagrams wait in a queue
    of at most ``BACKLOG`` and go out, in order, as soon as the socket is
    writable; only beyond that are they dropped, as a network would drop them.
    """

    BATCH = 64
    BACKLOG = 4096

    def __init__(self, server: Server, sock) -> None:
        self.server = server
        self.sock = sock
        self.loop = None  # type: asyncio.AbstractEventLoop | None
        self.backlog = collections.deque()  # type: collections.deque
        self.queued = self.dropped = 0
        server.udp = self

    def start(self, loop) -> None:
        """Read whenever the socket is readable."""
        self.loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        recv, server = self.sock.recvfrom, self.server
        for _ in range(self.BATCH):
            try:
                data, addr = recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error about one client: its session's timers decide
            server.datagram(addr, data)

    def sendto(self, data: bytes, addr) -> None:
        """Send one datagram now, or queue it until the socket is writable."""
        if self.backlog:
            self._queue(data, addr)
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._queue(data, addr)
        except OSError:
            pass  # e.g. ICMP-reported trouble with that client: its session's timers decide

    def _queue(self, data: bytes, addr) -> None:
        if len(self.backlog) >= self.BACKLOG:
            self.dropped += 1
            return
        if not self.backlog and self.loop is not None:
            self.loop.add_writer(self.sock.fileno(), self._writable)
        self.backlog.append((data, addr))
        self.queued += 1

    def _writable(self) -> None:
        backlog, send = self.backlog, self.sock.sendto
        while backlog:
            data, addr = backlog[0]
            try:
                send(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
            backlog.popleft()
        if self.loop is not None:
            self.loop.remove_writer(self.sock.fileno())

    def stats(self) -> dict:
        """Datagrams that waited for room in the send buffer, and those dropped."""
        return {"queued": self.queued, "dropped": self.dropped}


class TcpClient(asyncio.Protocol):
    """One TCP connection: one session (at max-clients the connection is closed)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peer = None
        self.deframer = StreamDeframer()

    def connection_made(self, transport) -> None:
        self.peer = transport.get_extra_info("peername")
        self.transport = transport
        if self.server.open(self.peer, "tcp", transport) is None:
            transport.close()
            return
        self.server.pump(self.peer)  # arms its hand-window timer, even if the peer never sends a byte

    def data_received(self, data: bytes) -> None:
        server, peer = self.server, self.peer
        if peer not in server.sessions:
            return
        try:
            packets = self.deframer.feed(data)
        except RemoteProtocolError as exc:
            server.close(peer, "bad TCP framing: %s" % exc)
            return
        for packet in packets:
            server.receive(peer, packet)

    def connection_lost(self, exc) -> None:
        if self.peer in self.server.sessions and self.server.sessions[self.peer].target is self.transport:
            self.server.close(self.peer, "client closed the TCP connection" if exc is None else str(exc))


def serve_serial(server: Server, link, loop) -> None:
    """A device on a serial line: one more session source, packets as over UDP
    (one per frame, a line may lose them), opened by the device's hard reset."""
    peer = "serial:" + link.url

    def on_packet(data: bytes) -> None:
        try:
            opcode, key_id = opcode_key_id(data)
        except RemoteProtocolError:
            return
        p = server.sessions.get(peer)
        if opcode in CLIENT_RESETS and key_id == 0:
            remote = p.session.remote_session_id if p is not None else None
            if p is None or remote is not None and remote != data[1:9]:
                server.open(peer, "serial", link.send)
        server.receive(peer, data)

    def on_error(exc: Exception) -> None:
        server.emit({"event": "serial_error", "peer": peer, "reason": str(exc)})
        server.close(peer, "serial line failed: %s" % exc)

    def on_line(record: dict) -> None:
        # the device's console (when the line is its REPL port): its own events
        server.emit({"event": "device", "peer": peer, "record": record})

    link.start(lambda d: loop.call_soon_threadsafe(on_packet, d),
               on_line=lambda t: loop.call_soon_threadsafe(on_line, t),
               on_error=lambda e: loop.call_soon_threadsafe(on_error, e))


__all__ = ("Server", "Peer", "UdpListener", "TcpClient", "serve_serial", "server_admission")
