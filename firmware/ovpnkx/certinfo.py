"""A tiny X.509 reader: PEM to DER, and the few certificate fields OpenVPN looks at.

MicroPython's ``ssl`` gives a certificate only as DER (in the verify callback) and its
mbedTLS build here parses no PEM, so the TLS engine needs: PEM blocks as DER, the
subject CN (logs), the subjectAltName entries (the name mbedTLS checks), and the
extended key usage OIDs (``--remote-cert-tls``). Nothing here verifies anything.
Malformed DER raises RemoteProtocolError: certificates come from the peer.
"""

import binascii

from ._compat import const
from .errors import LocalProtocolError, RemoteProtocolError

EKU_SERVER_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x01"  # 1.3.6.1.5.5.7.3.1
EKU_CLIENT_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x02"  # 1.3.6.1.5.5.7.3.2
_OID_CN = b"\x55\x04\x03"  # 2.5.4.3
_OID_SAN = b"\x55\x1d\x11"  # 2.5.29.17
_OID_EKU = b"\x55\x1d\x25"  # 2.5.29.37

_SEQ = const(0x30)
_SET = const(0x31)
_OID = const(0x06)
_BOOL = const(0x01)
_OCTETS = const(0x04)
_EXPLICIT3 = const(0xA3)


def pem_blocks(pem: bytes, label: "str | None" = None) -> list:
    """The DER of every ``-----BEGIN <label>-----`` block in ``pem`` (any label if None).

    Raises LocalProtocolError when there is none or one is not base64 (configuration).
    """
    if isinstance(pem, str):
        pem = pem.encode()
    out = []  # type: list
    body = None  # type: list | None
    for raw in bytes(pem).split(b"\n"):
        line = raw.strip()
        if line.startswith(b"-----BEGIN ") and line.endswith(b"-----"):
            if label is None or line[11:-5].decode() == label:
                body = []
        elif line.startswith(b"-----END "):
            if body is not None:
                try:
                    out.append(binascii.a2b_base64(b"".join(body)))
                except ValueError:
                    raise LocalProtocolError("PEM block is not valid base64")
            body = None
        elif body is not None and line:
            body.append(line)
    if not out:
        raise LocalProtocolError("no PEM %s block found" % (label or ""))
    return out


def _tlv(buf: bytes, pos: int, end: int) -> tuple:
    """(tag, value start, value end) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise RemoteProtocolError("DER: truncated element")
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 3 or pos + k > end:
            raise RemoteProtocolError("DER: bad length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise RemoteProtocolError("DER: element runs past its container")
    return tag, pos, pos + n


def _children(buf: bytes, start: int, end: int) -> list:
    out = []
    while start < end:
        tag, vs, ve = _tlv(buf, start, end)
        out.append((tag, vs, ve))
        start = ve
    return out


def _expect(item: tuple, tag: int, what: str) -> tuple:
    if item[0] != tag:
        raise RemoteProtocolError("DER: %s has tag 0x%02x" % (what, item[0]))
    return item


class CertInfo:
    """The fields of one DER certificate that OpenVPN's checks use.

    ``common_name`` (str or None), ``alt_names`` (list of (tag, bytes): 0x82 dNSName,
    0x87 iPAddress, 0x86 URI, ...), ``eku`` (list of OID bodies, or None when the
    certificate has no extended key usage extension).
    """

    def __init__(self, der: bytes) -> None:
        der = bytes(der)
        cert = _expect(_tlv(der, 0, len(der)), _SEQ, "certificate")
        parts = _children(der, cert[1], cert[2])
        if len(parts) != 3:
            raise RemoteProtocolError("DER: certificate is not tbs, algorithm, signature")
        tbs = _children(der, *_expect(parts[0], _SEQ, "tbsCertificate")[1:])
        if tbs and tbs[0][0] == 0xA0:  # explicit version
            tbs = tbs[1:]
        if len(tbs) < 6:
            raise RemoteProtocolError("DER: tbsCertificate too short")
        self.common_name = self._cn(der, _expect(tbs[4], _SEQ, "subject"))
        self.alt_names = []  # type: list
        self.eku = None  # type: list | None
        for item in tbs[6:]:
            if item[0] == _EXPLICIT3:
                exts = _expect(_tlv(der, item[1], item[2]), _SEQ, "extensions")
                for ext in _children(der, exts[1], exts[2]):
                    self._extension(der, _expect(ext, _SEQ, "extension"))

    @staticmethod
    def _cn(der: bytes, subject: tuple) -> "str | None":
        for rdn in _children(der, subject[1], subject[2]):
            for atv in _children(der, *_expect(rdn, _SET, "RDN")[1:]):
                kids = _children(der, *_expect(atv, _SEQ, "attribute")[1:])
                if len(kids) == 2 and kids[0][0] == _OID and der[kids[0][1]:kids[0][2]] == _OID_CN:
                    try:
                        return der[kids[1][1]:kids[1][2]].decode()
                    except UnicodeError:
                        raise RemoteProtocolError("DER: subject CN is not UTF-8")
        return None

    def _extension(self, der: bytes, ext: tuple) -> None:
        kids = _children(der, ext[1], ext[2])
        if not kids or kids[0][0] != _OID:
            raise RemoteProtocolError("DER: extension without OID")
        oid = der[kids[0][1]:kids[0][2]]
        value = kids[-1]
        if len(kids) not in (2, 3) or value[0] != _OCTETS or (len(kids) == 3 and kids[1][0] != _BOOL):
            raise RemoteProtocolError("DER: malformed extension")
        if oid == _OID_EKU:
            seq = _expect(_tlv(der, value[1], value[2]), _SEQ, "extKeyUsage")
            self.eku = [der[vs:ve] for tag, vs, ve in _children(der, seq[1], seq[2]) if tag == _OID]
        elif oid == _OID_SAN:
            seq = _expect(_tlv(der, value[1], value[2]), _SEQ, "subjectAltName")
            self.alt_names = [(tag, der[vs:ve]) for tag, vs, ve in _children(der, seq[1], seq[2])]

    def has_eku(self, oid: bytes) -> bool:
        """True if the certificate's extended key usage lists ``oid`` (DER OID body)."""
        return self.eku is not None and oid in self.eku

    def verify_name(self) -> "str | None":
        """A name that mbedTLS's hostname check accepts for this certificate.

        mbedTLS matches subjectAltName entries when the extension exists, else the
        subject CN; returns None when neither gives a usable name.
        """
        if self.alt_names:
            for tag, value in self.alt_names:
                if tag in (0x82, 0x86):  # dNSName, URI
                    try:
                        return value.decode()
                    except UnicodeError:
                        pass
                elif tag == 0x87 and len(value) == 4:  # iPAddress (IPv4)
                    return "%d.%d.%d.%d" % (value[0], value[1], value[2], value[3])
            return None
        return self.common_name
