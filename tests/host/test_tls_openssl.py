"""The pyOpenSSL TLS engine: client and server in memory."""

import pytest

from ovpnkx.errors import LocalProtocolError, RemoteProtocolError
from ovpnkx_host.pki import make_pki
from ovpnkx_host.tls_openssl import OpenSslEngine


def _read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def noeku():
    """CA and one certificate without any extended key usage, as PEM bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ovpnkx_host.pki import _issue, _name

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("noeku CA", ca_key, _name("noeku CA"), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue("noeku", key, ca.subject, ca_key, ca=False, eku=None)
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def engines(pki, client_pki=None, server_pki=None, ca_for_client=None, ca_for_server=None,
            client_rct="server", server_rct="client"):
    c, s = client_pki or pki, server_pki or pki
    client = OpenSslEngine(False, _read(ca_for_client or pki.ca), _read(c.client_cert), _read(c.client_key),
                           remote_cert_tls=client_rct)
    server = OpenSslEngine(True, _read(ca_for_server or pki.ca), _read(s.server_cert), _read(s.server_key),
                           remote_cert_tls=server_rct)
    return client, server


def pump(a, b, rounds=20):
    """Move TLS bytes both ways until quiet. Returns the number of flights moved."""
    flights = 0
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.pending_ciphertext()
            if data:
                dst.feed(data)
                moved = True
                flights += 1
        if not moved:
            return flights
    raise AssertionError("TLS did not settle")


def handshake(client, server):
    client.start()
    server.start()
    pump(client, server)
    assert client.handshake_complete and server.handshake_complete


def test_handshake_records_both_ways_and_exporter(pki):
    client, server = engines(pki)
    assert not client.handshake_complete
    handshake(client, server)
    assert client.peer_subject == "server" and server.peer_subject == "client"
    assert client.cipher_name and client.cipher_name.startswith("TLSv1.")
    for msg in (b"\x00\x00\x00\x00\x02" + bytes(100), b"PUSH_REQUEST\x00", bytes(16384)):
        client.write(msg)
        server.feed(client.pending_ciphertext())
        assert server.read() == msg
        server.write(msg[::-1])
        client.feed(server.pending_ciphertext())
        assert client.read() == msg[::-1]
    assert client.read() == b"" and server.read() == b""
    ekm = client.export_keying_material(b"EXPORTER-OpenVPN-datakeys", 256)
    assert len(ekm) == 256
    assert ekm == server.export_keying_material(b"EXPORTER-OpenVPN-datakeys", 256)
    assert ekm != client.export_keying_material(b"EXPORTER-other", 256)


def test_record_boundaries_kept(pki):
    client, server = engines(pki)
    handshake(client, server)
    msgs = [b"PUSH_REQUEST\x00", b"a", b"PUSH_REPLY,route 10.0.0.0\x00", bytes(3000)]
    for m in msgs:
        client.write(m)
    server.feed(client.pending_ciphertext())  # all records in one feed
    assert [server.read() for _ in msgs] == msgs
    assert server.read() == b""


def test_records_fed_byte_by_byte(pki):
    client, server = engines(pki)
    client.start()
    server.start()
    for _ in range(10):
        for src, dst in ((client, server), (server, client)):
            for b in src.pending_ciphertext():
                dst.feed(bytes([b]))
    assert client.handshake_complete and server.handshake_complete
    client.write(b"hello\x00")
    for b in client.pending_ciphertext():
        server.feed(bytes([b]))
    assert server.read() == b"hello\x00"


def test_write_rules(pki):
    client, server = engines(pki)
    client.start()
    with pytest.raises(LocalProtocolError):
        client.write(b"too early")
    with pytest.raises(LocalProtocolError):
        client.export_keying_material(b"EXPORTER-OpenVPN-datakeys", 256)
    server.start()
    pump(client, server)
    with pytest.raises(LocalProtocolError):
        client.write(bytes(16385))
    with pytest.raises(LocalProtocolError):
        client.start()


def _fails(client, server, side, *words):
    """Run the handshake; the engine ``side`` must fail with a reason naming ``words``."""
    client.start()
    server.start()
    with pytest.raises(RemoteProtocolError) as info:
        pump(client, server)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    assert not client.handshake_complete or not server.handshake_complete
    return msg


def test_wrong_ca_fails_on_client(pki, tmp_path):
    other = make_pki(str(tmp_path / "other"))
    client, server = engines(pki, ca_for_client=other.ca)
    msg = _fails(client, server, "client", "certificate verify failed")
    # both test CAs have the same name: OpenSSL finds the issuer, the signature fails
    assert "signature" in msg or "issuer" in msg


def test_wrong_ca_fails_on_server(pki, tmp_path):
    other = make_pki(str(tmp_path / "other"))
    client, server = engines(pki, ca_for_server=other.ca)
    client.start()
    server.start()
    with pytest.raises(RemoteProtocolError, match="certificate verify failed"):
        pump(server, client)


def test_expired_client_cert_fails(tmp_path):
    exp = make_pki(str(tmp_path / "exp"), client_expired=True)
    client, server = engines(exp)
    client.start()
    server.start()
    with pytest.raises(RemoteProtocolError, match="expired"):
        pump(server, client)  # the server notices first
    # the client then learns it from the server's alert
    with pytest.raises(RemoteProtocolError, match="alert certificate expired"):
        client.feed(server.pending_ciphertext())


def test_expired_server_cert_fails(tmp_path):
    exp = make_pki(str(tmp_path / "exp"), server_expired=True)
    client, server = engines(exp)
    _fails(client, server, "client", "certificate has expired")


def test_wrong_eku_fails(pki):
    # the client certificate has clientAuth only: as a server it is refused (OpenSSL's purpose check)
    client = OpenSslEngine(False, _read(pki.ca), _read(pki.client_cert), _read(pki.client_key), "server")
    server = OpenSslEngine(True, _read(pki.ca), _read(pki.client_cert), _read(pki.client_key), None)
    _fails(client, server, "client", "certificate verify failed", "extended key usage")


def test_missing_eku_fails_only_with_remote_cert_tls(noeku):
    ca, cert, key = noeku
    client = OpenSslEngine(False, ca, cert, key, "server")
    server = OpenSslEngine(True, ca, cert, key, None)
    _fails(client, server, "client", "lacks extended key usage 1.3.6.1.5.5.7.3.1", "remote-cert-tls server")
    client = OpenSslEngine(False, ca, cert, key, None)
    server = OpenSslEngine(True, ca, cert, key, None)
    handshake(client, server)


def test_server_refuses_server_cert_as_client(pki):
    client = OpenSslEngine(False, _read(pki.ca), _read(pki.server_cert), _read(pki.server_key), "server")
    server = OpenSslEngine(True, _read(pki.ca), _read(pki.server_cert), _read(pki.server_key), "client")
    client.start()
    server.start()
    with pytest.raises(RemoteProtocolError, match="extended key usage"):
        pump(server, client)


def test_garbage_is_remote_error_and_sticky(pki):
    client, server = engines(pki)
    server.start()
    with pytest.raises(RemoteProtocolError, match="TLS error"):
        server.feed(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        server.feed(b"")
    with pytest.raises(LocalProtocolError):
        server.write(b"x")


def test_bad_config_is_local_error(pki):
    with pytest.raises(LocalProtocolError):
        OpenSslEngine(False, b"not a pem", _read(pki.client_cert), _read(pki.client_key))
    with pytest.raises(LocalProtocolError):
        OpenSslEngine(False, _read(pki.ca), _read(pki.client_cert), _read(pki.server_key))
    with pytest.raises(LocalProtocolError):
        OpenSslEngine(False, _read(pki.ca), _read(pki.client_cert), _read(pki.client_key), "peer")


# -- a peer certificate `cryptography` cannot parse (issue 9 item 1) ----------------------------------

@pytest.fixture(scope="module")
def malformed(tmp_path_factory):
    """Two PKIs: one whose client certificate's subject `cryptography` cannot parse, one whose
    server certificate's (the other side's certificate of each is good)."""
    from cryptography import x509

    tmp = tmp_path_factory.mktemp("malformed")
    bad_client = make_pki(str(tmp / "c"), malformed_cn="client")
    bad_server = make_pki(str(tmp / "s"), malformed_cn="server")
    with pytest.raises(ValueError):  # what crashed the verify callback
        x509.load_pem_x509_certificate(_read(bad_client.client_cert)).subject.rfc4514_string()
    return bad_client, bad_server


def test_server_refuses_a_client_certificate_it_cannot_parse(malformed):
    # the attacker: a client with the malformed certificate (OpenSSL loads and sends it)
    client, server = engines(malformed[0])
    msg = _fails(client, server, "server", "certificate verify failed")
    assert "cannot be read" in msg, msg


def test_client_refuses_a_server_certificate_it_cannot_parse(malformed):
    client, server = engines(malformed[1])
    msg = _fails(client, server, "client", "certificate verify failed")
    assert "cannot be read" in msg, msg
