"""How a client run ends: the exit status after an attempt, and the ``result`` event.

``runner.ClientRun`` loads this module when an attempt has ended and drops it again,
so that a board's session, whose heap peaks during its TLS handshake, does not hold
this code.
"""

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.errors import message

if TYPE_CHECKING:
    from typing import Any


def conclude(run: "Any", outcome: "Any") -> "int | None":
    """The exit status of ``run`` (a ``runner.ClientRun``) after an attempt ended as
    ``outcome`` says, or None: restart."""
    kind = outcome.kind
    if kind == "stopped":
        return finish(run, True, outcome.reason or "stopped by %s" % run.stop.signal, outcome.session)
    if kind == "done":
        return finish(run, True, outcome.reason, outcome.session)
    if kind == "fatal" or kind == "timeout" or \
            not run.retry and outcome.session is not None and outcome.session.data_ready:
        return finish(run, False, outcome.reason, outcome.session)
    return None


def finish(run: "Any", ok: bool, reason: str, session: "Any") -> int:
    """Emit ``run``'s ``result`` event (with ``session``'s figures, if any); the exit status."""
    result = {"event": "result", "at_ms": run.clock.now_ms(), "ok": ok, "reason": reason}  # type: dict
    if run.stop.signal:
        result["stopped"] = run.stop.signal
    if session is not None:
        st = session.stats
        # a replayed or corrupted data packet was dropped and counted (decrypt_errors), as openvpn
        # does; it is not a failure of the session: keys that differ show as pings never decrypted
        if ok and run.pings and not run.stop.signal and (st["pings_received"] < run.pings
                                                         or st["pings_sent"] < run.pings):
            ok = False
            result["reason"] = reason or message("session ended before %d pings each way" % run.pings)
        refused = getattr(getattr(session, "link", None), "refused", 0)
        if not ok and refused and not st["packets_in"]:  # the session cannot know why nothing came back
            result["reason"] = reason + message(" (connection refused by %s: ICMP port unreachable %d times: "
                                               "nothing listening there?)" % (session.link_where[0], refused))
        result["ok"] = ok
        result["cipher"] = session.cipher
        result["key_derivation"] = "tls-ekm" if session.tls_ekm else "prf"
        result.update(st)
    result["restarts"] = run.restarts
    run.emit(result)
    return 0 if ok else 1
