"""TLS alert descriptions by name (RFC 5246 7.2, RFC 8446 6), for the error message of a
session that a peer's alert ended. Loaded only then: a session that works never holds
these names in a board's heap."""

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
