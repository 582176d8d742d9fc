"""The certificate and TLS directives on both TLS engines, from config files to handshake.

Each scenario writes a client and a server config, and runs tests/host/tls_pair_cfg.py
on CPython (pyOpenSSL engines) and on MicroPython (mbedTLS engines): both must accept
or refuse alike, with the same reason, which names the directive and its config line.
Against the real openvpn: tests/interop/test_tls_checks_openvpn.py.
"""

import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ovpnkx.certinfo import CertInfo
from ovpnkx_host.pki import _issue, _name, _write_cert, _write_key
from ovpnkx_host.runtime import micropython_binary, micropython_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SUBJECT = "C=DE, ST=Berlin, O=ovpnkx test, OU=VPN, CN=vpn.example.org, emailAddress=ops@example.org"


def named_subject() -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Berlin"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ovpnkx test"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "VPN"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "vpn.example.org"),
                      x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.org")])


def make_certs(d) -> dict:
    """CA-signed: a real-named server, a server without key usage, a client; self-signed pair."""
    os.makedirs(d, exist_ok=True)
    p = {}

    def save(name, cert, key):
        p[name] = (os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))
        _write_cert(p[name][0], cert)
        _write_key(p[name][1], key)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("checks CA", ca_key, _name("checks CA"), ca_key, ca=True)
    save("ca", ca, ca_key)
    srv_key, cli_key, noku_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    save("server", _issue("", srv_key, ca.subject, ca_key, ca=False, eku=ExtendedKeyUsageOID.SERVER_AUTH,
                          subject=named_subject()), srv_key)
    save("noku", _issue("noku", noku_key, ca.subject, ca_key, ca=False, eku=ExtendedKeyUsageOID.SERVER_AUTH,
                        key_usage=False), noku_key)
    save("client", _issue("client", cli_key, ca.subject, ca_key, ca=False, eku=ExtendedKeyUsageOID.CLIENT_AUTH),
         cli_key)
    for role, eku in (("self-server", ExtendedKeyUsageOID.SERVER_AUTH), ("self-client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        save(role, _issue(role, key, _name(role), key, ca=False, eku=eku), key)
    return p


def fingerprint(cert_path) -> str:
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return ":".join("%02X" % b for b in cert.fingerprint(hashes.SHA256()))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("checks")))


def write_pair(tmp_path, certs, client_lines, server_lines, server="server", client="client", ca=True):
    cc, ck = certs[client]
    sc, sk = certs[server]
    ca_line = ["ca %s" % certs["ca"][0]] if ca else []
    cconf = tmp_path / "client.ovpn"
    cconf.write_text("\n".join(["client", "remote 127.0.0.1 1194"] + ca_line + ["cert %s" % cc, "key %s" % ck]
                               + client_lines) + "\n")
    sconf = tmp_path / "server.conf"
    sconf.write_text("\n".join(["server 10.8.0.0 255.255.255.0"] + ca_line + ["cert %s" % sc, "key %s" % sk]
                               + server_lines) + "\n")
    return str(cconf), str(sconf)


def run_pair(confs) -> dict:
    """{"cpython": result, "micropython": result} of one scenario."""
    out = {}
    script = os.path.join(HERE, "tls_pair_cfg.py")
    for runtime, cmd, env in (
            ("cpython", [sys.executable, script], dict(os.environ, PYTHONPATH=os.path.join(ROOT, "firmware"))),
            ("micropython", [micropython_binary(), script], micropython_env())):
        proc = subprocess.run(cmd + list(confs), capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, (runtime, proc.stdout, proc.stderr)
        out[runtime] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def both_ok(res):
    for runtime, r in res.items():
        assert "error" not in r and r["complete"] == [True, True], (runtime, r)


def both_fail(res, *words):
    reasons = []
    for runtime, r in res.items():
        assert r["complete"] == [False, False] and "error" in r, (runtime, r)
        for w in words:
            assert w in r["error"], (runtime, w, r["error"])
        reasons.append(r["error"])
    assert reasons[0] == reasons[1], reasons  # the same check, the same words, on both runtimes


def test_subject_is_openvpns_one_line_form(certs):
    with open(certs["server"][0], "rb") as f:
        der = x509.load_pem_x509_certificate(f.read()).public_bytes(
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    info = CertInfo(der)
    assert info.subject == SUBJECT and info.common_name == "vpn.example.org"
    # OpenSSL prints it so with the flags OpenVPN uses (XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN | UTF8 | ESC_CTRL)
    proc = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt",
                           "sep_comma_plus_space,sname,utf8,esc_ctrl", "-in", certs["server"][0]],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        assert proc.stdout.strip() == "subject=" + SUBJECT


@pytest.mark.parametrize("line", ["verify-x509-name vpn.example.org name", "verify-x509-name vpn. name-prefix",
                                  "verify-x509-name '%s' subject" % SUBJECT, "verify-x509-name '%s'" % SUBJECT])
def test_verify_x509_name_accepts(tmp_path, certs, line):
    both_ok(run_pair(write_pair(tmp_path, certs, ["remote-cert-tls server", line], [])))


@pytest.mark.parametrize("line, want", [
    ("verify-x509-name not-my-server name", "must be not-my-server (verify-x509-name name, client.ovpn:6)"),
    ("verify-x509-name vpn.example name", "must be vpn.example (verify-x509-name name"),
    ("verify-x509-name www. name-prefix", "must be www. (verify-x509-name name-prefix"),
    ("verify-x509-name CN=vpn.example.org", "must be CN=vpn.example.org (verify-x509-name subject")])
def test_verify_x509_name_refuses_naming_the_subject(tmp_path, certs, line, want):
    res = run_pair(write_pair(tmp_path, certs, [line], []))
    both_fail(res, "VERIFY X509NAME ERROR: %s, " % SUBJECT, want)


def test_remote_cert_tls_checks_key_usage_too(tmp_path, certs):
    # EKU serverAuth present, key usage extension absent: openvpn refuses with remote-cert-tls server
    res = run_pair(write_pair(tmp_path, certs, ["remote-cert-tls server"], [], server="noku"))
    both_fail(res, "VERIFY KU ERROR: peer certificate noku has no key usage extension",
               "(remote-cert-tls server, client.ovpn:6)")
    # the EKU alone is satisfied
    both_ok(run_pair(write_pair(tmp_path, certs, ["remote-cert-eku 'TLS Web Server Authentication'"], [],
                                server="noku")))
    both_ok(run_pair(write_pair(tmp_path, certs, ["remote-cert-eku 1.3.6.1.5.5.7.3.1"], [], server="noku")))


def test_remote_cert_ku_values(tmp_path, certs):
    # the test certificates have digitalSignature, keyEncipherment and keyAgreement: a8
    both_ok(run_pair(write_pair(tmp_path, certs, ["remote-cert-ku 04 a0"], [])))
    res = run_pair(write_pair(tmp_path, certs, ["remote-cert-ku 04 01"], []))
    both_fail(res, "VERIFY KU ERROR: peer certificate vpn.example.org has key usage a8, expected one of 04 01")


def test_remote_cert_tls_client_on_the_server(tmp_path, certs):
    # a server certificate used as a client certificate: the server's remote-cert-tls client refuses it
    res = run_pair(write_pair(tmp_path, certs, [], ["remote-cert-tls client"], client="server"))
    for runtime, r in res.items():
        assert not r["complete"][1], (runtime, r)  # (a TLS 1.3 client may finish before the server refuses)
        text = json.dumps(r)
        assert "extended key usage" in text or "extendedKeyUsage" in text or "BAD_CERTIFICATE" in text, (runtime, r)


def test_peer_fingerprint_without_ca(tmp_path, certs):
    """OpenVPN 2.6's CA-less setup: self-signed certificates, each side pins the other's fingerprint."""
    srv_fp, cli_fp = fingerprint(certs["self-server"][0]), fingerprint(certs["self-client"][0])
    confs = write_pair(tmp_path, certs, ["peer-fingerprint " + srv_fp],
                       ["<peer-fingerprint>", "# the client", cli_fp, "</peer-fingerprint>"],
                       server="self-server", client="self-client", ca=False)
    res = run_pair(confs)
    both_ok(res)
    assert res["cpython"]["subjects"] == res["micropython"]["subjects"] == ["self-server", "self-client"]
    wrong = ":".join(["00"] * 32)
    res = run_pair(write_pair(tmp_path, certs, ["peer-fingerprint " + wrong], ["peer-fingerprint " + cli_fp],
                              server="self-server", client="self-client", ca=False))
    both_fail(res, "peer certificate self-server matches no peer-fingerprint (got fingerprint %s; "
              "peer-fingerprint, client.ovpn:5)" % srv_fp)


def test_peer_fingerprint_with_ca_needs_both(tmp_path, certs):
    srv_fp = fingerprint(certs["server"][0])
    both_ok(run_pair(write_pair(tmp_path, certs, ["peer-fingerprint " + srv_fp], [])))
    res = run_pair(write_pair(tmp_path, certs, ["peer-fingerprint " + fingerprint(certs["noku"][0])], []))
    both_fail(res, "matches no peer-fingerprint")


def test_tls_cipher_and_version(tmp_path, certs):
    res = run_pair(write_pair(tmp_path, certs, ["tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
                                                "tls-version-max 1.2"], []))
    both_ok(res)
    assert res["cpython"]["cipher"] == "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"
    assert res["micropython"]["cipher"] == "TLSv1.2 TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"
    # OpenSSL-style names are translated for mbedTLS, as openvpn does
    res = run_pair(write_pair(tmp_path, certs, ["tls-cipher ECDHE-ECDSA-AES128-GCM-SHA256", "tls-version-max 1.2"], []))
    assert res["cpython"]["cipher"] == "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"
    # without a limit, the host negotiates TLS 1.3 (tls-ciphersuites picks its suite)
    res = run_pair(write_pair(tmp_path, certs, ["tls-ciphersuites TLS_AES_128_GCM_SHA256"], []))
    assert res["cpython"]["cipher"] == "TLSv1.3 TLS_AES_128_GCM_SHA256"
    assert res["micropython"]["cipher"].startswith("TLSv1.2 ")
