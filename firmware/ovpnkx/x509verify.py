"""Certificate chain verification without a hostname, for the MicroPython TLS engine.

MicroPython's ``tls`` cannot verify a server's chain without checking a hostname:
``wrap_socket`` refuses ``CERT_REQUIRED`` without ``server_hostname`` (and mbedTLS
3.6.3 on refuses it too), and the verify callback gets each certificate and its depth
but not mbedTLS's verdict. OpenVPN checks no hostname. So the client's mbedTLS session
runs with ``CERT_NONE`` and this module verifies the chain from the server's
Certificate message before mbedTLS reads it; mbedTLS then checks the
ServerKeyExchange signature with that very leaf's key, which binds the session to it.

What is checked, as mbedTLS's default profile does: each certificate's signature by
its issuer up to a trusted CA (intermediates from the message), the validity period
of every certificate against the device's date, that issuers are CAs (basicConstraints
cA, keyUsage keyCertSign when present, pathLenConstraint). Signatures: ECDSA on P-256
or P-384 and RSA PKCS#1 v1.5 (>= 2048 bits) with SHA-256, or SHA-384/512 where
``hashlib`` has them; SHA-1 and MD5 are refused, as by mbedTLS's default profile.
Failures raise RemoteProtocolError("certificate verify failed: ...").

It needs no ``certinfo`` (which only names a certificate in a failure's message), so
that a board's heap holds the two checks one after the other, not together. For the
same reason the reading of the certificates is ``x509cert``'s: a board parses the chain
and its CAs there, drops that code and then loads this module for the path and the
signatures (``verify_chain`` takes what ``x509cert.parse`` made as well as DER).
"""

import hashlib

from ._compat import TYPE_CHECKING, const
from .errors import RemoteProtocolError, message

if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_DEPTH = const(6)
_SEQ = const(0x30)
_INT = const(0x02)

_OID_P256 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"
_OID_P384 = b"\x2b\x81\x04\x00\x22"
# signature algorithm -> (kind, hash name)
_SIG_ALGS = {
    b"\x2a\x86\x48\xce\x3d\x04\x03\x02": ("ecdsa", "sha256"),
    b"\x2a\x86\x48\xce\x3d\x04\x03\x03": ("ecdsa", "sha384"),
    b"\x2a\x86\x48\xce\x3d\x04\x03\x04": ("ecdsa", "sha512"),
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b": ("rsa", "sha256"),
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c": ("rsa", "sha384"),
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d": ("rsa", "sha512"),
}
# DER DigestInfo prefixes of PKCS#1 v1.5 (RFC 8017, 9.2 note 1)
_DIGEST_INFO = {
    "sha256": b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
    "sha384": b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
    "sha512": b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
}

# curves: p, n, Gx, Gy and b, each as long as a coordinate, one after the other (a = p - 3 for
# both: the doubling below relies on it); bytes in the .mpy, where an int is its decimal text
_CURVES = {
    _OID_P256: (
        b"\xff\xff\xff\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"
        b"\xbc\xe6\xfa\xad\xa7\x17\x9e\x84\xf3\xb9\xca\xc2\xfc\x63\x25\x51\x6b\x17\xd1\xf2\xe1\x2c\x42\x47"
        b"\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96"
        b"\x4f\xe3\x42\xe2\xfe\x1a\x7f\x9b\x8e\xe7\xeb\x4a\x7c\x0f\x9e\x16\x2b\xce\x33\x57\x6b\x31\x5e\xce"
        b"\xcb\xb6\x40\x68\x37\xbf\x51\xf5\x5a\xc6\x35\xd8\xaa\x3a\x93\xe7\xb3\xeb\xbd\x55\x76\x98\x86\xbc"
        b"\x65\x1d\x06\xb0\xcc\x53\xb0\xf6\x3b\xce\x3c\x3e\x27\xd2\x60\x4b"),
    _OID_P384: (
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        b"\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        b"\xc7\x63\x4d\x81\xf4\x37\x2d\xdf\x58\x1a\x0d\xb2\x48\xb0\xa7\x7a\xec\xec\x19\x6a\xcc\xc5\x29\x73"
        b"\xaa\x87\xca\x22\xbe\x8b\x05\x37\x8e\xb1\xc7\x1e\xf3\x20\xad\x74\x6e\x1d\x3b\x62\x8b\xa7\x9b\x98"
        b"\x59\xf7\x41\xe0\x82\x54\x2a\x38\x55\x02\xf2\x5d\xbf\x55\x29\x6c\x3a\x54\x5e\x38\x72\x76\x0a\xb7"
        b"\x36\x17\xde\x4a\x96\x26\x2c\x6f\x5d\x9e\x98\xbf\x92\x92\xdc\x29\xf8\xf4\x1d\xbd\x28\x9a\x14\x7c"
        b"\xe9\xda\x31\x13\xb5\xf0\xb8\xc0\x0a\x60\xb1\xce\x1d\x7e\x81\x9d\x7a\x43\x1d\x7c\x90\xea\x0e\x5f"
        b"\xb3\x31\x2f\xa7\xe2\x3e\xe7\xe4\x98\x8e\x05\x6b\xe3\xf8\x2d\x19\x18\x1d\x9c\x6e\xfe\x81\x41\x12"
        b"\x03\x14\x08\x8f\x50\x13\x87\x5a\xc6\x56\x39\x8d\x8a\x2e\xd1\x9d\x2a\x85\xc8\xed\xd3\xec\x2a\xef"),
}


def bit_length(x: int) -> int:
    """x.bit_length() (MicroPython's int has none); 0 for x <= 0."""
    if x <= 0:
        return 0
    h = "%x" % x
    return (len(h) - 1) * 4 + (0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4)[int(h[0], 16)]


def _signature_ints(sig: bytes) -> "list | None":
    """[r, s] of a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs), None if it is not one.
    Read here rather than with ``der``, whose code a board then need not hold beside this
    module's: no signature of P-256 or P-384 needs a long-form length."""
    end = len(sig)
    if end < 8 or sig[0] != _SEQ or sig[1] != end - 2:
        return None
    out = []
    pos = 2
    while pos < end:
        if pos + 2 > end or sig[pos] != _INT or sig[pos + 1] & 0x80:
            return None
        n = sig[pos + 1]
        pos += 2
        if not n or pos + n > end:
            return None
        out.append(int.from_bytes(sig[pos:pos + n], "big"))
        pos += n
    return out if len(out) == 2 else None


def _fail(why: str) -> "NoReturn":
    raise RemoteProtocolError("certificate verify failed: " + why)


class Cert:
    """The parts of one DER certificate that chain verification needs (``x509cert``).
    Made from a DER certificate, or from what ``x509cert.parse`` made of one: a board
    parses the chain first and drops the parser's code before it loads this module."""

    def __init__(self, cert: "bytes | list") -> None:
        if not isinstance(cert, list):
            from .x509cert import parse

            cert = parse(cert)
        (self.der, self.tbs, self.sig_alg, self.signature, self.issuer, self.subject, self.not_before,
         self.not_after, key, self.is_ca, self.path_len, self.key_usage) = cert
        self.key_type = key[0] if key else None  # type: str | None
        if self.key_type == "ec":
            self.curve, self.point = key[1], key[2]
        elif self.key_type == "rsa":
            self.modulus, self.exponent = key[1], key[2]

    def name(self) -> str:
        """The subject CN for messages."""
        from .certinfo import CertInfo

        try:
            return CertInfo(self.der).common_name or "(no CN)"
        except RemoteProtocolError:
            return "(unreadable subject)"


def _digest(name: str, data: bytes) -> bytes:
    h = getattr(hashlib, name, None)
    if h is None:
        _fail(message("this MicroPython's hashlib has no %s to check the signature with" % name))
    return h(data).digest()


def _ec_add(p: int, X1: int, Y1: int, Z1: int, X2: int, Y2: int, Z2: int) -> tuple:
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    z1z1 = Z1 * Z1 % p
    z2z2 = Z2 * Z2 % p
    u1 = X1 * z2z2 % p
    u2 = X2 * z1z1 % p
    s1 = Y1 * Z2 * z2z2 % p
    s2 = Y2 * Z1 * z1z1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if not h:
        if r:
            return 0, 1, 0
        return _ec_double(p, X1, Y1, Z1)
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    X3 = (r * r - hhh - 2 * v) % p
    return X3, (r * (v - X3) - s1 * hhh) % p, Z1 * Z2 * h % p


def _ec_double(p: int, X: int, Y: int, Z: int) -> tuple:
    if not Y or not Z:
        return 0, 1, 0
    yy = Y * Y % p
    s = 4 * X * yy % p
    zz = Z * Z % p
    m = 3 * (X - zz) * (X + zz) % p  # a = -3
    X3 = (m * m - 2 * s) % p
    return X3, (m * (s - X3) - 8 * yy * yy) % p, 2 * Y * Z % p


def _on_curve(p: int, b: int, x: int, y: int) -> bool:
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + b)) % p == 0


def ecdsa_verify(curve: bytes, point: tuple, digest: bytes, sig_der: bytes) -> bool:
    """ECDSA verification (SEC 1, 4.1.4) of a DER signature over ``digest``."""
    raw = _CURVES[curve]
    size = len(raw) // 5
    p, n, gx, gy, b = [int.from_bytes(raw[i:i + size], "big") for i in range(0, len(raw), size)]
    rs = _signature_ints(sig_der)
    if rs is None:
        return False
    r, s = rs
    if not (0 < r < n and 0 < s < n) or not _on_curve(p, b, point[0], point[1]):
        return False
    e = int.from_bytes(digest, "big")
    shift = 8 * len(digest) - bit_length(n)
    if shift > 0:
        e >>= shift
    w = pow(s, n - 2, n)
    u1 = e * w % n
    u2 = r * w % n
    qx, qy = point
    both = _ec_add(p, gx, gy, 1, qx, qy, 1)
    table = ((0, 1, 0), (gx, gy, 1), (qx, qy, 1), both)
    X, Y, Z = 0, 1, 0
    for i in range(max(bit_length(u1), bit_length(u2)) - 1, -1, -1):  # Shamir's trick
        X, Y, Z = _ec_double(p, X, Y, Z)
        k = ((u1 >> i) & 1) | (((u2 >> i) & 1) << 1)
        if k:
            t = table[k]
            X, Y, Z = _ec_add(p, X, Y, Z, t[0], t[1], t[2])
    if not Z:
        return False
    zi = pow(Z, p - 2, p)
    return X * zi * zi % p % n == r


def rsa_verify(modulus: int, exponent: int, hash_name: str, digest: bytes, sig: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification (RFC 8017, 8.2.2)."""
    k = (bit_length(modulus) + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= modulus:
        return False
    em = pow(s, exponent, modulus).to_bytes(k, "big")
    t = _DIGEST_INFO[hash_name] + digest
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def check_signature(cert: Cert, issuer: Cert) -> bool:
    """True if ``issuer``'s key signed ``cert``."""
    alg = _SIG_ALGS.get(cert.sig_alg)
    if alg is None:
        _fail(message("certificate %s is signed with an algorithm this device does not accept (SHA-1, MD5 or "
                      "unknown)" % cert.name()))
    kind, hash_name = alg
    digest = _digest(hash_name, cert.tbs)
    if kind == "ecdsa":
        if issuer.key_type != "ec":
            return False
        return ecdsa_verify(issuer.curve, issuer.point, digest, cert.signature)
    if issuer.key_type != "rsa":
        return False
    bits = bit_length(issuer.modulus)
    if bits < 2048:
        _fail(message("issuer %s has an RSA key of %d bits (at least 2048)" % (issuer.name(), bits)))
    return rsa_verify(issuer.modulus, issuer.exponent, hash_name, digest, cert.signature)


def _check_time(cert: Cert, now: int) -> None:
    if now < cert.not_before:
        _fail(message("The certificate validity starts in the future (%s)" % cert.name()))
    if now > cert.not_after:
        _fail(message("The certificate validity has expired (%s)" % cert.name()))


def _can_issue(cert: Cert, below: int) -> bool:
    if not cert.is_ca:
        return False
    if cert.key_usage >= 0 and not cert.key_usage & 0x04:  # keyCertSign (bit 5 from the left)
        return False
    return cert.path_len < 0 or cert.path_len >= below


def verify_chain(chain: list, trusted: list, now: int, window: "list | None" = None) -> Cert:
    """Verify ``chain`` (DER certificates, leaf first, as a TLS Certificate message
    sends them) up to one of ``trusted`` (DER CA certificates) at Unix time ``now``.
    Either list may hold ``x509cert.parse`` results instead of DER.
    Returns the leaf; raises RemoteProtocolError("certificate verify failed: ...").
    ``window`` (a list) gets the times between which the verified path is valid: at any
    ``now`` in it the verdict would be the same."""
    if not chain:
        _fail(message("the server sent no certificate"))
    certs = [Cert(c) for c in chain]
    anchors = [Cert(c) for c in trusted]
    cur = certs[0]
    _check_time(cur, now)
    path = [cur]
    for depth in range(MAX_DEPTH):
        for ca in anchors:
            if ca.subject == cur.issuer and _can_issue(ca, depth) and check_signature(cur, ca):
                _check_time(ca, now)
                path.append(ca)
                if window is not None:
                    window[:] = [max(c.not_before for c in path), min(c.not_after for c in path)]
                return certs[0]
        nxt = None
        for c in certs[1:]:
            if c is not cur and c.subject == cur.issuer and _can_issue(c, depth) and check_signature(cur, c):
                nxt = c
                break
        if nxt is None:
            _fail(message("The certificate is not correctly signed by the trusted CA (%s)" % cur.name()))
        _check_time(nxt, now)
        path.append(nxt)
        cur = nxt
    _fail(message("certificate chain longer than %d" % MAX_DEPTH))


def verify_engine_chain(engine: "Any") -> None:
    """A client ``MbedTlsEngine``'s check of the server's chain that ``servercheck`` read
    (``engine._chain``: certificates, CAs, date, verdict key); its verdict is kept in the
    session's context for a renegotiation. Raises RemoteProtocolError through ``engine._fail``."""
    certs, anchors, now, key = engine._chain
    engine._chain = None
    window = []  # type: list
    try:
        verify_chain(certs, anchors, now, window)
    except RemoteProtocolError as exc:
        engine._fail(str(exc))
    engine._verified[:] = [key] + (window or [0, 0]) + [engine.peer_subject]
    engine._peer_ok = True
