"""MbedTlsEngine client <-> MbedTlsEngine server inside one MicroPython process.

The engine exists only on MicroPython and the certificates must be fresh (validity
is checked), so pytest makes the PKI and runs tests/host/mp_tls_peer.py ``pair``,
which reports one JSON object per scenario.
"""

import json
import os
import subprocess
import sys

import pytest

from ovpnkx_host.pki import make_pki

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def pair(client, server, client_rct="server", server_rct="client"):
    """client / server: (ca, cert, key) paths."""
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    proc = subprocess.run([MICROPYTHON, os.path.join(HERE, "mp_tls_peer.py"), "pair", *client, *server,
                           client_rct or "-", server_rct or "-"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def _c(p):
    return (p.ca, p.client_cert, p.client_key)


def _s(p):
    return (p.ca, p.server_cert, p.server_key)


def test_handshake_records_and_rules(pki):
    r = pair(_c(pki), _s(pki))
    assert "error" not in r, r
    assert r["complete"] == [True, True]
    assert r["subjects"] == ["server", "client"]
    # the config's checks (certinfo) leave the heap before the chain's (x509verify) come in
    assert r["certinfo_during_chain_check"] is False
    # and the certificates' reader (x509cert) leaves before the path and signatures' code
    assert r["reader_during_chain_check"] is False and r["chain_check_took_parsed"] is True
    # nor the DER framing's (der): x509verify reads the signatures' one DER structure itself
    assert r["der_during_chain_check"] is False
    assert r["handshake_code_left"] == []  # the context's and the check's code went with their use
    assert r["cipher"] == "TLSv1.2 TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"
    assert r["c2s_ok"] and r["s2c_ok"]  # record boundaries kept, also when fed byte by byte
    too_long, empty, exporter, restart = r["local_errors"]
    assert "1..4096" in too_long and "1..4096" in empty
    assert "no RFC 5705 exporter" in exporter
    assert "already started" in restart
    assert r["garbage"] and "TLS error" in r["garbage"]
    print("two MicroPython engines: handshake %d ms, heap peak %d B, both engines after %d B"
          % (r["ms"], r["heap_peak"], r["heap_after"]))


def test_client_refuses_server_of_other_ca(pki, tmp_path):
    other = make_pki(str(tmp_path / "o"))
    r = pair((other.ca, pki.client_cert, pki.client_key), _s(pki))
    assert "certificate verify failed" in r["error"] and "not correctly signed" in r["error"]
    assert r["complete"] == [False, False]


def test_a_sessions_engines_share_one_context_and_the_verdict_on_the_same_chain(pki, tmp_path):
    """A session's engines come one per key_state and share one mbedTLS context (openvpn's
    SSL_CTX): a renegotiation's makes none (no certificate or key parsed again) and does
    not check the chain that passed before again (no x509verify, no ECDSA in Python on a
    board) while it and our CA are the same and the date is within its validity; else it
    does, with the same verdict. Another session (another CA) has its own context."""
    other = make_pki(str(tmp_path / "o"))
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    proc = subprocess.run([MICROPYTHON, os.path.join(HERE, "mp_tls_peer.py"), "again", *_c(pki), *_s(pki), other.ca],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, same, later, other_ca, same_again = json.loads(proc.stdout.strip().splitlines()[-1])["runs"]
    # [x509verify imports, client contexts made, complete, error, server's subject]
    assert first == [1, 1, True, None, "server"]
    assert same == [0, 0, True, None, "server"]  # the same verdict, without the chain check's code
    assert later[:3] == [1, 0, False] and "expired" in later[3]  # past the validity: checked, refused
    assert other_ca[:3] == [1, 1, False] and "not correctly signed" in other_ca[3]
    assert same_again == [0, 0, True, None, "server"]


def test_a_renegotiations_engine_makes_the_configs_checks_when_the_certificate_comes(pki):
    """A board's renegotiation gives its engine a function that makes the config's checks
    (loading certinfo and the config's code only then): it is called at the server's
    certificate, a refusal is a refusal, and only a chain that passed is not checked again."""
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    proc = subprocess.run([MICROPYTHON, os.path.join(HERE, "mp_tls_peer.py"), "policy", *_c(pki), *_s(pki)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, refused, passed, cached = json.loads(proc.stdout.strip().splitlines()[-1])["runs"]
    assert first[:2] == [0, False] and "remote-cert-tls client" in first[2]
    assert refused[:2] == [1, False] and "remote-cert-tls client" in refused[2]
    assert passed == [1, True, None]
    assert cached == [0, True, None]


def test_server_refuses_client_of_other_ca(pki, tmp_path):
    other = make_pki(str(tmp_path / "o"))
    r = pair(_c(pki), (other.ca, pki.server_cert, pki.server_key))
    assert "certificate verify failed" in r["error"] and "not correctly signed" in r["error"]
    assert "TLS alert from peer" in r.get("client_error", ""), r


def test_expired_client_certificate(tmp_path):
    exp = make_pki(str(tmp_path / "e"), client_expired=True)
    r = pair(_c(exp), _s(exp))
    assert "certificate verify failed" in r["error"] and "expired" in r["error"]
    assert "certificate_expired" in r.get("client_error", ""), r


def test_expired_server_certificate(tmp_path):
    exp = make_pki(str(tmp_path / "e"), server_expired=True)
    r = pair(_c(exp), _s(exp))
    assert "certificate verify failed" in r["error"] and "expired" in r["error"]
    assert r["complete"] == [False, False]


def test_mbedtls_server_will_not_serve_with_a_client_certificate(pki):
    # mbedTLS checks its own certificate's EKU when picking a cipher suite; the client
    # side EKU check is in test_tls_cross.py (an OpenSSL server presents the certificate)
    r = pair(_c(pki), _c(pki))
    assert "HANDSHAKE_FAILURE" in r["error"], r
    assert r["complete"] == [False, False]


def test_server_certificate_as_client_fails_remote_cert_tls(pki):
    r = pair(_s(pki), _s(pki))
    assert "extended key usage 1.3.6.1.5.5.7.3.2" in r["error"] or "extendedKeyUsage" in r["error"], r


def test_missing_eku_fails_only_with_remote_cert_tls(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ovpnkx_host.pki import _issue, _name, _write_cert, _write_key

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("noeku CA", ca_key, _name("noeku CA"), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue("noeku", key, ca.subject, ca_key, ca=False, eku=None)
    paths = tuple(str(tmp_path / n) for n in ("ca.crt", "c.crt", "c.key"))
    _write_cert(paths[0], ca)
    _write_cert(paths[1], cert)
    _write_key(paths[2], key)
    assert serialization  # (imported for the PEM helpers above)
    r = pair(paths, paths, "server", None)
    assert "lacks extended key usage 1.3.6.1.5.5.7.3.1 (remote-cert-tls server)" in r["error"], r
    r = pair(paths, paths, None, None)
    assert "error" not in r and r["complete"] == [True, True], r
