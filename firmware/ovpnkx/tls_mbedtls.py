"""TLS engine for MicroPython: the ``tls`` module (mbedTLS) over an in-memory pipe.

Same interface as ``ovpnkx_host.tls_openssl.OpenSslEngine``; runs only on MicroPython.
Facts about MicroPython 1.29's ``tls`` (mbedTLS 3.6) that shape this module:

- ``ssl.SSLContext`` is a Python wrapper that sets ``CERT_NONE`` and hides
  ``verify_callback``; ``tls.SSLContext`` is used directly.
- This build parses no PEM: certificates and keys are converted to DER here, one CA
  certificate per ``load_verify_locations`` call.
- The handshake is driven by ``read`` on the SSLSocket; the pipe's ``readinto``
  returning None makes mbedTLS report WANT_READ and ``read`` return None.
- ``read(n)`` loops over records until n bytes or WANT_READ, merging records, so the
  pipe hands mbedTLS one TLS record at a time: one ``read`` then yields one record.
- There is no way to ask whether the handshake is done (``cipher()`` before it is done
  dereferences NULL and crashes), so completion is read off the record stream: TLS 1.2
  (the only version this build offers) is done when each side has sent and received
  ChangeCipherSpec followed by Finished, and mbedTLS raised nothing.
- A client cannot have mbedTLS verify the server's chain without a hostname:
  ``wrap_socket`` refuses ``CERT_REQUIRED`` without ``server_hostname`` (and mbedTLS
  3.6.3 on refuses it as well), ``CERT_OPTIONAL`` verifies but tells nobody the
  verdict (the verify callback gets a certificate and its depth, not mbedTLS's
  flags), and OpenVPN checks no name. So the client's session runs with
  ``CERT_NONE`` and, before mbedTLS reads the server's Certificate message, this
  engine verifies that chain itself (``x509verify``: signatures up to the CA,
  validity against the device's date, CA constraints) and makes the
  config's checks of its certificate. mbedTLS then checks the ServerKeyExchange
  signature with that same leaf's key, which ties the session to it. (Earlier a
  second, verify-only mbedTLS session did this: 24.5 KB more peak heap on a Pico W.)
- ``getpeercert`` is absent (no MBEDTLS_SSL_KEEP_PEER_CERTIFICATE); the verify
  callback (a server's, for its clients) sees each certificate's DER and runs the config's
  checks of the peer's own certificate (``ovpnkx.certinfo.PeerPolicy``: peer-fingerprint, remote-cert-tls/-ku/-eku,
  verify-x509-name), the same function as on CPython. Without a CA (OpenVPN 2.6's
  CA-less peer-fingerprint setup) no chain is verified and the fingerprint decides (a
  server runs with ``CERT_OPTIONAL``); the peer must still present a certificate and
  prove its key.
- ``set_ciphers`` takes IANA suite names (``tls-cipher``); there is no way to choose
  TLS versions, and this build offers TLS 1.2 only (``tls-version-min`` above 1.2 is
  refused by ``ovpnkx.capability`` before a session starts, and checked again here).
- No RFC 5705 exporter: tls-ekm is impossible, use the TLS PRF key method.
"""

import io

from ._compat import TYPE_CHECKING, collect, const, unload
from .errors import LocalProtocolError, RemoteProtocolError, message

if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn

    from .certinfo import PeerPolicy


try:
    import tls as _tls  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # CPython: only the pure helpers below are usable
    _tls = None  # type: ignore[assignment, unused-ignore]

MAX_RECORD = const(16384)
# MicroPython's mbedTLS config has MBEDTLS_SSL_OUT_CONTENT_LEN 4096: a longer write
# would become several records
MAX_WRITE = const(4096)
_CHUNK = const(1024)
_CT_CCS = const(20)
_CT_ALERT = const(21)
_CT_HANDSHAKE = const(22)
_CT_APPDATA = const(23)
_MAX_CIPHERTEXT = const(16384 + 2048)

_ENOMEM = const(12)


def split_records(buf: bytearray) -> list:
    """Cut complete TLS records off the front of ``buf``: [(content type, record bytes)].

    Raises RemoteProtocolError when the next header cannot be TLS. Each record is copied
    once and ``buf`` shrinks once (a board's heap: no 1 KB copy per step).
    """
    out = []
    pos = 0
    end = len(buf)
    mv = memoryview(buf)
    try:
        while end - pos >= 5:
            ctype = buf[pos]
            if ctype < _CT_CCS or ctype > _CT_APPDATA or buf[pos + 1] != 3:
                raise RemoteProtocolError("not a TLS record (type %d, version %d.%d)"
                                          % (ctype, buf[pos + 1], buf[pos + 2]))
            n = 5 + (buf[pos + 3] << 8 | buf[pos + 4])
            if n - 5 > _MAX_CIPHERTEXT:
                raise RemoteProtocolError("TLS record too long: %d bytes" % (n - 5))
            if end - pos < n:
                break
            out.append((ctype, bytes(mv[pos:pos + n])))
            pos += n
    finally:
        del mv  # before buf changes size (CPython refuses to resize an exported buffer)
    if pos:
        buf[:] = buf[pos:] if pos < end else b""  # (no del on bytearray slices in MicroPython)
    if 0 < len(buf) < 5 and (buf[0] < _CT_CCS or buf[0] > _CT_APPDATA):
        raise RemoteProtocolError("not a TLS record (type %d)" % buf[0])
    return out


class _Pipe(io.IOBase):
    """The SSLSocket's 'socket': reads from ``inbuf`` at most ``budget`` bytes, collects writes."""

    def __init__(self) -> None:
        self.inbuf = b""
        self.budget = 0
        self._pos = 0  # read offset in inbuf (no copy of the rest per read)
        self.out = bytearray()
        self.out_types = []  # type: list  # content types of records written, in order
        self._hdr = bytearray()
        self._skip = 0

    def readinto(self, buf: bytearray) -> "int | None":
        pos = self._pos
        n = min(len(buf), len(self.inbuf) - pos, self.budget)
        if n <= 0:
            return None  # mbedTLS: WANT_READ
        buf[:n] = memoryview(self.inbuf)[pos:pos + n]
        self._pos = pos + n
        self.budget -= n
        return n

    def offer(self, record: bytes) -> None:
        """Let mbedTLS read ``record`` (one TLS record) next."""
        self.inbuf = record
        self._pos = 0
        self.budget = len(record)

    def write(self, data: bytes) -> int:
        self.out += data
        i = 0
        while i < len(data):  # follow record headers to know what was sent
            if self._skip:
                k = min(self._skip, len(data) - i)
                self._skip -= k
                i += k
                continue
            k = min(5 - len(self._hdr), len(data) - i)
            self._hdr += data[i:i + k]
            i += k
            if len(self._hdr) == 5:
                self.out_types.append(self._hdr[0])
                self._skip = self._hdr[3] << 8 | self._hdr[4]
                self._hdr = bytearray()
        return len(data)

    def ioctl(self, req: int, arg: int) -> int:
        return 0


def _finished_after_ccs(types: list) -> bool:
    return _CT_CCS in types and _CT_HANDSHAKE in types[types.index(_CT_CCS):]


class MbedTlsEngine:
    """One TLS session (one OpenVPN key_state), client or server, sans-IO.

    ``feed`` takes the peer's TLS bytes and does all the work; ``pending_ciphertext``
    returns what to send; ``read`` returns one received record's plaintext at a time;
    ``write`` sends one record of at most ``max_record`` bytes. Certificates and key
    are PEM (converted to DER here).
    """

    max_record = MAX_WRITE

    def __init__(self, is_server: bool, ca_pem: "bytes | None", cert_pem: bytes, key_pem: bytes,
                 remote_cert_tls: "str | None" = None, peer: "PeerPolicy | Callable[[], PeerPolicy] | None" = None,
                 tls_version_min: "str | None" = None, tls_version_max: "str | None" = None,
                 tls_cipher: "str | None" = None, tls_ciphersuites: "str | None" = None,
                 now: "Any" = None, context: "list | None" = None) -> None:
        """``peer`` (the config's checks; ``config.engine_options``) replaces ``remote_cert_tls``;
        a client may give a function that makes it, called when the server's certificate is
        checked. ``now()`` is the device's date in Unix seconds (default: its RTC), None when
        unknown. A server's check of each client certificate (mbedTLS's verify callback) is
        made by ``tlscontext``: a client never loads it.

        ``context``: a list that a client's engines share, as openvpn's key_states share one
        SSL_CTX. The first engine makes the mbedTLS context (certificate and key parsed, limits
        checked) and keeps it there with the CA; the next ones (a renegotiation's) take it and
        ignore ``ca_pem``, ``cert_pem``, ``key_pem`` and the limits, and a server chain that
        passed every check at an earlier handshake of theirs is not checked again while it is
        valid. On a board that keeps the context's and the checks' code, and copies of the
        certificate and key, out of the heap while the old session still holds its buffers."""
        if _tls is None:
            raise LocalProtocolError("MbedTlsEngine needs MicroPython's tls module")
        self.is_server = is_server
        self._verified = []  # type: list  # the chain that last passed (servercheck): key, from, until, subject
        if peer is None:  # remote-cert-tls alone (or nothing): the checks it stands for
            from .certinfo import PeerPolicy

            peer = PeerPolicy.remote_cert_tls(remote_cert_tls)
        if context and not is_server:
            self._ctx, self._ca, self._verified = context
            self._peer = peer  # type: Any
        else:
            if callable(peer):  # a new context checks the config's peer settings now
                peer = peer()
            # the context's code runs once per engine and leaves the heap after it
            from .tlscontext import make_context

            self._ctx, self._ca, self._peer = make_context(
                _tls, is_server, ca_pem, cert_pem, key_pem, peer, tls_version_min, tls_version_max, tls_cipher, self)
            del make_context
            unload("tlscontext")
            if context is not None and not is_server:
                context[:] = [self._ctx, self._ca, self._verified]
        self._now = now  # None: the RTC's (servercheck)
        self._pipe = _Pipe()
        self._sock = None  # type: Any
        self._started = False
        self._in = bytearray()
        self._in_types = []  # type: list
        self._hs = bytearray()  # client: handshake bytes before the server's certificate is checked
        self._server_hello = None  # type: bytes | None
        self._leaf = None  # type: bytes | None  # client: the server certificate verified
        self._chain = None  # type: tuple | None  # client: the chain x509verify checks next (servercheck read it)
        self._reason = None  # type: str | None  # why the verify callback refused
        self._alert = None  # type: int | None  # the description of the peer's alert
        self._failed = None  # type: str | None
        self._complete = False
        self._records = []  # type: list
        self._buf = bytearray(_CHUNK)
        self._peer_ok = False  # the peer's own certificate passed the checks
        self.peer_subject = None  # type: str | None
        self.cipher_name = None  # type: str | None

    @property
    def handshake_complete(self) -> bool:
        """True once the TLS handshake has finished (and the peer was verified)."""
        return self._complete

    def allocate(self) -> None:
        """Set up mbedTLS's session now rather than when the handshake starts. Its record
        buffers are one block of 16 KB and one of 4 KB (on rp2, of the GC heap): a board
        sets up a session's first engine while the heap is still in one piece; later, with
        the session's objects spread over it, 16 KB in one piece may be gone."""
        if self._sock is None:
            try:
                self._sock = self._ctx.wrap_socket(self._pipe, server_side=self.is_server,
                                                   do_handshake_on_connect=False)
            except OSError as exc:  # mbedTLS's session and its record buffers (~21 KB) are allocated here
                _raise_if_enomem(exc)
                from .tlsalert import error_text

                raise LocalProtocolError("mbedTLS cannot start a TLS session: %s" % error_text(exc))

    def start(self) -> None:
        """Begin the handshake; a client queues its ClientHello."""
        if self._started:
            raise LocalProtocolError("TLS engine already started")
        self._started = True
        self.allocate()
        self._drive()

    def feed(self, ciphertext: bytes) -> None:
        """Process TLS bytes from the peer. RemoteProtocolError on any TLS failure."""
        if not self._started:
            raise LocalProtocolError("feed() before start()")
        if self._failed:
            raise RemoteProtocolError(self._failed)
        self._in += ciphertext
        try:
            records = split_records(self._in)
        except RemoteProtocolError as exc:
            self._fail(str(exc))
        for ctype, rec in records:
            if ctype == _CT_ALERT and len(rec) == 7 and not _finished_after_ccs(self._in_types):
                self._alert = rec[6]
            if not self.is_server and self._leaf is None:
                _check_server_certificate(self, ctype, rec)
            self._in_types.append(ctype)
            self._pipe.offer(rec)
            self._drive()

    def _drive(self) -> None:
        """Let mbedTLS consume what the pipe offers; keep any record plaintext."""
        sock = self._sock
        buf = self._buf
        parts = []
        try:
            while True:
                n = sock.readinto(buf)
                if n is None:
                    break
                if n == 0:
                    self._fail(message("TLS connection closed by peer (close_notify)"))
                parts.append(bytes(memoryview(buf)[:n]))
        except RemoteProtocolError:
            raise
        except (OSError, ValueError) as exc:
            _raise_if_enomem(exc)
            from .tlsalert import failure_reason  # loaded only when a session fails

            self._fail(failure_reason(self, exc))
        if parts:
            self._records.append(parts[0] if len(parts) == 1 else b"".join(parts))
        if not self._complete and _finished_after_ccs(self._in_types) and \
                _finished_after_ccs(self._pipe.out_types):
            if not self._peer_ok:  # CERT_OPTIONAL lets a peer without a certificate through
                self._fail(message("certificate verify failed: the peer presented no certificate"))
            self._complete = True
            suite, version = sock.cipher()  # safe only now
            self.cipher_name = "%s %s" % (version, suite)

    def _fail(self, reason: str) -> "NoReturn":
        self._failed = reason
        raise RemoteProtocolError(reason)

    def close(self) -> None:
        """Free mbedTLS's session now (on rp2 it sits in the GC heap: ~22 KB after a
        handshake) rather than whenever the GC finalises it, and let go of the context (a
        shared one stays with the session's other engines). The engine is unusable
        afterwards; its figures (``cipher_name``, ``peer_subject``) stay."""
        sock, self._sock, self._ctx = self._sock, None, None  # type: ignore[assignment]
        self._failed = self._failed or "TLS engine closed"
        self._pipe = _Pipe()
        self._in = bytearray()
        self._records = []
        if sock is not None:
            try:
                sock.close()  # its close_notify goes into the dropped pipe: the session has ended
            except OSError:
                pass

    def pending_ciphertext(self) -> bytes:
        """Drain the TLS bytes to send to the peer (b"" if none)."""
        out = bytes(self._pipe.out)
        self._pipe.out = bytearray()
        return out

    def write(self, plaintext: bytes) -> None:
        """Send ``plaintext`` as one TLS record (1..``max_record`` bytes)."""
        if not self._complete or self._failed:
            raise LocalProtocolError("write() before the TLS handshake completed")
        if not 0 < len(plaintext) <= self.max_record:
            raise LocalProtocolError("TLS record plaintext must be 1..%d bytes" % self.max_record)
        before = len(self._pipe.out_types)
        try:
            n = self._sock.write(plaintext)
        except OSError as exc:
            from .tlsalert import error_text

            self._fail(message("TLS error on write: %s" % error_text(exc)))
        if n != len(plaintext):
            raise LocalProtocolError("mbedTLS took %s of %d bytes" % (n, len(plaintext)))
        if len(self._pipe.out_types) - before != 1:
            # a build with a smaller MBEDTLS_SSL_OUT_CONTENT_LEN splits records
            raise LocalProtocolError("plaintext of %d bytes did not fit one TLS record" % len(plaintext))

    def read(self) -> bytes:
        """The plaintext of the next received TLS record, b"" when none."""
        return self._records.pop(0) if self._records else b""

    def export_keying_material(self, label: bytes, length: int) -> bytes:
        """Not available: MicroPython's tls has no RFC 5705 exporter."""
        raise LocalProtocolError("MicroPython's tls has no RFC 5705 exporter (no tls-ekm); use the TLS PRF")


def _check_server_certificate(engine: MbedTlsEngine, ctype: int, rec: bytes) -> None:
    # the check's code (servercheck) is in the heap only until the server's certificate passed
    # the config's checks; the chain's (x509verify) comes after it, never beside it
    from .servercheck import check_server_certificate

    try:
        check_server_certificate(engine, ctype, rec)
    finally:
        if engine._leaf is not None or engine._failed:
            unload("servercheck")
    if engine._chain is not None:
        collect()
        from .x509verify import verify_engine_chain

        try:
            verify_engine_chain(engine)
        finally:
            unload("x509verify")
            unload("der")
            collect()


def _raise_if_enomem(exc: Exception) -> None:
    # mbedTLS could not allocate (on rp2: from the GC heap): that is no TLS failure
    # of the peer, and the application reports it as such
    if isinstance(exc, OSError) and exc.args and exc.args[0] == _ENOMEM:
        raise MemoryError("mbedTLS: out of memory")
