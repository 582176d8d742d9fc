"""A failed MicroPython TLS session in words: mbedTLS's errors and the peer's alerts by
name (RFC 5246 7.2, RFC 8446 6). Loaded only when a session fails: one that works never
holds this code or these names in a board's heap."""

from ._compat import TYPE_CHECKING
from .errors import ProtocolError, message

if TYPE_CHECKING:
    from typing import Any

_ALERTS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
    40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    109: "missing_extension", 110: "unsupported_extension", 116: "certificate_required",
}


def alert_name(description: int) -> str:
    """The alert's name (``bad_certificate``), or ``alert N`` for one without a name here."""
    return _ALERTS.get(description, "alert %d" % description)


def error_text(exc: Exception) -> str:
    """An exception's text in one line: ours through its catalog (``errors``), mbedTLS's
    ``OSError``/``ValueError`` arguments joined."""
    if isinstance(exc, ProtocolError):
        return str(exc)
    args = getattr(exc, "args", ())
    parts = [str(a).strip() for a in args if str(a).strip()]
    return "; ".join(" ".join(p.split()) for p in parts) or repr(exc)


def failure_reason(engine: "Any", exc: Exception) -> str:
    """Why ``engine``'s (an ``MbedTlsEngine``) session failed with ``exc``: the reason its
    verify callback gave, a refused certificate, the peer's alert or mbedTLS's error."""
    if engine._reason:
        return engine._reason
    if isinstance(exc, ValueError):
        return message("certificate verify failed: %s" % error_text(exc))
    if engine._alert is not None:
        return message("TLS alert from peer: %s" % alert_name(engine._alert))
    return message("TLS error: %s" % error_text(exc))
