"""The client session loop: a Session, a transport and a clock.

Used by the simulated device (`ovpnkx connect --runtime micropython`), by the
host (`--runtime cpython`) and later by the board's main.py: the runtime passes
in its entropy source, crypto backend and TLS engine class.
"""

import json

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.config import ClientConfig
from ovpnkx.errors import ProtocolError
from ovpnkx.session import Session, SessionConfig
from ovpnkx.tlswrap import control_wrap_factory

from .clock import Clock
try:
    from .transport import TcpTransport, TransportError, UdpTransport, wait_readable
except ImportError:  # no socket module (a Pico without Wi-Fi): serial transports only
    from .serial import TransportError  # type: ignore
    TcpTransport = UdpTransport = wait_readable = None  # type: ignore

if TYPE_CHECKING:
    from typing import Any

# When --pings is asked for and neither the config nor the server sets a ping
# interval, we ping every 2 s (openvpn's --keepalive 2 … in our tests).
DEFAULT_PING_MS = 2000


def session_config(cfg: ClientConfig, crypto: "Any", ask_ekm: bool, platform: str,
                   pings: int = 0, key_fingerprint: "bool | None" = None) -> SessionConfig:
    """SessionConfig from a parsed .ovpn, keeping only ciphers this runtime has.

    ``key_fingerprint``: ask for the key fingerprint on ``keys`` events (given only
    where the core's SessionConfig takes it)."""
    ciphers = [c for c in cfg.data_ciphers if crypto.supports(c)]
    if not ciphers:
        raise ProtocolError("none of data-ciphers %s is available on this runtime"
                            % ":".join(cfg.data_ciphers))
    wrap_factory = control_wrap_factory(cfg, False, crypto)  # tls-auth, tls-crypt, tls-crypt-v2 or none
    tls_auth = wrap_factory() if wrap_factory is not None else None
    ping_ms = cfg.ping * 1000 or (DEFAULT_PING_MS if pings else 0)
    kw = dict(is_server=False, p2mp=cfg.p2mp, ciphers=ciphers, auth=cfg.auth,
              tls_auth=tls_auth, ask_ekm=ask_ekm, proto=cfg.remote[2],
              username=cfg.username, password=cfg.password,
              hand_window_ms=cfg.hand_window * 1000, timeout_ms=cfg.tls_timeout * 1000,
              ping_ms=ping_ms, ping_restart_ms=cfg.ping_restart * 1000, platform=platform)
    if key_fingerprint is not None:
        try:
            ask = {"key_fingerprint": key_fingerprint}  # type: dict[str, Any]
            return SessionConfig(**kw, **ask)
        except TypeError:  # a core whose keys events always carry the fingerprint
            pass
    return SessionConfig(**kw)


def json_emitter(record: dict) -> None:
    """Print one JSON line per record."""
    print(json.dumps(record))


def text_emitter(record: dict) -> None:
    """Print one human-readable line per record."""
    kind = record.get("event")
    at = record.get("at_ms", 0) / 1000
    rest = ", ".join("%s=%s" % (k, v) for k, v in record.items() if k not in ("event", "at_ms"))
    print("[%8.3f s] %-13s %s" % (at, kind, rest))


def run_client(cfg: ClientConfig, entropy: "Any", crypto: "Any", tls_factory: "Any",
               ask_ekm: bool = False, platform: str = "unknown", pings: int = 0,
               timeout_s: int = 0, emit: "Any" = text_emitter, transport: "Any" = None,
               key_fingerprint: "bool | None" = None) -> int:
    """Connect, run until ``pings`` pings went each way (or forever if 0). Exit status.

    ``transport`` (``send``, ``receive``, ``close``, and ``wait(timeout_ms)`` or
    a ``sock`` for ``wait_readable``) replaces the UDP/TCP connection to
    ``cfg.remote``, e.g. a serial line; the loop closes it when it ends.
    """
    clock = Clock()
    host, port, proto = cfg.remote
    remote = "%s:%d" % (host, port) if transport is None else transport.name
    try:
        scfg = session_config(cfg, crypto, ask_ekm, platform, pings, key_fingerprint)
        # the session first: its id and key source come from the entropy, and a
        # failed source (EntropyError) must stop us before any socket exists
        session = Session(scfg, entropy, crypto, tls_factory, clock.now_ms())
        if transport is None:
            transport = (TcpTransport if proto == "tcp" else UdpTransport)(host, port)
    except (ProtocolError, TransportError, OSError) as exc:
        if transport is not None:
            transport.close()
        emit({"event": "result", "at_ms": clock.now_ms(), "ok": False, "reason": str(exc)})
        return 1
    wait = getattr(transport, "wait", None)
    emit({"event": "connecting", "at_ms": clock.now_ms(), "remote": remote, "proto": proto,
          "mode": "p2mp" if cfg.p2mp else "p2p", "tls_auth": cfg.tls_auth is not None,
          "tls_wrap": getattr(session.wrap, "name", None)})
    for text in cfg.warnings:
        emit({"event": "warning", "at_ms": clock.now_ms(), "reason": text})
    for text in cfg.notes:
        emit({"event": "note", "at_ms": clock.now_ms(), "reason": text})
    if cfg.host_only:
        emit({"event": "note", "at_ms": clock.now_ms(),
              "reason": "host-only directives, nothing to do here: " + ", ".join(cfg.host_only)})
    limit_ms = (timeout_s * 1000) if timeout_s else 0
    ok, reason = False, ""
    try:
        while True:
            now = clock.now_ms()
            for p in session.packets_to_send(now):
                transport.send(p)
            for ev in session.events():
                emit(ev.to_dict())
            st = session.stats
            if session.closed:
                ok = not session.close_error
                reason = session.close_reason or ""
                break
            if pings and st["pings_received"] >= pings and st["pings_sent"] >= pings:
                session.close(now, "done: %d pings decrypted, %d sent" % (st["pings_received"], st["pings_sent"]))
                continue
            if limit_ms and now >= limit_ms:
                reason = "timed out after %d s (state: %s)" % (timeout_s, _describe(session))
                break
            timer = session.get_timer()
            wait_ms = 200 if timer is None else max(0, min(200, timer - now))
            if wait is None:
                wait_readable(transport, wait_ms)
            else:
                wait(wait_ms)
            packets = transport.receive()
            now = clock.now_ms()
            for p in packets:
                session.receive(p, now)
    except TransportError as exc:
        reason = str(exc)
        ok = False
    finally:
        transport.close()
    st = session.stats
    if ok and st["decrypt_errors"]:
        ok, reason = False, "decrypt error: %d data packets failed to decrypt" % st["decrypt_errors"]
    if ok and pings and (st["pings_received"] < pings or st["pings_sent"] < pings):
        ok = False
        reason = reason or "session ended before %d pings each way" % pings
    result = {"event": "result", "at_ms": clock.now_ms(), "ok": ok, "reason": reason,
              "cipher": session.cipher, "key_derivation": "tls-ekm" if session.tls_ekm else "prf"}
    result.update(st)
    emit(result)
    return 0 if ok else 1


def _describe(session: Session) -> str:
    if session.data_ready:
        return "data channel ready, %d pings decrypted" % session.stats["pings_received"]
    if not session.channels:
        return "no key_state"
    ch = session.channels[max(session.channels)]
    from ovpnkx.keystate import STATE_NAMES
    return STATE_NAMES[ch.state.state]
