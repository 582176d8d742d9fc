"""What a session reports: its events, and the words it uses for failures.

The session appends ``Event`` objects to an ``EventLog``; the caller drains them
with ``Session.events()``. Reasons are written here, in one place, so that the
text a user reads is easy to find and to keep free of secrets; the longest of
them, the hints after a failed handshake, live in ``ovpnkx.hints``, which is
loaded only when a session fails (a board's heap holds the code it imports).
"""

from . import keystate as ks
from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


class Event:
    """Something that happened in a session; ``kind`` names it, fields vary.

    kinds: state (key_id, state), keys (key_id, cipher, method, peer_id, and
    fingerprint where ``SessionConfig.key_fingerprint`` asks for it), ping (count,
    key_id that decrypted it),
    data (payload), message (text, sanitized), dropped (reason),
    decrypt_error (reason), warning (reason), renegotiate (key_id of the key
    that reached its limit, reason), retired (key_id, reason), closed (reason,
    error).
    """

    def __init__(self, kind: str, at_ms: int, **fields: object) -> None:
        self.kind = kind
        self.at_ms = at_ms
        self.fields = fields

    def __getattr__(self, name: str) -> object:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name)

    def to_dict(self) -> dict:
        """A JSON-friendly dict (payload bytes as their length only)."""
        d = {"event": self.kind, "at_ms": self.at_ms}
        for k, v in self.fields.items():
            d[k] = len(v) if isinstance(v, (bytes, bytearray)) else v
        return d

    def __repr__(self) -> str:
        return "Event(%r)" % (self.to_dict(),)


class EventLog:
    """Events since the last drain, and how far each key_state's history was reported."""

    def __init__(self) -> None:
        self._events = []  # type: list
        self._reported = {}  # type: dict  # key_id -> len(history) already reported

    def add(self, kind: str, now_ms: int, **fields: object) -> None:
        """Record one event."""
        self._events.append(Event(kind, now_ms, **fields))

    def drain(self) -> list:
        """Events since the last call, oldest first."""
        out, self._events = self._events, []
        return out

    def forget(self, key_id: int) -> None:
        """A key_id reused after the wrap starts a fresh history."""
        self._reported.pop(key_id, None)

    def note_state(self, channel: "Any", now_ms: int) -> None:
        """One event per key_state transition since the last call (several may happen at once)."""
        history = channel.state.history
        seen = self._reported.get(channel.key_id, 1)  # S_INITIAL is history[0]
        for state in history[seen:]:
            self.add("state", now_ms, key_id=channel.key_id, state=ks.STATE_NAMES[state])
        self._reported[channel.key_id] = len(history)


def auth_failed_reason(text: str, sent_credentials: bool) -> str:
    """The reason for an AUTH_FAILED control message (never the credentials themselves)."""
    detail = sanitize_control_message(text)[len("AUTH_FAILED"):].lstrip(",")
    creds = "our username/password" if sent_credentials else "us (we sent no username/password)"
    return "auth failed: the server refused %s%s" % (creds, ": " + detail if detail else "")


def sanitize_control_message(text: str) -> str:
    """``text`` with the values of secret options replaced by ``[redacted]`` (for logs).

    OpenVPN's sanitize_control_message hides auth-token, echo and SESS_ID_ values;
    we also hide the token's user name, anything named like a password, a secret
    or a token, and a client's whole challenge response (CR_RESPONSE).
    """
    if text.startswith("CR_RESPONSE,"):
        return "CR_RESPONSE,[redacted]"
    out = []
    for item in text.split(","):
        name = item.split(" ", 1)[0]
        if name != item and (name in ("auth-token-user", "echo") or "SESS_ID_" in item or "pass" in name
                             or "secret" in name or "token" in name):
            item = name + " [redacted]"
        out.append(item)
    return ",".join(out)
