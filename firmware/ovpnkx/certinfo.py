"""A tiny X.509 reader, and OpenVPN's checks of the peer certificate, on both runtimes.

MicroPython's ``tls`` gives a certificate only as DER (in the verify callback) and its
mbedTLS build here parses no PEM, so the TLS engine needs: PEM blocks as DER, the
subject (OpenVPN's one-line form) and its CN, the subjectAltName entries (the name
mbedTLS checks), the key usage and extended key usage. Malformed DER raises
RemoteProtocolError: certificates come from the peer.

``PeerPolicy`` holds the checks OpenVPN makes of the peer's own certificate (depth 0)
after the chain is verified, in OpenVPN's order (ssl_verify.c: verify_cert and
verify_peer_cert): ``peer-fingerprint``, ``remote-cert-ku``, ``remote-cert-eku`` (both
set by ``remote-cert-tls``) and ``verify-x509-name``. Both TLS engines (pyOpenSSL and
MicroPython's mbedTLS) call the same ``PeerPolicy.check`` with the certificate's DER,
so a certificate is judged alike on both runtimes.
"""

import binascii
import hashlib

from ._compat import const
from .der import children as _children, expect as _expect, tlv as _tlv
from .errors import LocalProtocolError, RemoteProtocolError

EKU_SERVER_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x01"  # 1.3.6.1.5.5.7.3.1
EKU_CLIENT_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x02"  # 1.3.6.1.5.5.7.3.2
_OID_CN = b"\x55\x04\x03"  # 2.5.4.3
_OID_SAN = b"\x55\x1d\x11"  # 2.5.29.17
_OID_EKU = b"\x55\x1d\x25"  # 2.5.29.37
_OID_KU = b"\x55\x1d\x0f"  # 2.5.29.15

# short names of subject attributes, as OpenSSL prints them (dotted OID otherwise), and
# extended key usages by OpenSSL's long name (--remote-cert-eku takes either form); one
# string each, "|OID=name|…", which costs a board less heap than a dict
_ATTR_NAMES = ("|2.5.4.3=CN|2.5.4.6=C|2.5.4.7=L|2.5.4.8=ST|2.5.4.10=O|2.5.4.11=OU|2.5.4.4=SN|2.5.4.42=GN"
               "|2.5.4.5=serialNumber|2.5.4.12=title|2.5.4.9=street|2.5.4.17=postalCode|2.5.4.43=initials"
               "|2.5.4.46=dnQualifier|2.5.4.65=pseudonym|2.5.4.41=name|1.2.840.113549.1.9.1=emailAddress"
               "|0.9.2342.19200300.100.1.25=DC|0.9.2342.19200300.100.1.1=UID|")
EKU_NAMES = ("|1.3.6.1.5.5.7.3.1=TLS Web Server Authentication|1.3.6.1.5.5.7.3.2=TLS Web Client Authentication"
             "|1.3.6.1.5.5.7.3.3=Code Signing|1.3.6.1.5.5.7.3.4=E-mail Protection|1.3.6.1.5.5.7.3.8=Time Stamping"
             "|1.3.6.1.5.5.7.3.9=OCSP Signing|2.5.29.37.0=Any Extended Key Usage|")
REMOTE_CERT_TLS = {"server": "1.3.6.1.5.5.7.3.1", "client": "1.3.6.1.5.5.7.3.2"}
KU_REQUIRED = -1  # remote-cert-ku without values: the extension must be present

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


def name_of(table: str, oid: str) -> "str | None":
    """The name ``table`` (``_ATTR_NAMES`` or ``EKU_NAMES``) gives dotted ``oid``, or None."""
    i = table.find("|" + oid + "=")
    if i < 0:
        return None
    i += len(oid) + 2
    return table[i:table.index("|", i)]


def oid_text(body: bytes) -> str:
    """Dotted text of a DER OID body (``2b0601...`` -> ``1.3.6.1...``)."""
    arcs = []
    n = 0
    for b in body:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    if not arcs:
        return ""
    first = arcs[0]
    head = [0, first] if first < 40 else ([1, first - 40] if first < 80 else [2, first - 80])
    return ".".join(str(a) for a in head + arcs[1:])


def fingerprint_text(digest: bytes) -> str:
    """``AB:CD:…`` form of a certificate fingerprint."""
    return ":".join("%02X" % b for b in digest)


def _remap(text: str) -> str:
    # OpenVPN's string_mod_remap_name: control characters become '_'
    return "".join("_" if ord(c) < 32 or ord(c) == 127 else c for c in text)


def _dn_value(tag: int, raw: bytes) -> str:
    try:
        if tag == 0x1E:  # BMPString: UTF-16BE
            return "".join(chr(raw[i] << 8 | raw[i + 1]) for i in range(0, len(raw) - 1, 2))
        text = raw.decode()
    except UnicodeError:
        raise RemoteProtocolError("DER: subject attribute is not text")
    # OpenSSL's ASN1_STRFLGS_ESC_CTRL, as OpenVPN prints subjects
    return "".join("\\%02X" % ord(c) if ord(c) < 32 or ord(c) == 127 else c for c in text)


class CertInfo:
    """The fields of one DER certificate that OpenVPN's checks use.

    ``subject`` (OpenVPN's form: ``C=US, O=Org, CN=name``, RDNs in certificate order,
    ``" + "`` inside a multi-valued RDN), ``common_name`` (the last CN, as OpenVPN picks
    it; None without one), ``alt_names`` (list of (tag, bytes): 0x82 dNSName, 0x87
    iPAddress, 0x86 URI, ...), ``eku`` (list of OID bodies, or None when the certificate
    has no extended key usage extension), ``key_usage`` (the first byte of the key
    usage bits as OpenVPN compares them, ``0x80`` digitalSignature … ``0x01``
    encipherOnly; None without the extension), ``der``.
    """

    def __init__(self, der: bytes) -> None:
        der = bytes(der)
        self.der = der
        cert = _expect(_tlv(der, 0, len(der)), _SEQ, "certificate")
        parts = _children(der, cert[1], cert[2])
        if len(parts) != 3:
            raise RemoteProtocolError("DER: certificate is not tbs, algorithm, signature")
        tbs = _children(der, *_expect(parts[0], _SEQ, "tbsCertificate")[1:])
        if tbs and tbs[0][0] == 0xA0:  # explicit version
            tbs = tbs[1:]
        if len(tbs) < 6:
            raise RemoteProtocolError("DER: tbsCertificate too short")
        self.common_name = None  # type: str | None
        self.subject = self._subject(der, _expect(tbs[4], _SEQ, "subject"))
        self.alt_names = []  # type: list
        self.eku = None  # type: list | None
        self.key_usage = None  # type: int | None
        for item in tbs[6:]:
            if item[0] == _EXPLICIT3:
                exts = _expect(_tlv(der, item[1], item[2]), _SEQ, "extensions")
                for ext in _children(der, exts[1], exts[2]):
                    self._extension(der, _expect(ext, _SEQ, "extension"))

    def _subject(self, der: bytes, subject: tuple) -> str:
        rdns = []
        for rdn in _children(der, subject[1], subject[2]):
            avas = []
            for atv in _children(der, *_expect(rdn, _SET, "RDN")[1:]):
                kids = _children(der, *_expect(atv, _SEQ, "attribute")[1:])
                if len(kids) != 2 or kids[0][0] != _OID:
                    raise RemoteProtocolError("DER: malformed subject attribute")
                oid = der[kids[0][1]:kids[0][2]]
                value = _dn_value(kids[1][0], der[kids[1][1]:kids[1][2]])
                if oid == _OID_CN:
                    self.common_name = _remap(value)
                dotted = oid_text(oid)
                avas.append("%s=%s" % (name_of(_ATTR_NAMES, dotted) or dotted, value))
            rdns.append(" + ".join(avas))
        text = _remap(", ".join(rdns))
        i = 0
        while i < len(text) and text[i] == "-":  # OpenVPN: leading '-' becomes '_'
            i += 1
        return "_" * i + text[i:]

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
        elif oid == _OID_KU:
            bits = _expect(_tlv(der, value[1], value[2]), 0x03, "keyUsage")
            self.key_usage = der[bits[1] + 1] if bits[2] - bits[1] > 1 else 0
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


def _eku_matches(info: CertInfo, expected: str) -> bool:
    for body in info.eku or ():
        dotted = oid_text(body)
        if expected == dotted or expected == name_of(EKU_NAMES, dotted):
            return True
    return False


class PeerPolicy:
    """OpenVPN's checks of the peer's own certificate, given by the config.

    ``fingerprints``: SHA-256 digests (``peer-fingerprint``; then ``ca`` is optional
    and chain errors do not count, as in OpenVPN 2.6); ``ku``: None, ``KU_REQUIRED``
    or a list of key usage values (``remote-cert-ku``: one must be all set);
    ``eku``: an OID in dotted or long-name form (``remote-cert-eku``); ``x509``:
    (name, type) with type "subject", "name" or "name-prefix" (``verify-x509-name``);
    ``why``: what to name in the error for the ku/eku checks (e.g. "remote-cert-tls server");
    ``where``: directive -> "file:line" of the config line each check came from, named in
    the error too.
    """

    def __init__(self, fingerprints: "list | None" = None, ku: "object" = None, eku: "str | None" = None,
                 x509: "tuple | None" = None, why: str = "", where: "dict | None" = None) -> None:
        if x509 is not None and x509[1] not in ("subject", "name", "name-prefix"):
            raise LocalProtocolError("verify-x509-name type must be subject, name or name-prefix")
        self.fingerprints = fingerprints or []
        self.ku = ku
        self.eku = eku
        self.x509 = x509
        self.why = why
        self.where = where or {}

    def _src(self, directive: str, detail: str = "") -> str:
        # "remote-cert-tls server, client.ovpn:7": the directive and its config line
        label = self.why if directive in ("remote-cert-ku", "remote-cert-eku") and self.why else directive
        at = self.where.get(label.split()[0])
        return label + detail + (", " + at if at else "")

    @classmethod
    def remote_cert_tls(cls, role: "str | None") -> "PeerPolicy":
        """The checks of ``remote-cert-tls server|client`` alone (None: no checks)."""
        if role is None:
            return cls()
        if role not in REMOTE_CERT_TLS:
            raise LocalProtocolError("remote_cert_tls must be 'server', 'client' or None")
        return cls(ku=KU_REQUIRED, eku=REMOTE_CERT_TLS[role], why="remote-cert-tls " + role)

    def check(self, der: bytes) -> "str | None":
        """Why the peer's own certificate (DER) is refused, or None when it passes."""
        info = CertInfo(der)
        name = info.common_name or info.subject
        if self.fingerprints:
            digest = hashlib.sha256(info.der).digest()
            if digest not in self.fingerprints:
                return ("certificate verify failed: peer certificate %s matches no peer-fingerprint "
                        "(got fingerprint %s; %s)" % (name, fingerprint_text(digest), self._src("peer-fingerprint")))
        if self.ku is not None:
            if info.key_usage is None:
                return ("certificate verify failed: VERIFY KU ERROR: peer certificate %s has no key usage "
                        "extension (%s)" % (name, self._src("remote-cert-ku")))
            if self.ku != KU_REQUIRED and not any(v and info.key_usage & v == v for v in self.ku):  # type: ignore
                return ("certificate verify failed: VERIFY KU ERROR: peer certificate %s has key usage %02x, "
                        "expected one of %s (%s)" % (name, info.key_usage,
                                                     " ".join("%02x" % v for v in self.ku),  # type: ignore
                                                     self._src("remote-cert-ku")))
        if self.eku is not None and not _eku_matches(info, self.eku):
            return ("certificate verify failed: peer certificate %s lacks extended key usage %s (%s)"
                    % (name, self.eku, self._src("remote-cert-eku")))
        if self.x509 is not None:
            want, kind = self.x509
            cn = info.common_name
            if kind == "subject":
                ok = info.subject == want
            elif kind == "name":
                ok = cn == want
            else:
                ok = cn is not None and cn.startswith(want)
            if not ok:
                return ("certificate verify failed: VERIFY X509NAME ERROR: %s, must be %s (%s)"
                        % (info.subject, want, self._src("verify-x509-name", " " + kind)))
        return None
