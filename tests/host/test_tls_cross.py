"""Cross-runtime TLS: MbedTlsEngine in a micropython subprocess <-> OpenSslEngine here.

TLS bytes travel as hex lines over the subprocess's stdin/stdout (tests/host/mp_tls_peer.py).
"""

import binascii
import json
import os
import subprocess
import sys

import pytest

from ovpnkx.errors import RemoteProtocolError
from ovpnkx_host.pki import make_pki
from ovpnkx_host.tls_openssl import OpenSslEngine

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def _read(path):
    with open(path, "rb") as f:
        return f.read()


class MpPeer:
    """A MbedTlsEngine in a MicroPython process."""

    def __init__(self, role, ca, cert, key, rct):
        env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
        self.proc = subprocess.Popen([MICROPYTHON, os.path.join(HERE, "mp_tls_peer.py"), role, ca, cert, key,
                                      rct or "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.done = None
        self.stat = None
        self.error = None
        self.records = []
        self.tls = self._until_ready()

    def _until_ready(self):
        tls = b""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("micropython peer ended: " + self.proc.stderr.read())
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "READY":
                return tls
            if kind == "TLS":
                tls += binascii.unhexlify(rest)
            elif kind == "APP":
                self.records.append(binascii.unhexlify(rest))
            elif kind == "DONE":
                self.done = rest
            elif kind == "STAT":
                self.stat = json.loads(rest)
            elif kind == "ERR":
                self.error = rest

    def send(self, kind, data):
        self.proc.stdin.write("%s %s\n" % (kind, binascii.hexlify(data).decode()))
        self.proc.stdin.flush()
        return self._until_ready()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("QUIT\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(mp, ossl, mp_first):
    """Move bytes until quiet. The MicroPython client speaks first (its ClientHello is in mp.tls)."""
    to_ossl = mp.tls
    to_mp = b""
    for _ in range(20):
        if not to_ossl and not to_mp:
            return
        if to_ossl:
            ossl.feed(to_ossl)
            to_ossl = b""
            to_mp += ossl.pending_ciphertext()
        if to_mp:
            to_ossl = mp.send("TLS", to_mp)
            to_mp = b""
    raise AssertionError("TLS did not settle")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def peers():
    made = []
    yield made
    for p in made:
        p.close()


MSGS = [b"\x00\x00\x00\x00\x02" + bytes(range(112)), b"PUSH_REQUEST\x00", b"b", bytes(4096)]


def _records_both_ways(mp, ossl):
    for m in MSGS:
        ossl.write(m)
    mp.send("TLS", ossl.pending_ciphertext())  # all records in one feed
    assert mp.records == MSGS
    mp.records.clear()
    out = b""
    for m in MSGS:
        out += mp.send("APP", m[::-1])
    ossl.feed(out)
    assert [ossl.read() for _ in MSGS] == [m[::-1] for m in MSGS]
    assert ossl.read() == b""


def test_micropython_client_openssl_server(pki, peers):
    mp = MpPeer("client", pki.ca, pki.client_cert, pki.client_key, "server")
    peers.append(mp)
    ossl = OpenSslEngine(True, _read(pki.ca), _read(pki.server_cert), _read(pki.server_key), "client")
    ossl.start()
    assert mp.tls[:1] == b"\x16"  # ClientHello
    run(mp, ossl, True)
    assert mp.error is None and ossl.handshake_complete
    subject, cipher = mp.done.split("|")
    assert subject == "server" and cipher.startswith("TLSv1.2 ")
    assert ossl.peer_subject == "client" and ossl.cipher_name.startswith("TLSv1.2")
    _records_both_ways(mp, ossl)
    print("MicroPython client handshake:", mp.stat)


def test_openssl_client_micropython_server(pki, peers):
    mp = MpPeer("server", pki.ca, pki.server_cert, pki.server_key, "client")
    peers.append(mp)
    assert mp.tls == b""
    ossl = OpenSslEngine(False, _read(pki.ca), _read(pki.client_cert), _read(pki.client_key), "server")
    ossl.start()
    mp.tls = ossl.pending_ciphertext()
    to_mp = mp.tls
    for _ in range(10):
        back = mp.send("TLS", to_mp)
        if back:
            ossl.feed(back)
        to_mp = ossl.pending_ciphertext()
        if not to_mp:
            break
    assert mp.error is None and mp.done == "client|TLSv1.2 TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"
    assert ossl.handshake_complete and ossl.peer_subject == "server"
    _records_both_ways(mp, ossl)
    print("MicroPython server handshake:", mp.stat)


def test_micropython_client_refuses_server_from_other_ca(pki, tmp_path, peers):
    other = make_pki(str(tmp_path / "other"))
    mp = MpPeer("client", other.ca, other.client_cert, other.client_key, "server")
    peers.append(mp)
    ossl = OpenSslEngine(True, _read(pki.ca), _read(pki.server_cert), _read(pki.server_key), "client")
    ossl.start()
    ossl.feed(mp.tls)
    back = mp.send("TLS", ossl.pending_ciphertext())
    assert mp.error and "certificate verify failed" in mp.error and "not correctly signed" in mp.error
    assert mp.done is None
    ossl.feed(back)  # nothing, or an alert
    assert not ossl.handshake_complete


def test_openssl_server_refuses_expired_micropython_client(tmp_path, peers):
    exp = make_pki(str(tmp_path / "exp"), client_expired=True)
    mp = MpPeer("client", exp.ca, exp.client_cert, exp.client_key, "server")
    peers.append(mp)
    ossl = OpenSslEngine(True, _read(exp.ca), _read(exp.server_cert), _read(exp.server_key), "client")
    ossl.start()
    ossl.feed(mp.tls)
    back = mp.send("TLS", ossl.pending_ciphertext())
    with pytest.raises(RemoteProtocolError, match="expired"):
        ossl.feed(back)
    mp.send("TLS", ossl.pending_ciphertext())  # the alert
    assert mp.error and "certificate_expired" in mp.error


def test_micropython_client_checks_server_eku(pki, peers):
    # an OpenSSL server presenting the *client* certificate (EKU clientAuth only)
    mp = MpPeer("client", pki.ca, pki.client_cert, pki.client_key, "server")
    peers.append(mp)
    ossl = OpenSslEngine(True, _read(pki.ca), _read(pki.client_cert), _read(pki.client_key), None)
    ossl.start()
    ossl.feed(mp.tls)
    mp.send("TLS", ossl.pending_ciphertext())
    assert mp.error and "certificate verify failed" in mp.error
    assert "extendedKeyUsage" in mp.error or "extended key usage" in mp.error, mp.error
    assert mp.done is None
