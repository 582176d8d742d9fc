"""TLS engine for CPython: pyOpenSSL over a memory BIO, sans-IO.

The control channel moves TLS bytes; this engine never touches a socket. It is the
CPython twin of ``ovpnkx.tls_mbedtls.MbedTlsEngine`` (same interface), and the only
one with an RFC 5705 exporter (tls-ekm).

As OpenVPN does, peers are verified against the CA only (no hostname check); the
checks of the peer's own certificate that a config adds (``peer-fingerprint``,
``remote-cert-tls`` / ``-ku`` / ``-eku``, ``verify-x509-name``) are one
``ovpnkx.certinfo.PeerPolicy``, the same on both runtimes, run from OpenSSL's verify
callback at depth 0. With fingerprints and no CA (OpenVPN 2.6's CA-less setup) chain
errors do not count; the fingerprint decides. ``tls_version_min``/``_max``,
``tls_cipher`` (OpenSSL cipher string; IANA names as OpenVPN takes them are
translated) and ``tls_ciphersuites`` (TLS 1.3) restrict the handshake.
"""

import weakref

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from ovpnkx.capability import openssl_cipher_name
from ovpnkx.certinfo import PeerPolicy
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

MAX_RECORD = 16384

_VERSIONS = {"1.0": SSL.TLS1_VERSION, "1.1": SSL.TLS1_1_VERSION, "1.2": SSL.TLS1_2_VERSION,
             "1.3": SSL.TLS1_3_VERSION}

# the X509_V_ERR_* codes a misconfigured peer produces, in OpenSSL's words
_VERIFY_ERRORS = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate (wrong CA?)",
    21: "unable to verify the first certificate",
    24: "invalid CA certificate",
    26: "unsupported certificate purpose (extended key usage)",
}


def _subject_cn(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


def translate_cipher_list(value: str) -> str:
    """An OpenVPN ``tls-cipher`` string for OpenSSL: IANA suite names become OpenSSL's."""
    return ":".join(openssl_cipher_name(t) or t for t in value.split(":"))


def cipher_list_error(directive: str, value: str) -> "str | None":
    """Why OpenSSL refuses this ``tls-cipher`` / ``tls-ciphersuites`` string, or None."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    try:
        if directive == "tls-cipher":
            ctx.set_cipher_list(translate_cipher_list(value).encode())
        else:
            ctx.set_tls13_ciphersuites(value.encode())
    except SSL.Error:
        return "OpenSSL matches no cipher suite in %r" % value
    return None


def _verify_dispatch(conn, cert, errnum, depth, ok) -> bool:
    """OpenSSL's verify callback of a shared context: the engine of ``conn`` decides."""
    engine = conn.get_app_data()()  # a weak reference: no cycle between engine and connection
    return engine is not None and engine._verify(conn, cert, errnum, depth, ok)


class OpenSslContext:
    """What every TLS session of one side shares: one SSL_CTX (CA store, own
    certificate and key, versions, ciphers, the checks of the peer), built once.

    A server holding thousands of sessions must not keep a copy of these per
    session. Sessions from one context release their record buffers while idle
    (``SSL_MODE_RELEASE_BUFFERS``). ``identity(cert_pem, key_pem)`` parses
    another certificate and key for ``engine(identity)``, e.g. one per
    simulated device of ``ovpnkx load``; ``groups`` sets the key exchange groups
    offered or accepted, in order (openvpn's ``tls-groups``).
    """

    def __init__(self, is_server: bool, ca_pem: "bytes | None", cert_pem: bytes, key_pem: bytes,
                 remote_cert_tls: "str | None" = None, peer: "PeerPolicy | None" = None,
                 tls_version_min: "str | None" = None, tls_version_max: "str | None" = None,
                 tls_cipher: "str | None" = None, tls_ciphersuites: "str | None" = None,
                 groups: "str | None" = None) -> None:
        """``peer`` (the config's checks; ``config.engine_options``) replaces ``remote_cert_tls``."""
        self.is_server = is_server
        self.peer = peer if peer is not None else PeerPolicy.remote_cert_tls(remote_cert_tls)
        if ca_pem is None and not self.peer.fingerprints:
            raise LocalProtocolError("no CA: a peer can only be verified by peer-fingerprint then")
        self.ca_less = ca_pem is None
        ctx = SSL.Context(SSL.TLS_METHOD)
        try:
            # OpenVPN 2.6's default tls-version-min is 1.2
            ctx.set_min_proto_version(_VERSIONS[tls_version_min or "1.2"])
            if tls_version_max:
                ctx.set_max_proto_version(_VERSIONS[tls_version_max])
        except KeyError:
            raise LocalProtocolError("TLS version must be one of %s" % ", ".join(_VERSIONS)) from None
        try:
            if tls_cipher:
                ctx.set_cipher_list(translate_cipher_list(tls_cipher).encode())
            if tls_ciphersuites:
                ctx.set_tls13_ciphersuites(tls_ciphersuites.encode())
        except SSL.Error:
            raise LocalProtocolError("OpenSSL matches no cipher suite in tls-cipher %r / tls-ciphersuites %r"
                                     % (tls_cipher, tls_ciphersuites)) from None
        if groups is not None:
            _set_groups(ctx, groups)
        try:
            cas = x509.load_pem_x509_certificates(bytes(ca_pem)) if ca_pem is not None else []
        except ValueError as exc:
            raise LocalProtocolError("bad PEM input: %s" % exc) from None
        chain, key = _load_identity(cert_pem, key_pem)
        store = ctx.get_cert_store()
        if store is None:
            raise LocalProtocolError("OpenSSL context without a certificate store")
        for ca in cas:
            store.add_cert(crypto.X509.from_cryptography(ca))
        ctx.use_certificate(chain[0])
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra)
        try:
            ctx.use_privatekey(key)
            ctx.check_privatekey()
        except SSL.Error:
            raise LocalProtocolError("private key does not match the certificate") from None
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_dispatch)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)  # an idle session keeps no 16 KB record buffers
        if is_server:
            # no session tickets: OpenVPN starts every key_state with a full handshake
            ctx.set_options(SSL.OP_NO_TICKET)
        self._ctx = ctx

    @staticmethod
    def identity(cert_pem: bytes, key_pem: bytes) -> tuple:
        """A certificate and its key, parsed for ``engine(identity=...)``."""
        chain, key = _load_identity(cert_pem, key_pem)
        return chain[0], key

    def engine(self, identity: "tuple | None" = None) -> "OpenSslEngine":
        """A fresh TLS session (one key_state) on this context."""
        return OpenSslEngine(self.is_server, context=self, identity=identity)


def _set_groups(ctx, groups: str) -> None:
    """The key exchange groups offered or accepted, in order (openvpn's ``tls-groups``).

    pyOpenSSL has no public call for this; its binding of OpenSSL does.
    """
    try:
        from OpenSSL._util import lib
        ok = lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode())
    except (ImportError, AttributeError):
        raise LocalProtocolError("this pyOpenSSL cannot set TLS groups") from None
    if ok != 1:
        raise LocalProtocolError("TLS groups %r: not a list of groups OpenSSL knows" % groups)


def _load_identity(cert_pem: bytes, key_pem: bytes) -> tuple:
    try:
        chain = x509.load_pem_x509_certificates(bytes(cert_pem))
        key = load_pem_private_key(bytes(key_pem), None)
    except ValueError as exc:
        raise LocalProtocolError("bad PEM input: %s" % exc) from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise LocalProtocolError("unsupported private key type %s" % type(key).__name__)
    return chain, key


class OpenSslEngine:
    """One TLS session (one OpenVPN key_state), client or server, over memory BIOs.

    ``feed`` takes the peer's TLS bytes and does all the work (handshake, decryption);
    ``pending_ciphertext`` returns what to send; ``read`` returns one received
    record's plaintext at a time; ``write`` sends one record of at most
    ``max_record`` bytes.

    Built from PEM texts it makes its own context; ``OpenSslContext.engine()``
    makes one that shares its context with every other session.
    """

    max_record = MAX_RECORD

    def __init__(self, is_server: bool, ca_pem: "bytes | None" = None, cert_pem: "bytes | None" = None,
                 key_pem: "bytes | None" = None, remote_cert_tls: "str | None" = None,
                 peer: "PeerPolicy | None" = None, tls_version_min: "str | None" = None,
                 tls_version_max: "str | None" = None, tls_cipher: "str | None" = None,
                 tls_ciphersuites: "str | None" = None, context: "OpenSslContext | None" = None,
                 identity: "tuple | None" = None) -> None:
        """``peer`` (the config's checks; ``config.engine_options``) replaces ``remote_cert_tls``."""
        if context is None:
            if cert_pem is None or key_pem is None:
                raise LocalProtocolError("OpenSslEngine needs a context, or a certificate and key")
            context = OpenSslContext(is_server, ca_pem, cert_pem, key_pem, remote_cert_tls, peer,
                                     tls_version_min, tls_version_max, tls_cipher, tls_ciphersuites)
        self.is_server = is_server
        self._peer = context.peer
        self._ca_less = context.ca_less
        self._conn = SSL.Connection(context._ctx, None)
        self._conn.set_app_data(weakref.ref(self))
        if identity is not None:
            self._conn.use_certificate(identity[0])
            self._conn.use_privatekey(identity[1])
        if is_server:
            self._conn.set_accept_state()
        else:
            self._conn.set_connect_state()
        self._started = False
        self._complete = False
        self._failed: "str | None" = None
        self._verify_reason: "str | None" = None
        self._records: list = []
        self.peer_subject: "str | None" = None
        self.cipher_name: "str | None" = None

    # -- OpenSSL's verify callback: record why, so that the error names it --
    def _verify(self, conn, cert, errnum, depth, ok) -> bool:
        try:
            return self._check_certificate(cert, errnum, depth, ok)
        except Exception as exc:  # noqa: BLE001 - nothing may unwind through OpenSSL's handshake
            # OpenSSL accepts subjects (a CN re-tagged T61String holding ff fe) that
            # `cryptography` cannot parse: refuse such a peer as openvpn and mbedTLS do
            if self._verify_reason is None:
                self._verify_reason = ("certificate verify failed: the peer's certificate (depth %d) "
                                       "cannot be read: %s" % (depth, str(exc)[:160]))
            return False

    def _check_certificate(self, cert, errnum: int, depth: int, ok: int) -> bool:
        if not ok and not self._ca_less:  # CA-less: the fingerprint at depth 0 decides
            if self._verify_reason is None:
                what = _VERIFY_ERRORS.get(errnum, "X509 verify error %d" % errnum)
                self._verify_reason = "certificate verify failed: %s (depth %d, %s)" % (
                    what, depth, _subject_cn(cert.to_cryptography()))
            return False
        if depth == 0:
            c = cert.to_cryptography()
            self.peer_subject = _subject_cn(c)
            try:
                reason = self._peer.check(c.public_bytes(Encoding.DER))
            except RemoteProtocolError as exc:
                reason = "certificate verify failed: %s" % exc
            if reason:
                if self._verify_reason is None:
                    self._verify_reason = reason
                return False
        return True

    @property
    def handshake_complete(self) -> bool:
        """True once the TLS handshake has finished (and the peer was verified)."""
        return self._complete

    def start(self) -> None:
        """Begin the handshake; a client queues its ClientHello."""
        if self._started:
            raise LocalProtocolError("TLS engine already started")
        self._started = True
        self._advance()

    def feed(self, ciphertext: bytes) -> None:
        """Process TLS bytes from the peer. RemoteProtocolError on any TLS failure."""
        if not self._started:
            raise LocalProtocolError("feed() before start()")
        if self._failed:
            raise RemoteProtocolError(self._failed)
        if ciphertext:
            self._conn.bio_write(bytes(ciphertext))
        self._advance()

    def _advance(self) -> None:
        try:
            if not self._complete:
                try:
                    self._conn.do_handshake()
                except SSL.WantReadError:
                    return
                self._complete = True
                self.cipher_name = "%s %s" % (self._conn.get_protocol_version_name(),
                                             self._conn.get_cipher_name())
            while True:
                try:
                    data = self._conn.recv(MAX_RECORD)
                except SSL.WantReadError:
                    return
                if data:
                    self._records.append(data)
        except SSL.ZeroReturnError:
            self._fail("TLS connection closed by peer (close_notify)")
        except SSL.Error as exc:
            self._fail(self._verify_reason or "TLS error: %s" % _describe(exc))

    def _fail(self, reason: str) -> None:
        self._failed = reason
        raise RemoteProtocolError(reason)

    def pending_ciphertext(self) -> bytes:
        """Drain the TLS bytes to send to the peer (b"" if none)."""
        out = []
        while True:
            try:
                chunk = self._conn.bio_read(65536)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)

    def write(self, plaintext: bytes) -> None:
        """Send ``plaintext`` as one TLS record (1..``max_record`` bytes)."""
        if not self._complete or self._failed:
            raise LocalProtocolError("write() before the TLS handshake completed")
        if not 0 < len(plaintext) <= self.max_record:
            raise LocalProtocolError("TLS record plaintext must be 1..%d bytes" % MAX_RECORD)
        self._conn.sendall(bytes(plaintext))

    def read(self) -> bytes:
        """The plaintext of the next received TLS record, b"" when none."""
        return self._records.pop(0) if self._records else b""

    def export_keying_material(self, label: bytes, length: int) -> bytes:
        """RFC 5705 exporter without context (OpenVPN's tls-ekm)."""
        if not self._complete:
            raise LocalProtocolError("export_keying_material() before the TLS handshake completed")
        return self._conn.export_keying_material(label, length, None)


def _describe(exc: SSL.Error) -> str:
    parts = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            parts.append(str(item[-1]))
    return ", ".join(parts) or repr(exc)
