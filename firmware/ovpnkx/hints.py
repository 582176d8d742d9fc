"""The hints after a failed handshake: the cause that what was seen points to.

Part of ``ovpnkx.events``' wording, in a module of its own because it is needed
only when a session fails: the session imports it then, so that a board's heap
does not hold these words for a session that works.
"""

from . import keystate as ks
from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


_WRAP_HINTS = {
    "tls-auth": "check the tls-auth key and key-direction",
    "tls-crypt": "check the tls-crypt key",
    "tls-crypt-v2": "check the tls-crypt-v2 key (a client key must be made from the server's key)",
}


def hand_window_reason(hand_window_ms: int, channel: "Any", is_server: bool, p2mp: bool,
                       wrap: "str | None", heard_peer: bool, last_drop: "str | None",
                       packets_in: int = 0, wrap_failures: int = 0, link: "dict | None" = None) -> str:
    """Why the hand-window passed, with the cause that what was seen points to.

    ``channel`` is the key_state that ran out of time (None: none was ever opened),
    ``wrap`` the control-channel protection ("tls-auth", "tls-crypt", … or None),
    ``heard_peer`` whether any packet of the peer's session was accepted,
    ``packets_in`` how many packets arrived at all and ``wrap_failures`` how many of
    them the protection refused; ``link`` the transport's counters ("where",
    "bytes_in", "frame_errors" by kind, "refused": ICMP port unreachables).
    """
    why = "TLS key negotiation failed to occur within %d seconds" % (hand_window_ms // 1000)
    link = link or {}
    where = ""
    if link.get("where"):
        where = (" on %s" if link.get("kind") == "serial" else " from %s") % link["where"]
    damaged = _frame_errors(link)
    if channel is None or channel.state.state <= ks.S_PRE_START:
        hints = ["no answer from the peer"]
        if packets_in == 0:
            hints.append(_silence(link, where, wrap, damaged))
        elif wrap and not heard_peer and wrap_failures:
            hints.append("nothing authenticated ever arrived: %d of %d packets failed %s authentication; %s"
                         % (wrap_failures, packets_in, wrap, _wrap_hint(wrap)))
    elif channel.peer_km2 is None:
        if damaged:
            hints = ["the handshake stalled while frames were damaged%s (%s): the line is noisy, or its baud rate "
                     "is too high for it" % (where, damaged)]
        else:
            # TLS started, then silence: OpenVPN ends a handshake it refuses without an alert
            hints = ["the peer went silent during the TLS handshake; it probably refused our certificate"
                     " as expired, revoked or not signed by its CA, and its log says why"]
    elif not is_server and p2mp:
        hints = ["no PUSH_REPLY from the server"]
    else:
        hints = []
    if last_drop:
        hints.append("last dropped packet: %s" % last_drop)
    return why + (" (%s)" % "; ".join(hints) if hints else "")


def state_text(session: "Any") -> str:
    """Where a session stands, for a time-out message."""
    if session.data_ready:
        return "data channel ready, %d pings decrypted" % session.stats["pings_received"]
    if not session.channels:
        return "no key_state"
    return ks.STATE_NAMES[session.channels[max(session.channels)].state.state]


def link_counters(transport: "Any", where: tuple) -> dict:
    """What a transport counted, for the hints: ``where`` = (name, kind "udp"|"tcp"|"serial");
    any of ``bytes_in``, ``refused`` (ICMP port unreachables), ``decoder.errors``."""
    status = {"where": where[0], "kind": where[1]}  # type: dict
    for key in ("bytes_in", "refused"):
        value = getattr(transport, key, None)
        if isinstance(value, int):
            status[key] = value
    errors = getattr(getattr(transport, "decoder", None), "errors", None)
    if isinstance(errors, dict):
        status["frame_errors"] = dict(errors)
    return status


def _silence(link: dict, where: str, wrap: "str | None", damaged: str) -> str:
    """Why not one packet arrived, from what the transport saw."""
    if damaged:
        return ("%d bytes arrived%s but no frame was intact (%s): the line is noisy, or the two ends differ in "
                "baud rate or framing" % (link.get("bytes_in", 0), where, damaged))
    if link.get("refused"):
        return ("ICMP port unreachable came back %d times: nothing listens at %s (check the server, its port and "
                "proto)" % (link["refused"], link.get("where")))
    if link.get("bytes_in"):
        return ("%d bytes arrived%s but not one frame: the other end does not speak this framing (a console on "
                "that port?)" % (link["bytes_in"], where))
    if link.get("kind") == "serial":
        hint = ("no byte ever arrived%s: is the other end (ovpnkx serve --serial or ovpnkx relay) running, with "
                "TX and RX crossed and the same baud rate?" % where)
    else:
        hint = "no packet ever arrived%s: is the server up, and are its address, port and proto right?" % where
    if wrap:
        # OpenVPN drops packets that fail tls-auth or tls-crypt without a word: silence too
        hint += ("; nothing authenticated ever arrived either: %s (a server drops what fails %s without a word)"
                 % (_wrap_hint(wrap), wrap))
    return hint


def _wrap_hint(wrap: str) -> str:
    return _WRAP_HINTS.get(wrap, "check the %s key" % wrap)


def _frame_errors(link: dict) -> str:
    """"crc=6, cobs=1" for the frame errors a serial transport counted, "" for none."""
    errors = link.get("frame_errors") or {}
    return ", ".join("%s=%d" % (k, errors[k]) for k in sorted(errors) if errors[k])


# what a TLS alert from the peer most likely means, by words of its name
_ALERT_HINTS = (
    ("expired", "the peer refused our certificate as expired (or its clock is wrong)"),
    ("revoked", "the peer refused our certificate as revoked"),
    ("unknown ca", "the peer does not trust the CA that signed our certificate"),
    ("certificate required", "the peer wants a client certificate"),
    ("certificate", "the peer refused our certificate"),
    ("protocol version", "no TLS version in common (tls-version-min / tls-version-max)"),
    ("handshake failure", "no TLS version, cipher suite or group in common (tls-cipher, tls-groups)"),
    ("insufficient security", "no TLS cipher suite strong enough for the peer (tls-cipher)"),
    ("decrypt error", "a TLS signature or record did not verify: a damaged record or a key that does not "
                      "match its certificate"),
    ("bad record mac", "a TLS record was damaged on the way"),
    ("access denied", "the peer refused us by policy"),
)


def tls_error_reason(text: str) -> str:
    """``text`` (an error of the TLS layer or above) with a hint when it reports a
    TLS alert that the peer sent: the alert names the cause on the peer's side."""
    low = text.lower().replace("_", " ")
    if "alert" not in low or "close notify" in low:
        return text
    for words, hint in _ALERT_HINTS:
        if words in low:
            return "%s (the peer ended the TLS handshake with this alert: %s)" % (text, hint)
    return "%s (the peer ended the TLS handshake with this alert; its log says why)" % text
