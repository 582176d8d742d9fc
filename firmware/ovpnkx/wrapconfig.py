"""Which control-packet wrapper a config asks for (tls-auth, tls-crypt, tls-crypt-v2 or
none), and its static key file.

Apart from ``tlswrap`` so that a board holds this code only while it sets up an
attempt (``ovpnkx_device.session_options``), not through the session: the runner
unloads it, and nothing made here refers back to it.
"""

from ._compat import TYPE_CHECKING, const, partial
from .errors import LocalProtocolError
from .tlswrap import DEFAULT_SEQ_BACKTRACK, DEFAULT_TIME_BACKTRACK, TlsAuth

if TYPE_CHECKING:
    from typing import Any

_KEY_LEN = const(256)
_HEADER = "-----BEGIN OpenVPN Static key V1-----"
_FOOTER = "-----END OpenVPN Static key V1-----"


def parse_static_key(text: str) -> bytes:
    """Parse an OpenVPN static key file (``openvpn --genkey secret``) to its 256 bytes.

    Lines outside the BEGIN/END markers (the ``#`` comments) are ignored. Raises
    ``LocalProtocolError`` naming what is wrong: it is configuration, not peer input.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise LocalProtocolError("static key: not text")
    lines = [ln.strip() for ln in text.split("\n")]
    if _HEADER not in lines:
        raise LocalProtocolError("static key: missing '%s' line" % _HEADER)
    start = lines.index(_HEADER) + 1
    if _FOOTER not in lines[start:]:
        raise LocalProtocolError("static key: missing '%s' line" % _FOOTER)
    end = lines.index(_FOOTER, start)
    hexstr = "".join("".join(ln.split()) for ln in lines[start:end])
    if len(hexstr) != 2 * _KEY_LEN:
        raise LocalProtocolError("static key: %d hex digits, expected %d" % (len(hexstr), 2 * _KEY_LEN))
    try:
        key = bytes.fromhex(hexstr)
    except ValueError:
        raise LocalProtocolError("static key: invalid hex digits")
    return key


def replay_window_of(cfg: "Any") -> tuple:
    """(packets, seconds) of ``cfg.replay_window`` (``n`` or ``(n, t)``), where the config has it."""
    value = getattr(cfg, "replay_window", None)
    if isinstance(value, (tuple, list)):
        return value[0], (value[1] if len(value) > 1 and value[1] is not None else DEFAULT_TIME_BACKTRACK)
    return (DEFAULT_SEQ_BACKTRACK if value is None else value), DEFAULT_TIME_BACKTRACK


def control_wrap_factory(cfg: "Any", is_server: bool, crypto: "Any") -> "Any":
    """A function making a fresh control-packet wrapper as ``cfg`` asks, or None (no wrapping).

    ``cfg`` has ``tls_auth`` (+ ``key_direction``, ``auth``), ``tls_crypt`` or
    ``tls_crypt_v2`` (key texts, at most one of them). Keys are parsed once, here;
    every wrapper made has its own replay window. LocalProtocolError for a bad
    key or for more than one kind asked.
    """
    asked = [n for n in ("tls_auth", "tls_crypt", "tls_crypt_v2") if getattr(cfg, n, None)]
    if len(asked) > 1:
        raise LocalProtocolError("--%s are mutually exclusive" % " and --".join(n.replace("_", "-") for n in asked))
    if not asked:
        return None
    if asked[0] == "tls_auth":
        key = parse_static_key(cfg.tls_auth)
        direction, auth = cfg.key_direction, cfg.auth
        window, seconds = replay_window_of(cfg)
        TlsAuth(key, direction, auth, window, seconds)  # bad direction, digest or window: fail now
        return partial(TlsAuth, key, direction, auth, window, seconds)  # not a lambda: see _compat.partial
    from .tlscrypt import make_wrap_factory

    return make_wrap_factory(cfg, is_server, crypto, *replay_window_of(cfg))
