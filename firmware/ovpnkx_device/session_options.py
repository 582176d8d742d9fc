"""The SessionConfig of one client attempt, from the parsed .ovpn (``ovpnkx_device.runner``
loads this module for each attempt and drops it again: a board's heap holds it only then).
"""

import sys

from ovpnkx._compat import MICROPYTHON, TYPE_CHECKING, unload
from ovpnkx.errors import ProtocolError
from ovpnkx.session import SessionConfig
from ovpnkx.wrapconfig import control_wrap_factory

if TYPE_CHECKING:
    from typing import Any

    from ovpnkx.clientconfig import ClientConfig

# When --pings is asked for and neither the config nor the server sets a ping
# interval, we ping every 2 s (openvpn's --keepalive 2 … in our tests).
DEFAULT_PING_MS = 2000


def session_config(cfg: "ClientConfig", crypto: "Any", ask_ekm: bool, platform: str,
                   pings: int = 0, proto: "str | None" = None,
                   key_fingerprint: "bool | None" = None) -> SessionConfig:
    """SessionConfig from a parsed .ovpn, keeping only ciphers this runtime has.

    Made afresh for each attempt (``proto``: the remote's): the tls-auth replay
    state belongs to one session. ProtocolError names what cannot be used.
    ``key_fingerprint``: ask for the key fingerprint on ``keys`` events (agreement checks).
    """
    ciphers = [c for c in cfg.data_ciphers if crypto.supports(c)]
    if not ciphers:
        raise ProtocolError("none of data-ciphers %s is available on this runtime"
                            % ":".join(cfg.data_ciphers))
    from ovpnkx.lifetime import key_lifetime_options

    lifetime = key_lifetime_options(cfg)  # reneg-*, tran-window, replay-window where the config has them
    unload("lifetime")
    wrap_factory = control_wrap_factory(cfg, False, crypto)  # tls-auth, tls-crypt, tls-crypt-v2 or none
    tls_auth = wrap_factory() if wrap_factory is not None else None
    ping_ms = cfg.ping * 1000 or (DEFAULT_PING_MS if pings else 0)
    return SessionConfig(is_server=False, p2mp=cfg.p2mp, ciphers=ciphers, auth=cfg.auth,
                         tls_auth=tls_auth, ask_ekm=ask_ekm, proto=proto or cfg.remote[2],
                         username=cfg.username, password=cfg.password,
                         hand_window_ms=cfg.hand_window * 1000, timeout_ms=cfg.tls_timeout * 1000,
                         ping_ms=ping_ms, ping_restart_ms=cfg.ping_restart * 1000, platform=platform,
                         compression=_framing(cfg), key_fingerprint=bool(key_fingerprint), cipher=cfg.cipher,
                         release_superseded_tls=_superseded_tls_release() if MICROPYTHON else "",
                         **lifetime)


def _superseded_tls_release() -> str:
    """When a board frees the current key's TLS engine in a renegotiation (its heap holds one
    TLS session; ``SessionConfig.release_superseded_tls``): where mbedTLS allocates from the
    GC heap (rp2) when the new handshake starts, so that the new engine's 16 KB buffer takes
    the old one's place; elsewhere (the ESP32: the IDF heap) at the soft reset, so that the
    new key_state's reseed has the engine's share of the GC heap."""
    try:
        import simboard  # type: ignore[import-not-found,unused-ignore]  # the sim only

        in_gc_heap = simboard.mbedtls_in_gc_heap()
    except ImportError:
        in_gc_heap = sys.platform == "rp2"
    return "tls_start" if in_gc_heap else "soft_reset"


def _framing(cfg: "ClientConfig") -> "Any":
    """The configured compression stub, or None (``ovpnkx.compress`` loaded only for one)."""
    if cfg.comp_lzo is None and cfg.compress is None:
        return None
    from ovpnkx.compress import from_config

    return from_config(cfg.comp_lzo, cfg.compress)
