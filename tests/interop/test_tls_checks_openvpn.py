"""The certificate and TLS directives against the real openvpn 2.6, and refusals before any packet.

- ``verify-x509-name``: a wrong name fails the handshake naming the server's subject in
  openvpn's own words and form (the real openvpn client, given the same line, logs the
  same subject); right names (name, name-prefix, subject) connect.
- ``peer-fingerprint``: openvpn 2.6's CA-less setup, self-signed certificates both ways.
- ``auth SHA384`` / ``SHA512`` with tls-auth and CBC+HMAC on MicroPython (whose hashlib
  on the boards lacks them): pings decrypted both ways.
- ``tls-version-min 1.3 or-highest`` on MicroPython, ``tls-cipher`` on both runtimes.
- Refusals: a typo, a security directive the runtime cannot honour, and tls-crypt given
  to a build without it each exit 2 naming file, line and reason, and a UDP socket on
  127.0.0.1 standing where the server would be receives nothing.
"""

import json
import os
import shutil
import socket
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ovpnkx_host import capabilities
from ovpnkx_host import openvpn as ov
from ovpnkx_host import pki as pkimod
from ovpnkx_host.runtime import FIRMWARE, micropython_binary, micropython_env

from harness import OVPNKX, run_connect

RUNTIMES = ("micropython", "cpython")
SUBJECT = "C=DE, ST=Berlin, O=ovpnkx test, OU=VPN, CN=vpn.example.org, emailAddress=ops@example.org"


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A PKI whose server certificate has a real, many-part subject."""
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                         x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Berlin"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ovpnkx test"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "VPN"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "vpn.example.org"),
                         x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.org")])
    return pkimod.make_pki(str(tmp_path_factory.mktemp("named")), server_subject=subject)


def _client(tmp_path, pki, port, extra, **kw) -> tuple:
    """(config path, line number of the first extra line)."""
    text = ov.client_config(pki, port, mode="p2p", **kw)
    conf = tmp_path / "client.ovpn"
    conf.write_text(text + "".join(line + "\n" for line in extra))
    return str(conf), text.count("\n") + 1


def _connect(tmp_path, server_args, conf, runtime, pings=1):
    with ov.OpenVpn(server_args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(r"UDPv4 link local"), server.log()[-3000:]
        code, events, stderr = run_connect(conf, runtime, pings=pings, timeout=90)
        log = server.log()
        assert server.key_errors() == []
    return code, events, stderr, log


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_verify_x509_name_fails_the_handshake_naming_the_subject(tmp_path, named, runtime):
    port = ov.free_port()
    conf, line = _client(tmp_path, named, port, ["verify-x509-name not-my-server name"])
    code, events, stderr, log = _connect(tmp_path, ov.server_args(named, port, mode="p2p"), conf, runtime)
    result = events[-1]
    assert code == 1 and not result["ok"], (events, stderr)
    assert ("VERIFY X509NAME ERROR: %s, must be not-my-server (verify-x509-name name, %s:%d)"
            % (SUBJECT, conf, line)) in result["reason"], result
    assert result["pings_received"] == 0 and "Initialization Sequence Completed" not in log


def test_openvpn_client_names_the_same_subject(tmp_path, named):
    """openvpn's own client, given the same line, logs the very same subject string."""
    port = ov.free_port()
    client = [ov.openvpn_binary(), "--tls-client", "--dev", "null", "--nobind", "--proto", "udp4",
              "--remote", "127.0.0.1", str(port), "--ca", named.ca, "--cert", named.client_cert,
              "--key", named.client_key, "--remote-cert-tls", "server", "--verb", "3",
              "--verify-x509-name", "not-my-server", "name", "--hand-window", "10", "--connect-retry-max", "1",
              "--single-session", "--tls-exit"]
    with ov.OpenVpn(ov.server_args(named, port, mode="p2p"), str(tmp_path / "server.log")) as server:
        assert server.wait_for(r"UDPv4 link local"), server.log()[-3000:]
        with ov.OpenVpn(client, str(tmp_path / "client.log")) as real:
            assert real.wait_for(r"VERIFY X509NAME ERROR"), real.log()[-3000:]
            log = real.log()
    assert "VERIFY X509NAME ERROR: %s, must be not-my-server" % SUBJECT in log, log[-3000:]


@pytest.mark.parametrize("runtime, line", [
    ("micropython", "verify-x509-name vpn.example.org name"),
    ("cpython", "verify-x509-name vpn. name-prefix"),
    ("micropython", "verify-x509-name '%s' subject" % SUBJECT),
    ("cpython", "verify-x509-name '%s'" % SUBJECT)])
def test_right_verify_x509_name_connects(tmp_path, named, runtime, line):
    port = ov.free_port()
    conf, _ = _client(tmp_path, named, port, [line])
    code, events, stderr, log = _connect(tmp_path, ov.server_args(named, port, mode="p2p", verb=9), conf, runtime)
    assert code == 0, (events[-1:], stderr, log[-3000:])
    assert ov.PING_DECRYPTED.search(log), "server did not decrypt our ping"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_peer_fingerprint_without_ca(tmp_path, runtime):
    """openvpn 2.6's small setup: self-signed certificates, each side pins the other's SHA-256."""
    d = str(tmp_path / "selfsigned")
    scert, skey, sfp = pkimod.make_self_signed(d, "server", server=True)
    ccert, ckey, cfp = pkimod.make_self_signed(d, "client", server=False)
    port = ov.free_port()
    server = [ov.openvpn_binary(), "--tls-server", "--dev", "null", "--local", "127.0.0.1", "--port", str(port),
              "--proto", "udp4", "--cert", scert, "--key", skey, "--dh", "none", "--peer-fingerprint", cfp,
              "--keepalive", "2", "10", "--verb", "9", "--ifconfig-noexec", "--route-noexec",
              "--hand-window", "20", "--data-ciphers", "AES-256-GCM"]
    conf = tmp_path / "client.ovpn"
    lines = ["tls-client", "remote 127.0.0.1 %d udp" % port, "cert " + ccert, "key " + ckey,
             "<peer-fingerprint>", sfp, "</peer-fingerprint>", "remote-cert-tls server", "keepalive 2 10",
             "data-ciphers AES-256-GCM", "hand-window 20"]
    conf.write_text("\n".join(lines) + "\n")
    code, events, stderr, log = _connect(tmp_path, server, str(conf), runtime)
    assert code == 0, (events[-1:], stderr, log[-3000:])
    assert ov.PING_DECRYPTED.search(log)
    # a fingerprint that is not the server's: refused, naming what the server showed
    conf.write_text("\n".join(lines).replace(sfp, ":".join(["5A"] * 32)) + "\n")
    code, events, stderr, log = _connect(tmp_path, server, str(conf), runtime)
    assert code == 1 and "matches no peer-fingerprint (got fingerprint %s" % sfp in events[-1]["reason"], events[-1:]


@pytest.mark.parametrize("cipher, auth", [("AES-256-CBC", "SHA512"), ("AES-256-GCM", "SHA384")])
def test_sha512_and_sha384_on_micropython(tmp_path, pki, cipher, auth):
    """tls-auth and CBC+HMAC with the pure-Python SHA-384/512 (the boards' hashlib lacks them)."""
    port = ov.free_port()
    args = ov.server_args(pki, port, mode="p2p", tls_auth=True, cipher=cipher, auth=auth, verb=9)
    conf, _ = _client(tmp_path, pki, port, [], tls_auth=True, cipher=cipher, auth=auth)
    code, events, stderr, log = _connect(tmp_path, args, conf, "micropython", pings=2)
    result = events[-1]
    assert code == 0, (result, stderr, log[-3000:])
    assert result["pings_received"] >= 2 and result["cipher"] == cipher
    assert len(ov.PING_DECRYPTED.findall(log)) >= 2


@pytest.mark.parametrize("runtime, extra, tls", [
    ("micropython", ["tls-version-min 1.3 or-highest", "tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"],
     "TLSv1.2, cipher TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("cpython", ["tls-version-max 1.2", "tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"],
     "TLSv1.2, cipher TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("cpython", ["tls-version-min 1.3", "tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256"],
     "TLSv1.3, cipher TLSv1.3 TLS_CHACHA20_POLY1305_SHA256")])
def test_tls_version_and_cipher_directives(tmp_path, pki, runtime, extra, tls):
    port = ov.free_port()
    conf, line = _client(tmp_path, pki, port, extra)
    code, events, stderr, log = _connect(tmp_path, ov.server_args(pki, port, mode="p2p"), conf, runtime)
    assert code == 0, (events[-1:], stderr, log[-3000:])
    assert "Control Channel: " + tls in log, log[-3000:]
    if runtime == "micropython":
        notes = [e["reason"] for e in events if e["event"] == "note"]
        assert "%s:%d: tls-version-min 1.3 or-highest: micropython offers 1.2 at most, so 1.2" % (conf, line) \
            in notes, notes


# -- refusals before any packet ------------------------------------------------------------------

class Sink:
    """A UDP socket on 127.0.0.1 standing where the server would be; records what arrives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def received(self, wait_s: float = 0.5) -> list:
        self.sock.settimeout(wait_s)
        got = []
        try:
            while True:
                got.append(self.sock.recv(4096))
        except socket.timeout:
            return got
        finally:
            self.sock.close()


def _refused(run, expect_lines) -> None:
    sink = Sink()
    code, out = run(sink.port)
    assert code == 2, out
    for want in expect_lines:
        assert want in out, (want, out)
    assert "Traceback" not in out, out
    assert sink.received() == [], "a packet was sent before the refusal"


def _connect_out(conf, runtime):
    proc = subprocess.run([OVPNKX, "connect", "--config", conf, "--runtime", runtime, "--json", "--pings", "1"],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("what, extra, reason", [
    ("typo", ["remote-cert-tsl server"], "remote-cert-tsl: unknown directive (did you mean remote-cert-tls?)"),
    ("security directive not implemented", ["crl-verify crl.pem"],
     "crl-verify: refused: a check of the peer that ovpnkx does not implement"),
    ("real compression", ["comp-lzo yes"], "comp-lzo yes: refused: ovpnkx does not implement LZO compression")])
def test_refused_before_any_packet(tmp_path, pki, runtime, what, extra, reason):
    def run(port):
        conf, line = _client(tmp_path, pki, port, extra)
        code, out = _connect_out(conf, runtime)
        return code, out.replace(conf + ":%d: " % line, "<line> ")
    _refused(run, ["<line> " + reason])


@pytest.mark.parametrize("runtime, extra, reason", [
    ("micropython", ["tls-version-min 1.3"],
     "tls-version-min: micropython cannot honour it: its TLS offers 1.2 at most (add or-highest to accept that)"),
    ("micropython", ["data-ciphers AES-256-GCM:CHACHA20-POLY1305"],
     "data-ciphers: micropython cannot honour it: cipher CHACHA20-POLY1305 is not available"),
    ("cpython", ["tls-cipher TLS-ECDHE-ECDSA-WITH-AES-256-XYZ-SHA384"],
     "tls-cipher: cpython cannot honour it: OpenSSL matches no cipher suite")])
def test_security_directive_the_runtime_cannot_honour(tmp_path, pki, runtime, extra, reason):
    def run(port):
        conf, line = _client(tmp_path, pki, port, extra)
        code, out = _connect_out(conf, runtime)
        return code, out.replace(conf + ":%d: " % line, "<line> ")
    _refused(run, ["<line> " + reason])


def _tls_crypt_key(tmp_path) -> str:
    path = tmp_path / "tc.key"
    subprocess.run([ov.openvpn_binary(), "--genkey", "tls-crypt", str(path)], check=True, capture_output=True)
    return str(path)


def test_tls_crypt_given_to_a_micropython_build_without_it(tmp_path, pki):
    """The firmware tree without tls-crypt (a copy without ovpnkx/tlscrypt.py) refuses the config."""
    tree = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, str(tree), ignore=shutil.ignore_patterns("__pycache__", "tlscrypt.py"))
    if capabilities.tree_tls_crypt(str(tree)) != (False, False):
        pytest.skip("tls-crypt lives in tlswrap.py here: no build without it to test")
    key = _tls_crypt_key(tmp_path)

    def run(port):
        conf, line = _client(tmp_path, pki, port, ["tls-crypt " + key])
        env = micropython_env()
        env["MICROPYPATH"] = env["MICROPYPATH"].replace(FIRMWARE, str(tree))
        proc = subprocess.run([micropython_binary(), "-m", "ovpnkx_device.connect_main", conf, "1", "30", "json",
                               "host"], capture_output=True, text=True, timeout=60, env=env)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        return proc.returncode, result["reason"].replace(conf + ":%d: " % line, "<line> ") + proc.stderr
    _refused(run, ["<line> tls-crypt: micropython cannot honour it: this build has no tls-crypt"])


def test_serve_refuses_before_listening(tmp_path, pki):
    """`ovpnkx serve` with a directive it cannot honour binds nothing and names the line."""
    conf = tmp_path / "server.conf"
    conf.write_text("server 10.8.0.0 255.255.255.0\nport 0\nlocal 127.0.0.1\nca %s\ncert %s\nkey %s\n"
                    "dh none\nclient-config-dir ccd\n" % (pki.ca, pki.server_cert, pki.server_key))
    proc = subprocess.run([OVPNKX, "serve", "--config", str(conf)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert "%s:8: client-config-dir: refused" % conf in proc.stderr, proc.stderr
    assert os.path.exists(str(conf))
