"""The reading of one DER certificate into what the client's chain check needs.

``parse`` returns a plain list (its fields below), not an object of a class of this
module, so that a board can drop this module's code before ``x509verify`` (the path, the
signatures) is loaded: the two never sit in its heap together. Bad input raises
RemoteProtocolError.
"""

from ._compat import const
from .der import children as _children, expect as _expect, tlv as _tlv, utc_seconds
from .errors import RemoteProtocolError

_SEQ = const(0x30)
_INT = const(0x02)
_BITS = const(0x03)
_OID = const(0x06)
_BOOL = const(0x01)
_UTC = const(0x17)
_GEN = const(0x18)
_EXPLICIT0 = const(0xA0)
_EXPLICIT3 = const(0xA3)

_OID_EC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"
_OID_RSA_KEY = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"
_OID_BASIC = b"\x55\x1d\x13"
_OID_KU = b"\x55\x1d\x0f"
# the curves x509verify can check (P-256, P-384): bytes of a coordinate
_CURVE_SIZES = {b"\x2a\x86\x48\xce\x3d\x03\x01\x07": 32, b"\x2b\x81\x04\x00\x22": 48}

# parse()'s list, by index (a comment, not a tuple: its names would be interned on a board for good):
# der, tbs (a memoryview of der), sig_alg, signature, issuer, subject, not_before, not_after,
# key, is_ca, path_len, key_usage; key is ("ec", curve OID, (x, y)), ("rsa", modulus, exponent) or None


def _time(der: bytes, item: tuple) -> int:
    tag, vs, ve = item
    text = der[vs:ve]
    try:
        s = text.decode()
        if tag == _UTC and len(s) == 13 and s[12] == "Z":
            y = int(s[0:2])
            y += 2000 if y < 50 else 1900
            rest = s[2:12]
        elif tag == _GEN and len(s) == 15 and s[14] == "Z":
            y = int(s[0:4])
            rest = s[4:14]
        else:
            raise ValueError
        return utc_seconds(y, int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]), int(rest[8:10]))
    except (ValueError, UnicodeError):
        raise RemoteProtocolError("DER: bad certificate time %r" % text)


def parse(der: bytes) -> list:
    """The fields of certificate ``der`` that chain verification uses (listed above)."""
    der = bytes(der)
    cert = _expect(_tlv(der, 0, len(der)), _SEQ, "certificate")
    if cert[2] != len(der):
        raise RemoteProtocolError("DER: bytes after the certificate")
    parts = _children(der, cert[1], cert[2])
    if len(parts) != 3:
        raise RemoteProtocolError("DER: certificate is not tbs, algorithm, signature")
    tbs_item = _expect(parts[0], _SEQ, "tbsCertificate")
    alg = _children(der, *_expect(parts[1], _SEQ, "signatureAlgorithm")[1:])
    sig_alg = der[alg[0][1]:alg[0][2]] if alg and alg[0][0] == _OID else b""
    sig = _expect(parts[2], _BITS, "signatureValue")
    if sig[2] - sig[1] < 2 or der[sig[1]] != 0:
        raise RemoteProtocolError("DER: signature BIT STRING with unused bits")
    tbs = _children(der, tbs_item[1], tbs_item[2])
    if tbs and tbs[0][0] == _EXPLICIT0:
        tbs = tbs[1:]
    if len(tbs) < 6:
        raise RemoteProtocolError("DER: tbsCertificate too short")
    inner = _children(der, *_expect(tbs[1], _SEQ, "signature")[1:])
    if not inner or der[inner[0][1]:inner[0][2]] != sig_alg:
        raise RemoteProtocolError("certificate verify failed: the certificate's two signature algorithms differ")
    validity = _children(der, *_expect(tbs[3], _SEQ, "validity")[1:])
    if len(validity) != 2:
        raise RemoteProtocolError("DER: validity is not two times")
    # the tbsCertificate with its header is what was signed: a view, not a copy of most of
    # the certificate (a chain and its CAs sit in a board's heap at the handshake's peak)
    out = [der, memoryview(der)[cert[1]:tbs_item[2]], sig_alg, der[sig[1] + 1:sig[2]], der[tbs[2][1]:tbs[2][2]],
           der[tbs[4][1]:tbs[4][2]], _time(der, validity[0]), _time(der, validity[1]),
           _key(der, _expect(tbs[5], _SEQ, "subjectPublicKeyInfo")), False, -1, -1]
    for item in tbs[6:]:
        if item[0] == _EXPLICIT3:
            exts = _expect(_tlv(der, item[1], item[2]), _SEQ, "extensions")
            for ext in _children(der, exts[1], exts[2]):
                _extension(der, _expect(ext, _SEQ, "extension"), out)
    return out


def _key(der: bytes, spki: tuple) -> "tuple | None":
    kids = _children(der, spki[1], spki[2])
    if len(kids) != 2 or kids[1][0] != _BITS or der[kids[1][1]] != 0:
        raise RemoteProtocolError("DER: malformed subjectPublicKeyInfo")
    alg = _children(der, *_expect(kids[0], _SEQ, "key algorithm")[1:])
    oid = der[alg[0][1]:alg[0][2]] if alg and alg[0][0] == _OID else b""
    key = der[kids[1][1] + 1:kids[1][2]]
    if oid == _OID_EC_KEY and len(alg) == 2 and alg[1][0] == _OID:
        curve = der[alg[1][1]:alg[1][2]]
        size = _CURVE_SIZES.get(curve, 0)
        if size and len(key) == 1 + 2 * size and key[0] == 4:
            return "ec", curve, (int.from_bytes(key[1:1 + size], "big"), int.from_bytes(key[1 + size:], "big"))
    elif oid == _OID_RSA_KEY:
        seq = _children(der, *_expect(_tlv(der, kids[1][1] + 1, kids[1][2]), _SEQ, "RSA key")[1:])
        if len(seq) == 2 and seq[0][0] == _INT and seq[1][0] == _INT:
            return "rsa", int.from_bytes(der[seq[0][1]:seq[0][2]], "big"), int.from_bytes(der[seq[1][1]:seq[1][2]], "big")
    return None


def _extension(der: bytes, ext: tuple, out: list) -> None:
    kids = _children(der, ext[1], ext[2])
    if not kids or kids[0][0] != _OID:
        raise RemoteProtocolError("DER: extension without OID")
    oid = der[kids[0][1]:kids[0][2]]
    value = kids[-1]
    if oid == _OID_BASIC:
        seq = _expect(_tlv(der, value[1], value[2]), _SEQ, "basicConstraints")
        for tag, vs, ve in _children(der, seq[1], seq[2]):
            if tag == _BOOL:
                out[9] = ve > vs and der[vs] != 0  # is_ca
            elif tag == _INT:
                out[10] = int.from_bytes(der[vs:ve], "big")  # path_len
    elif oid == _OID_KU:
        tag, vs, ve = _tlv(der, value[1], value[2])
        if tag != _BITS or ve <= vs:
            raise RemoteProtocolError("DER: malformed keyUsage")
        out[11] = der[vs + 1] if ve > vs + 1 else 0  # key_usage
