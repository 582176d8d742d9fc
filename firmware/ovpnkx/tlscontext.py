"""The mbedTLS context of one ``MbedTlsEngine``: its certificate and key as DER, the
CA, the config's checks of the peer and the TLS limits, refused with a clear error
where mbedTLS or this build cannot honour them, and a server's check of each client
certificate. Loaded while an engine is made and dropped after it, so that a board's
(client) session does not hold this code; a server's verify callback keeps it.
"""

from ._compat import TYPE_CHECKING, const
from .certinfo import CertInfo, PeerPolicy, pem_blocks
from .errors import LocalProtocolError, RemoteProtocolError
from .tls_mbedtls import _raise_if_enomem

if TYPE_CHECKING:
    from typing import Any

_ERR_REJECTED = const(-0x3000)  # MBEDTLS_ERR_X509_FATAL_ERROR: our verify callback said no


def make_context(tls: "Any", is_server: bool, ca_pem: "bytes | None", cert_pem: bytes, key_pem: bytes,
                 peer: PeerPolicy, tls_version_min: "str | None", tls_version_max: "str | None",
                 tls_cipher: "str | None", engine: "Any") -> tuple:
    """(``tls.SSLContext``, the CA certificates as DER, ``peer``, the config's checks) for
    ``engine`` (an ``MbedTlsEngine``; a server's verify callback reports to it)."""
    if ca_pem is None and not peer.fingerprints:
        raise LocalProtocolError("no CA: a peer can only be verified by peer-fingerprint then")
    if tls_version_min not in (None, "1.0", "1.1", "1.2") or tls_version_max in ("1.0", "1.1"):
        raise LocalProtocolError("MicroPython's tls offers TLS 1.2 only, not tls-version-min %s / max %s"
                                 % (tls_version_min, tls_version_max))
    ca = [] if ca_pem is None else pem_blocks(ca_pem, "CERTIFICATE")
    chain = pem_blocks(cert_pem, "CERTIFICATE")
    if len(chain) != 1:
        raise LocalProtocolError("MbedTlsEngine takes one certificate (no intermediate chain)")
    key = pem_blocks(key_pem)[0]
    try:
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER if is_server else tls.PROTOCOL_TLS_CLIENT)
        ctx.load_cert_chain(chain[0], key)
        if is_server:
            for der in ca:
                ctx.load_verify_locations(der)
    except (ValueError, OSError) as exc:
        _raise_if_enomem(exc)  # the heap, not the certificate
        raise LocalProtocolError("certificate or key not accepted by mbedTLS: %s" % _text(exc))
    if not is_server:
        # a client checks the server's chain itself (x509verify) and runs mbedTLS at CERT_NONE,
        # which never reads a CA: its parsed copy would only take heap. A CA that cannot be
        # read is refused now all the same, not at the handshake.
        for der in ca:
            try:
                CertInfo(der)
            except (LocalProtocolError, RemoteProtocolError) as exc:
                raise LocalProtocolError("CA certificate not readable: %s" % exc)
    if tls_cipher:
        try:
            ctx.set_ciphers([c for c in tls_cipher.split(":") if c])  # type: ignore[attr-defined, unused-ignore]
        except (ValueError, OSError) as exc:
            raise LocalProtocolError("mbedTLS refuses tls-cipher %r: %s" % (tls_cipher, _text(exc)))
    # the client verifies the server's chain itself (see tls_mbedtls); CA-less: the fingerprint
    # (the port stubs lack verify_mode / verify_callback)
    if is_server:
        ctx.verify_mode = tls.CERT_REQUIRED if ca else tls.CERT_OPTIONAL  # type: ignore[attr-defined, unused-ignore]
        ctx.verify_callback = _server_verify(engine)  # type: ignore[attr-defined, unused-ignore]
    else:
        ctx.verify_mode = tls.CERT_NONE  # type: ignore[attr-defined, unused-ignore]
    return ctx, ca, peer


def _server_verify(engine: "Any") -> "Any":
    """Server: mbedTLS's verify callback, called for each certificate of the client's chain;
    it runs the config's checks of the client's own certificate and must not raise."""

    def verify(cert: memoryview, depth: int) -> int:
        if depth != 0:
            return 0
        try:
            der = bytes(cert)
            engine.peer_subject = CertInfo(der).common_name
            engine._reason = engine._peer.check(der)
            engine._peer_ok = not engine._reason
            return _ERR_REJECTED if engine._reason else 0
        except Exception as exc:  # noqa: BLE001 - an exception must not unwind through mbedTLS
            engine._reason = "certificate verify failed: %s" % _text(exc)
            return _ERR_REJECTED

    return verify


def _text(exc: Exception) -> str:
    from .tlsalert import error_text  # loaded only when something failed

    return error_text(exc)
