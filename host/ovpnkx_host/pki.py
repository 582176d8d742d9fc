"""Test PKI: a CA, a server and a client certificate, and a tls-auth key.

Made with ``cryptography`` (EC P-256). The server certificate carries EKU
serverAuth and the client clientAuth, as OpenVPN's ``remote-cert-tls`` expects.
Used by the tests, ``make run`` and the benchmarks; never for production.
"""

import datetime
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Pki:
    """Paths of the files ``make_pki`` wrote."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    tls_auth: str
    ca_key: str = ""  # the CA's private key, for issuing more client certificates


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _write_cert(path: str, cert: x509.Certificate) -> None:
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _issue(cn: str, key, issuer_name, issuer_key, *, ca: bool, eku=None, expired: bool = False,
           subject: "x509.Name | None" = None, key_usage: bool = True, days: int = 365):
    """A certificate for ``key``: subject CN ``cn`` (or the whole ``subject``), signed by issuer_key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    else:
        not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)
    b = (x509.CertificateBuilder().subject_name(subject or _name(cn)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
    elif key_usage:
        b = b.add_extension(x509.KeyUsage(True, False, True, False, True, False, False, False, False), True)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _der_tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _der_span(der: bytes, pos: int) -> tuple:
    """(start of value, end of value) of the DER TLV at ``pos``."""
    n = der[pos + 1]
    if n < 0x80:
        return pos + 2, pos + 2 + n
    k = n & 0x7F
    return pos + 2 + k, pos + 2 + k + int.from_bytes(der[pos + 2:pos + 2 + k], "big")


def malform_cn(cert: x509.Certificate, issuer_key) -> x509.Certificate:
    """``cert`` (whose subject CN is "xx") with that CN re-tagged T61String holding the
    bytes ff fe, signed again by ``issuer_key``: OpenSSL takes it, `cryptography` cannot
    parse its subject. A hostile peer's certificate, for tests of the verify paths."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs_start, _ = _der_span(der, 0)
    _, tbs_end = _der_span(der, tbs_start)
    _, alg_end = _der_span(der, tbs_end)
    tbs = der[tbs_start:tbs_end]
    cn = b"\x06\x03\x55\x04\x03\x0c\x02xx"
    if tbs.count(cn) != 1:
        raise ValueError("the certificate's subject CN must be 'xx'")
    tbs = tbs.replace(cn, b"\x06\x03\x55\x04\x03\x14\x02\xff\xfe")
    sig = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_certificate(_der_tlv(0x30, tbs + der[tbs_end:alg_end] + _der_tlv(0x03, b"\x00" + sig)))


def write_tls_auth_key(path: str) -> None:
    """Write a 256-byte OpenVPN static key in ``openvpn --genkey secret`` format."""
    raw = os.urandom(256).hex()
    lines = [raw[i:i + 32] for i in range(0, len(raw), 32)]
    with open(path, "w") as f:
        f.write("-----BEGIN OpenVPN Static key V1-----\n" + "\n".join(lines)
                + "\n-----END OpenVPN Static key V1-----\n")
    os.chmod(path, 0o600)


def make_pki(directory: str, *, client_expired: bool = False, server_expired: bool = False,
             client_cn: str = "client", prefix: str = "", server_subject: "x509.Name | None" = None,
             days: int = 365, malformed_cn: "str | None" = None) -> Pki:
    """Create a CA with one server and one client certificate in ``directory``.

    ``server_subject``: the server certificate's whole subject (default: CN=server).
    ``days``: their validity (the long-lived set in tests/data/pki is made with
    ``python -m ovpnkx_host.pki DIR --days N``). ``malformed_cn`` ("client" or
    "server") gives that certificate a subject `cryptography` cannot parse (``malform_cn``).
    """
    os.makedirs(directory, exist_ok=True)
    p = lambda name: os.path.join(directory, prefix + name)  # noqa: E731
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("ovpnkx test CA", ca_key, _name("ovpnkx test CA"), ca_key, ca=True, days=days)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv_cert = _issue("xx" if malformed_cn == "server" else "server", srv_key, ca_cert.subject, ca_key, ca=False,
                      eku=ExtendedKeyUsageOID.SERVER_AUTH, expired=server_expired, days=days,
                      subject=server_subject)
    if malformed_cn == "server":
        srv_cert = malform_cn(srv_cert, ca_key)
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli_cert = _issue("xx" if malformed_cn == "client" else client_cn, cli_key, ca_cert.subject, ca_key, ca=False,
                      eku=ExtendedKeyUsageOID.CLIENT_AUTH, expired=client_expired, days=days)
    if malformed_cn == "client":
        cli_cert = malform_cn(cli_cert, ca_key)
    pki = Pki(p("ca.crt"), p("server.crt"), p("server.key"), p("client.crt"), p("client.key"), p("ta.key"),
              p("ca.key"))
    _write_cert(pki.ca, ca_cert)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.server_cert, srv_cert)
    _write_key(pki.server_key, srv_key)
    _write_cert(pki.client_cert, cli_cert)
    _write_key(pki.client_key, cli_key)
    write_tls_auth_key(pki.tls_auth)
    return pki


def make_client_certs(pki: Pki, directory: str, count: int, prefix: str = "device") -> str:
    """``count`` client certificates from ``pki``'s CA, one per device, as
    ``directory/PREFIX-NNNNN.crt`` and ``.key`` (CN ``PREFIX-NNNNN``); kept if already there.

    A fleet's devices each have their own certificate: an OpenVPN server without
    ``duplicate-cn`` keeps only the newest session of a common name.
    """
    os.makedirs(directory, exist_ok=True)
    with open(pki.ca, "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(pki.ca_key, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    for i in range(count):
        name = "%s-%05d" % (prefix, i)
        crt, key_path = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
        if os.path.exists(crt) and os.path.exists(key_path):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(key_path, key)
        _write_cert(crt, _issue(name, key, ca_cert.subject, ca_key, ca=False,
                                eku=ExtendedKeyUsageOID.CLIENT_AUTH))
    return directory


def make_self_signed(directory: str, cn: str, server: bool) -> tuple:
    """A self-signed certificate (OpenVPN 2.6's CA-less peer-fingerprint setup).

    Returns (certificate path, key path, SHA-256 fingerprint as ``AB:CD:…``).
    """
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = _issue(cn, key, _name(cn), key, ca=False, eku=eku)
    paths = (os.path.join(directory, cn + ".crt"), os.path.join(directory, cn + ".key"))
    _write_cert(paths[0], cert)
    _write_key(paths[1], key)
    return paths[0], paths[1], ":".join("%02X" % b for b in cert.fingerprint(hashes.SHA256()))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="write a test PKI (never for production)")
    parser.add_argument("directory")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    print(make_pki(args.directory, days=args.days))
