"""What a ``Session`` does once it has data keys: a data packet in, and whether the primary
key is due for renegotiation.

Apart from ``ovpnkx.session`` so that a board loads this code after its first key (a
session's heap peaks in the TLS handshake and as the first data channel is made); the
session calls it only once a key exists, so a session never without one loads it.
"""

from ._compat import TYPE_CHECKING
from .datachannel import is_occ_exit, is_ping
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any


def receive_data(session: "Any", key_id: int, data: bytes, now_ms: int) -> None:
    """A data packet for key_id (which has keys): decrypted, unframed, then a ping, OCC
    EXIT or data; what fails is counted and dropped."""
    try:
        payload = session.multi.decrypt(key_id, data, now_ms)
    except RemoteProtocolError as exc:
        session.stats["decrypt_errors"] += 1
        session.log.add("decrypt_error", now_ms, reason=str(exc))
        return
    session.timers.heard(now_ms)
    framing = session.negotiated().framing
    if framing is not None:
        try:
            payload = framing.decompress(payload)
        except RemoteProtocolError as exc:
            session._drop(str(exc), now_ms)
            return
    elif len(payload) == 17 and payload[0] in (0xFA, 0xFB):  # a ping behind a stub byte?
        from .compress import unframed_reason

        reason = unframed_reason(payload)
        if reason:  # the peer frames for a stub our config lacks: every packet would be garbled
            session._fail(reason, now_ms, fatal=True)
            return
    if is_ping(payload):
        session.stats["pings_received"] += 1
        session.log.add("ping", now_ms, count=session.stats["pings_received"], key_id=key_id)
    elif is_occ_exit(payload):
        session._close("peer sent OCC EXIT", False, now_ms)
    else:
        session.log.add("data", now_ms, payload=payload)


def reneg_due(session: "Any", now_ms: int) -> "str | None":
    """Why the primary key must be renegotiated now (should_trigger_renegotiation), or None."""
    multi = session.multi
    latest = multi.latest
    if multi.primary is None or latest is None or not latest.keys_generated:
        return None
    at = session._reneg_at()
    cfg = session.config
    data = multi.data[multi.primary]
    if at is not None and now_ms >= at:
        return "reneg-sec %d" % (session._reneg_ms // 1000)
    if 0 < cfg.reneg_bytes <= data.n_bytes:
        return "reneg-bytes %d" % cfg.reneg_bytes
    if 0 < cfg.reneg_pkts <= data.n_packets:
        return "reneg-pkts %d" % cfg.reneg_pkts
    return "packet-id close to wrapping" if data.close_to_wrapping() else None
