"""The client: a connection list, a Session per attempt, a transport and a clock.

Used by the simulated device (`ovpnkx connect --runtime micropython`), by the
host (`--runtime cpython`) and by the board's main.py: the runtime passes in its
entropy source, crypto backend and TLS engine class.

It lives as openvpn 2.6's client does (init.c, forward.c, sig.c):

- The ``remote`` lines form a connection list (``ovpnkx.connlist``:
  ``remote-random``, ``connect-retry``, ``connect-retry-max``).
- One attempt is one Session on one transport. Its own timers (hand-window,
  keepalive, ping-restart) run, and so does ``server-poll-timeout``: with no
  answer from the server within it, the attempt ends.
- An attempt that ends in trouble restarts the client (openvpn's SIGUSR1). This
  covers ping-restart, TLS errors, the hand-window, a server poll timeout, a TCP
  connect refused or reset, the server's RESTART or exit notification, and a
  PUSH_REPLY we refuse. After the ``connect-retry`` pause the next remote is
  tried, the same one first after a connection that had completed.
- Some ends are final, as in openvpn: AUTH_FAILED, HALT, a failed entropy
  source, a server set up in a way our config cannot follow, connect-retry-max.
- A stop request (SIGINT or SIGTERM; KeyboardInterrupt on MicroPython) ends the
  client with status 0. On UDP (and on a serial line, whose far end may relay
  to UDP) it first tells the server it is leaving:
  - ``explicit-exit-notify n``: an EXIT control message when the server agreed
    to cc-exit, else OCC EXIT every second, for n seconds;
  - without that directive: one OCC EXIT (openvpn sends nothing then; one
    datagram frees the server's slot for this client at once).
  On TCP, closing the connection tells the server.

``pings`` N keeps ``ovpnkx connect --pings N``'s meaning: status 0 once N pings
went each way. Each remote is tried at most once then, and only until one
session gets data keys (``retry`` False); without ``pings`` the client runs
until it is stopped (``retry`` True).
"""


from ovpnkx._compat import TYPE_CHECKING, unload
from ovpnkx.errors import EntropyError, ProtocolError, message
from ovpnkx.session import Session

from . import TransportError
from .clock import Clock

if TYPE_CHECKING:
    from typing import Any

    from ovpnkx.clientconfig import ClientConfig

_TICK_MS = 200  # longest wait between looks at the stop request


class Stop:
    """A request to stop the client: set from a signal handler (``request``) or
    when a KeyboardInterrupt arrives (``interrupted``; MicroPython has no
    ``signal`` module, so its parent turns SIGTERM into SIGINT and may say which
    signal it was through ``name_source()``)."""

    def __init__(self, name_source: "Any" = None) -> None:
        self.signal = None  # type: str | None
        self._name_source = name_source

    def request(self, name: str) -> None:
        """Ask the client to stop (the first request's name is kept)."""
        if self.signal is None:
            self.signal = name

    def interrupted(self) -> None:
        """A KeyboardInterrupt arrived."""
        name = None
        if self._name_source is not None:
            try:
                name = self._name_source()
            except Exception:  # a broken pipe from the parent: the name is a nicety
                name = None
        self.request(name or "SIGINT")


class _Outcome:
    """How one attempt ended: ``kind`` done | stopped | restart | fatal | timeout."""

    def __init__(self, kind: str, reason: str, session: "Any" = None, no_pause: bool = False) -> None:
        self.kind = kind
        self.reason = reason
        self.session = session
        self.no_pause = no_pause


class ClientRun:
    """One run of the client (see the module docstring); ``run()`` gives the exit status."""

    def __init__(self, cfg: "ClientConfig", entropy: "Any", crypto: "Any", tls_factory: "Any",
                 ask_ekm: bool = False, platform: str = "unknown", pings: int = 0, timeout_s: int = 0,
                 emit: "Any" = None, transport: "Any" = None, retry: "bool | None" = None,
                 stop: "Stop | None" = None, clock: "Any" = None, sleep_ms: "Any" = None,
                 transport_factory: "Any" = None, key_fingerprint: "bool | None" = None) -> None:
        """``clock`` (``now_ms()``), ``sleep_ms(ms)`` and ``transport_factory(host, port,
        proto)`` replace the real ones (tests)."""
        self.cfg = cfg
        self.entropy = entropy
        self.crypto = crypto
        self.tls_factory = tls_factory
        self.ask_ekm = ask_ekm
        self.platform = platform
        self.pings = pings
        if emit is None:  # the command-line default; a board gives its own
            from .emitters import text_emitter as emit
        self.emit = emit
        self.given = transport  # a transport we are handed (a serial line): kept across attempts
        self.retry = (pings == 0) if retry is None else retry
        self.stop = stop or Stop()
        self.clock = clock or Clock()
        self.sleep_ms = sleep_ms  # None: time's (restart.py sleeps)
        self.transport_factory = transport_factory or _open_transport
        self.key_fingerprint = key_fingerprint
        self.timeout_ms = timeout_s * 1000
        self.timeout_s = timeout_s
        self.restarts = 0
        self._warned = False

    # -- the whole run -------------------------------------------------------
    def run(self) -> int:
        """Connect, restart as openvpn does, stop when asked or done. Exit status."""
        cfg = self.cfg
        try:
            # a config this runtime cannot follow ends the first attempt before its transport opens
            remotes = list(cfg.remotes) if self.given is None else [(self.given.name, 0, "serial")]
            if self.retry or len(remotes) > 1 or cfg.remote_random:
                # the connection list and its restarts, loaded where they can happen (board heap)
                from .restart import restart_loop

                return restart_loop(self, remotes)
            outcome = self.attempt(remotes[0], None)
            status = self.conclude(outcome)
            return self.finish(False, outcome.reason, outcome.session) if status is None else status
        finally:
            if self.given is not None:
                self.given.close()

    def attempt(self, entry: tuple, clist: "Any") -> "_Outcome":
        """One attempt on ``entry`` (a KeyboardInterrupt between its guards is a stop)."""
        try:
            return self._attempt(entry, clist)
        except KeyboardInterrupt:
            self.stop.interrupted()
            return _Outcome("stopped", "", None)

    def conclude(self, outcome: "_Outcome") -> "int | None":
        """The exit status after an attempt ended this way, or None: restart."""
        from .result import conclude  # an attempt's end: code loaded then, off a board's heap in a session

        try:
            return conclude(self, outcome)
        finally:
            unload("ovpnkx_device.result")

    def timed_out(self, now: int) -> bool:
        """True once the overall ``timeout_s`` has passed."""
        return bool(self.timeout_ms) and now >= self.timeout_ms

    # -- one attempt ---------------------------------------------------------
    def _attempt(self, entry: tuple, clist: "Any") -> _Outcome:
        cfg = self.cfg
        host, port, proto = entry
        now = self.clock.now_ms()
        try:
            # over a serial line the host side relays to the config's own proto
            # made afresh for each attempt, by code that leaves the heap again (a board's)
            from .session_options import session_config

            try:
                scfg = session_config(cfg, self.crypto, self.ask_ekm, self.platform, self.pings,
                                      cfg.remote[2] if proto == "serial" else proto, self.key_fingerprint)
            finally:
                del session_config
                unload("ovpnkx_device.session_options")
                unload("wrapconfig")  # its static-key parsing is done; tlswrap stays
            # the session first: its id and key source come from the entropy, and a
            # failed source (EntropyError) must stop us before any socket exists
            session = Session(scfg, self.entropy, self.crypto, self.tls_factory, now)
        except (ProtocolError, EntropyError) as exc:
            return _Outcome("fatal", str(exc))
        where = _name(entry)
        self.emit({"event": "connecting", "at_ms": now, "remote": where, "proto": proto,
                   "mode": "p2mp" if cfg.p2mp else "p2p", "tls_auth": cfg.tls_auth is not None,
                   "tls_wrap": getattr(session.wrap, "name", None)})
        if not self._warned:  # the config's warnings, once, with the first "connecting"
            self._warned = True
            for kind, texts in (("warning", cfg.warnings), ("note", cfg.notes)):
                for text in texts:
                    self.emit({"event": kind, "at_ms": now, "reason": text})
            if cfg.host_only:
                self.emit({"event": "note", "at_ms": now,
                           "reason": "host-only directives, nothing to do here: " + ", ".join(cfg.host_only)})
        transport = self.given
        try:
            if transport is None:
                transport = self.transport_factory(host, port, proto)
        except (TransportError, OSError) as exc:  # a TCP connect refused: openvpn's "connection-failed" restart
            return _Outcome("restart", str(exc) if isinstance(exc, TransportError) else
                            "cannot connect to %s: %s" % (where, exc), session)
        session.link, session.link_where = transport, (where, proto)
        try:
            return self._drive(session, transport, proto, clist, now, where)
        finally:
            if transport is not self.given:
                transport.close()

    def _drive(self, session: Session, transport: "Any", proto: str, clist: "Any",
               start: int, where: str) -> _Outcome:
        cfg = self.cfg
        pings = self.pings
        poll_s = cfg.server_poll_timeout
        poll_at = start + poll_s * 1000 if poll_s else None
        wait = getattr(transport, "wait", None)
        if wait is None:  # a socket: loaded only here (a serial-only board has no socket module)
            from .transport import input_waiter

            wait = input_waiter(transport.sock)
        exiting = None  # type: Any  # the ExitNotification, once a stop arrived
        connected = False
        no_pause = False
        while True:
            try:
                now = self.clock.now_ms()
                if self.stop.signal and exiting is None:
                    from .exitnotify import ExitNotification  # loaded when a stop arrives

                    exiting = ExitNotification(session, proto, cfg.explicit_exit_notify, self.emit)
                    exiting.start(now, self.stop.signal)
                if exiting is not None:
                    exiting.tick(now)
                for p in session.packets_to_send(now):
                    transport.send(p)
                for ev in session.events():
                    self.emit(ev.to_dict())
                _report_warnings(transport, self.emit, now)
                if session.data_ready and not connected:
                    connected = True
                    if clist is not None:
                        clist.connected()  # openvpn's "Initialization Sequence Completed"
                if session.closed:
                    reason = session.close_reason or ""
                    if self.stop.signal:
                        return _Outcome("stopped", reason, session)
                    if reason.startswith("done: "):
                        return _Outcome("done", reason, session)
                    return _Outcome("fatal" if session.close_fatal else "restart", reason, session, no_pause)
                st = session.stats
                if pings and st["pings_received"] >= pings and st["pings_sent"] >= pings:
                    session.close(now, message("done: %d pings decrypted, %d sent"
                                               % (st["pings_received"], st["pings_sent"])))
                    continue
                if self.timed_out(now):
                    from ovpnkx.hints import state_text  # loaded only when it is needed

                    return _Outcome("timeout", message("timed out after %d s (state: %s)"
                                                       % (self.timeout_s, state_text(session))), session)
                if poll_at is not None and session.remote_session_id is None and now >= poll_at:
                    # no answer at all (openvpn's "Server poll timeout, restarting"): next remote, no pause
                    no_pause = True
                    session.close(now, message("server poll timeout: no answer from %s within %d s" % (where, poll_s)),
                                  error=True, notify=False)
                    continue
                # no allocation per turn: on a board, garbage between the handshake's buffers fragments the heap
                wait_ms = _until(_TICK_MS, now, session.get_timer())
                if exiting is not None:
                    wait_ms = _until(wait_ms, now, exiting.next_ms())
                if session.remote_session_id is None:
                    wait_ms = _until(wait_ms, now, poll_at)
                if self.timeout_ms:
                    wait_ms = _until(wait_ms, now, self.timeout_ms)
                wait(wait_ms)
                packets = transport.receive()
                now = self.clock.now_ms()
                _report_warnings(transport, self.emit, now)
                while packets:  # each packet let go once read, not the whole batch to the next turn
                    session.receive(packets.pop(0), now)
            except TransportError as exc:
                session.close(self.clock.now_ms(), str(exc), error=True, notify=False)
                for ev in session.events():
                    self.emit(ev.to_dict())
                if exiting is not None:
                    return _Outcome("stopped", exiting.reason(), session)
                return _Outcome("restart", str(exc), session)
            except KeyboardInterrupt:
                if exiting is not None:  # a second interrupt: cut the notification short
                    session.close(self.clock.now_ms(), exiting.reason(), notify=False)
                    return _Outcome("stopped", exiting.reason() + " (exit notification cut short)", session)
                self.stop.interrupted()

    # -- the end ---------------------------------------------------------------
    def finish(self, ok: bool, reason: str, session: "Session | None") -> int:
        """Emit the run's ``result`` event; the exit status."""
        from .result import finish

        try:
            return finish(self, ok, reason, session)
        finally:
            unload("ovpnkx_device.result")


def run_client(cfg: "ClientConfig", entropy: "Any", crypto: "Any", tls_factory: "Any",
               ask_ekm: bool = False, platform: str = "unknown", pings: int = 0,
               timeout_s: int = 0, emit: "Any" = None, transport: "Any" = None,
               retry: "bool | None" = None, stop: "Stop | None" = None,
               key_fingerprint: "bool | None" = None) -> int:
    """Run the client (see the module docstring); the exit status.

    ``transport`` (``send``, ``receive``, ``close``, ``name``, and ``wait(timeout_ms)``
    or a ``sock`` for ``transport.input_waiter``) replaces the UDP/TCP connections to the
    config's remotes, e.g. a serial line; it is closed when the run ends.
    ``retry`` (default: ``pings == 0``) restarts as openvpn does; without it each
    remote is tried once. ``stop`` carries a stop request from a signal handler.
    """
    return ClientRun(cfg, entropy, crypto, tls_factory, ask_ekm, platform, pings, timeout_s, emit,
                     transport, retry, stop, key_fingerprint=key_fingerprint).run()


def _until(wait_ms: int, now: int, at: "int | None") -> int:
    """``wait_ms``, shortened so as to wake up at ``at`` (None: no deadline)."""
    return wait_ms if at is None or at - now >= wait_ms else max(0, at - now)


def _open_transport(host: str, port: int, proto: str) -> "Any":
    # the socket transports are loaded for UDP/TCP only: a serial session keeps their code off the heap
    from .transport import TcpTransport, UdpTransport

    return (TcpTransport if proto == "tcp" else UdpTransport)(host, port)


def _name(entry: tuple) -> str:
    host, port, proto = entry
    return host if proto == "serial" else "%s:%d" % (host, port)


def _report_warnings(transport: "Any", emit: "Any", now: int) -> None:
    """The transport's passing troubles (e.g. an ICMP port unreachable) as warning events."""
    notes = getattr(transport, "warnings", None)
    while notes:
        emit({"event": "warning", "at_ms": now, "reason": notes.pop(0)})
