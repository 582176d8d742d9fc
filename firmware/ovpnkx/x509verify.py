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

# curves: (p, n, Gx, Gy); a = p - 3 for both (the doubling below relies on it)
_CURVES = {
    _OID_P256: (0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
                0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
                0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
                0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5),
    _OID_P384: (0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
                0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
                0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
                0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F),
}
_CURVE_B = {
    _OID_P256: 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    _OID_P384: 0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
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


def _on_curve(curve: bytes, x: int, y: int) -> bool:
    p = _CURVES[curve][0]
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + _CURVE_B[curve])) % p == 0


def ecdsa_verify(curve: bytes, point: tuple, digest: bytes, sig_der: bytes) -> bool:
    """ECDSA verification (SEC 1, 4.1.4) of a DER signature over ``digest``."""
    p, n, gx, gy = _CURVES[curve]
    rs = _signature_ints(sig_der)
    if rs is None:
        return False
    r, s = rs
    if not (0 < r < n and 0 < s < n) or not _on_curve(curve, point[0], point[1]):
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
