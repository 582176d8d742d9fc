"""A client ``MbedTlsEngine``'s check of the server's certificate, before mbedTLS reads it.

The engine hands each record of the server's first flight here until the Certificate
message has passed: the config's checks (``certinfo``), then the chain up to our CA at
the device's date (``x509verify``), one after the other: this module runs the first,
reads the chain (``x509cert``) and leaves it to the engine, which loads ``x509verify``
only after this code has left the heap. Apart from the engine so that a board's session
holds this code only during that check (``tls_mbedtls`` says why the client verifies the
chain itself).
"""

from ._compat import TYPE_CHECKING, collect, const, unload
from .der import handshake_messages
from .errors import RemoteProtocolError, message

if TYPE_CHECKING:
    from typing import Any

_CT_CCS = const(20)
_CT_ALERT = const(21)
_CT_HANDSHAKE = const(22)
_HT_SERVER_HELLO = const(2)
_HT_CERTIFICATE = const(11)
_EARLIEST = const(1735689600)  # 2025-01-01: an earlier clock is a reset RTC, not a date


def check_server_certificate(engine: "Any", ctype: int, rec: bytes) -> None:
    """Client: verify the server's certificate before the real session reads it (sets
    ``engine._leaf`` once it passed; raises RemoteProtocolError through ``engine._fail``)."""
    if ctype != _CT_HANDSHAKE or _CT_CCS in engine._in_types:
        if ctype != _CT_ALERT:
            engine._fail(message("TLS server sent %s before its certificate" % ctype))
        return
    engine._hs.extend(memoryview(rec)[5:])
    for htype, msg in handshake_messages(engine._hs):
        if htype == _HT_SERVER_HELLO:
            engine._server_hello = msg
        elif htype == _HT_CERTIFICATE:
            if engine._server_hello is None:
                engine._fail(message("TLS server sent its certificate before ServerHello"))
            engine._leaf = _verify_server(engine, msg)
            engine._hs = bytearray()
            return


def _verify_server(engine: "Any", msg: bytes) -> bytes:
    """Client: the config's checks of the server's certificate (CA-less: the fingerprint
    alone). Returns the leaf's DER. With a CA, the chain up to it at the device's date is
    read and left in ``engine._chain`` (chain, CAs, date, verdict key) for ``x509verify``.

    ``certinfo`` (the config's checks) is loaded for this one check and dropped after it
    with the policy, as this module is by the engine before ``x509verify`` comes (on a board
    their code would otherwise sit in the heap through the handshake's peak and the whole
    session; a renegotiation's engine loads neither for the chain that passed last: its
    verdict is kept in the session's shared context, ``MbedTlsEngine``'s ``context``)."""
    try:
        return _verify_server_chain(engine, msg)
    finally:
        engine._peer = None  # nothing checks a certificate after this
        unload("certinfo")
        unload("der")
        collect()  # their code goes before x509verify's and mbedTLS's peak (ECDHE, signature)


def _verify_server_chain(engine: "Any", msg: bytes) -> bytes:
    from .der import chain_from_message

    try:
        chain = chain_from_message(msg)
        if not chain:
            raise RemoteProtocolError("certificate verify failed: the server sent no certificate")
    except RemoteProtocolError as exc:
        engine._fail("server certificate: %s" % exc)
    key = _chain_key(engine._ca, msg)
    last = engine._verified  # the session's last chain that passed: [key, valid from, valid until, subject]
    if last and last[0] == key and (not engine._ca or last[1] <= _date(engine) <= last[2]):
        # the same chain passed every check against the same config at an earlier handshake and is
        # valid now: the same verdict (crl-verify, which could change it, is refused)
        engine._peer = None
        engine.peer_subject = last[3]
        engine._peer_ok = True
        return chain[0]
    try:
        engine.peer_subject = _common_name(chain[0])
    except RemoteProtocolError as exc:
        engine._fail("server certificate: %s" % exc)
    peer, engine._peer = engine._peer, None  # with it, certinfo's code leaves before x509verify's comes
    if callable(peer):  # a policy made only now (``MbedTlsEngine``'s ``peer``)
        peer = peer()
    reason = peer.check(chain[0])  # first: cheap, and it names what the config asked for
    peer = None
    unload("certinfo")
    if reason:
        engine._fail(reason)
    if engine._ca:
        # the chain up to our CA: its certificates and our CAs read here (x509cert), checked by
        # the engine (x509verify) once this module's code has left the heap, still before mbedTLS
        # reads the certificate (tls_mbedtls)
        now = _date(engine)
        collect()
        from .x509cert import parse

        try:
            engine._chain = ([parse(c) for c in chain], [parse(c) for c in engine._ca], now, key)
        except RemoteProtocolError as exc:
            engine._fail(str(exc))
        finally:
            del parse
            unload("x509cert")
        return chain[0]
    last[:] = [key, 0, 0, engine.peer_subject]  # CA-less: no validity to keep
    engine._peer_ok = True
    return chain[0]


def _date(engine: "Any") -> int:
    """The device's date (Unix seconds) to check a chain's validity at; none fails the handshake."""
    now = engine._now() if engine._now is not None else _utc_now()  # type: Any  # None: no date
    if now is None or now < _EARLIEST:
        engine._fail(message("certificate verify failed: the device has no date (its clock reads %s), so the "
                             "server certificate's validity cannot be checked" % _date_text(now)))
    return int(now)


def _chain_key(trusted: list, msg: bytes) -> bytes:
    """What a chain's verdict depends on, besides the date: our CA certificates and the
    server's Certificate message, each with its length (SHA-256)."""
    import hashlib

    h = hashlib.sha256()
    for part in list(trusted) + [msg]:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def _common_name(der: bytes) -> "str | None":
    from .certinfo import CertInfo  # not kept in a local of the caller: certinfo leaves after the checks

    return CertInfo(der).common_name


def _date_text(secs: "int | None") -> str:
    if secs is None:
        return "nothing"
    import time

    t = time.gmtime(secs)
    return "%04d-%02d-%02d" % (t[0], t[1], t[2])


def _utc_now() -> "int | None":
    """The device's date as Unix seconds, from ``time.gmtime()`` (whatever the port's
    epoch); None where there is none."""
    import time

    from .der import utc_seconds

    try:
        t = time.gmtime()
    except (AttributeError, OSError):
        return None
    return utc_seconds(t[0], t[1], t[2], t[3], t[4], t[5])
