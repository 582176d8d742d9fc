"""Pure parts of the MicroPython TLS engine, on both runtimes: the DER reader
(certinfo), PEM to DER, and the TLS record / handshake-message cutting.

The engine itself needs MicroPython's ``tls`` and freshly made certificates; it is
tested in tests/host/test_tls_mbedtls_engine.py (engine <-> engine inside MicroPython) and
tests/host/test_tls_cross.py (MicroPython <-> pyOpenSSL).
"""

import binascii

from ovpnkx.certinfo import EKU_CLIENT_AUTH, EKU_SERVER_AUTH, CertInfo, pem_blocks
from ovpnkx.der import chain_from_message, handshake_messages
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError
from ovpnkx.tls_mbedtls import split_records

from _support import raises, unhex

# made with cryptography: CN "server", EKU serverAuth, no SAN
SERVER_DER = unhex(
    "308201413081e9a003020102020101300a06082a8648ce3d040302300d310b300906035504030c026361301e170d3230"
    "303130313030303030305a170d3231303130313030303030305a3022310f300d060355040a0c066f76706e6b78310f30"
    "0d06035504030c067365727665723059301306072a8648ce3d020106082a8648ce3d0301070342000430d8025aa4ef40"
    "6d34e17f190fbfa3c752fb7e56f84ff04c6b4e9393bc6dd7d8190e51bd175258fe7b3c28f621cca24ffeb4c599840b7d"
    "8b81fc2f77735b6f88a3253023300c0603551d130101ff0402300030130603551d25040c300a06082b06010505070301"
    "300a06082a8648ce3d0403020347003044022012dccd4c1c4232bfb5a86dc6dcff16901a2da26b2195e5ae870ee32113"
    "7d7fe502204de772100f3027e1f83098f3e40aa8d6e79106f615e2648d53e19ed6fad172dc"
)
# CN "vpn-gw", EKU clientAuth + serverAuth, SAN dNSName vpn.example.org + iPAddress 10.0.0.1
SAN_DER = unhex(
    "3082017030820115a003020102020101300a06082a8648ce3d040302300d310b300906035504030c026361301e170d32"
    "30303130313030303030305a170d3231303130313030303030305a3022310f300d060355040a0c066f76706e6b78310f"
    "300d06035504030c0676706e2d67773059301306072a8648ce3d020106082a8648ce3d0301070342000430d8025aa4ef"
    "406d34e17f190fbfa3c752fb7e56f84ff04c6b4e9393bc6dd7d8190e51bd175258fe7b3c28f621cca24ffeb4c599840b"
    "7d8b81fc2f77735b6f88a351304f300c0603551d130101ff04023000301d0603551d250416301406082b060105050703"
    "0206082b0601050507030130200603551d1104193017820f76706e2e6578616d706c652e6f726787040a000001300a06"
    "082a8648ce3d0403020349003046022100b967ca15467ed4cf88d1bd2d57c5eb11ade1b5b1597c8bc1b47e887e3bbd3d"
    "5f022100efb83bf9a2edea2aa42798f25fb6b22e9a7142525a269d3348a407cb9658d10a"
)
# CN "noeku", no EKU, SAN iPAddress 192.168.1.2 only
NOEKU_IP_DER = unhex(
    "3082013d3081e4a003020102020101300a06082a8648ce3d040302300d310b300906035504030c026361301e170d3230"
    "303130313030303030305a170d3231303130313030303030305a3021310f300d060355040a0c066f76706e6b78310e30"
    "0c06035504030c056e6f656b753059301306072a8648ce3d020106082a8648ce3d0301070342000430d8025aa4ef406d"
    "34e17f190fbfa3c752fb7e56f84ff04c6b4e9393bc6dd7d8190e51bd175258fe7b3c28f621cca24ffeb4c599840b7d8b"
    "81fc2f77735b6f88a321301f300c0603551d130101ff04023000300f0603551d11040830068704c0a80102300a06082a"
    "8648ce3d04030203480030450220302c018ec0d81f60028a6cd42a75831d401d1fd2bf71cabd53118fcf6e07043f0221"
    "0098b7b8aa01505ab3f18533810c575dddda7779a613e4984598d0142485a83008"
)


def _pem(der, label="CERTIFICATE"):
    b64 = binascii.b2a_base64(der).strip()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN " + label.encode() + b"-----\n" + b"\n".join(lines) + b"\n-----END " + label.encode() + b"-----\n"


# -- certinfo ----------------------------------------------------------------------------------

def test_certinfo_cn_and_eku():
    info = CertInfo(SERVER_DER)
    assert info.common_name == "server"
    assert info.has_eku(EKU_SERVER_AUTH) and not info.has_eku(EKU_CLIENT_AUTH)
    assert info.alt_names == []
    assert info.verify_name() == "server"


def test_certinfo_san_is_the_name_mbedtls_checks():
    info = CertInfo(SAN_DER)
    assert info.common_name == "vpn-gw"
    assert info.has_eku(EKU_SERVER_AUTH) and info.has_eku(EKU_CLIENT_AUTH)
    assert info.alt_names == [(0x82, b"vpn.example.org"), (0x87, b"\x0a\x00\x00\x01")]
    assert info.verify_name() == "vpn.example.org"


def test_certinfo_no_eku_and_ip_san():
    info = CertInfo(NOEKU_IP_DER)
    assert info.eku is None and not info.has_eku(EKU_SERVER_AUTH)
    assert info.verify_name() == "192.168.1.2"


def test_certinfo_every_prefix_and_bit_flip_is_a_remote_error_or_parses():
    for der in (SERVER_DER, SAN_DER):
        for end in range(len(der)):
            raises(RemoteProtocolError, CertInfo, der[:end])
        for i in range(0, 40):  # the structure lives in the first bytes
            bad = bytearray(der)
            bad[i] ^= 0x40
            try:
                CertInfo(bytes(bad))
            except RemoteProtocolError:
                pass


def test_pem_blocks():
    pem = b"junk\n" + _pem(SERVER_DER) + _pem(SAN_DER) + _pem(b"\x30\x00", "PRIVATE KEY")
    assert pem_blocks(pem, "CERTIFICATE") == [SERVER_DER, SAN_DER]
    assert pem_blocks(pem, "PRIVATE KEY") == [b"\x30\x00"]
    assert len(pem_blocks(pem)) == 3
    assert pem_blocks(pem.decode().replace("\n", "\r\n"), "CERTIFICATE") == [SERVER_DER, SAN_DER]
    raises(LocalProtocolError, pem_blocks, b"no pem here")
    raises(LocalProtocolError, pem_blocks, pem, "EC PRIVATE KEY")


# -- record and handshake cutting ---------------------------------------------------------------

def test_split_records_keeps_partial_tail():
    r1 = unhex("16 0303 0004 01020304")
    r2 = unhex("14 0303 0001 01")
    buf = bytearray(r1 + r2 + r1[:6])
    assert split_records(buf) == [(22, r1), (20, r2)]
    assert buf == bytearray(r1[:6])
    buf += r1[6:]
    assert split_records(buf) == [(22, r1)] and buf == bytearray()
    buf = bytearray(b"\x17\x03")
    assert split_records(buf) == [] and buf == bytearray(b"\x17\x03")


def test_split_records_refuses_non_tls():
    for junk in (b"GET / HTTP/1.0\r\n", unhex("16 0203 0001 00"), unhex("17 0303 ffff"), b"\x00"):
        raises(RemoteProtocolError, split_records, bytearray(junk))


def test_handshake_messages_and_certificate():
    cert_list = b"\x00\x00\x03abc" + b"\x00\x00\x02de"
    cert_msg = b"\x0b" + (len(cert_list) + 3).to_bytes(3, "big") + len(cert_list).to_bytes(3, "big") + cert_list
    hello = b"\x02\x00\x00\x02\xaa\xbb"
    data = hello + cert_msg + b"\x0e\x00\x00"
    assert handshake_messages(data) == [(2, hello), (11, cert_msg)]
    assert chain_from_message(cert_msg) == [b"abc", b"de"]
    for bad in (cert_msg[:6], cert_msg[:-1], cert_msg[:10] + b"\x00\x00"):
        raises(RemoteProtocolError, chain_from_message, bad)


class _NoMemTls:
    """A ``tls`` module whose mbedTLS runs out of heap at ``where`` (rp2: the GC heap)."""

    PROTOCOL_TLS_CLIENT = 0
    PROTOCOL_TLS_SERVER = 1
    CERT_NONE = 0
    CERT_OPTIONAL = 1
    CERT_REQUIRED = 2

    def __init__(self, where):
        self.where = where
        mod = self

        class SSLContext:
            def __init__(self, protocol):
                mod._maybe("context")

            def load_cert_chain(self, cert, key):
                mod._maybe("cert")

            def load_verify_locations(self, der):
                mod._maybe("ca")

            def wrap_socket(self, sock, **kw):
                mod._maybe("wrap")
                raise AssertionError("not reached in these tests")

        self.SSLContext = SSLContext

    def _maybe(self, step):
        if step == self.where:
            raise OSError(12, "ENOMEM")  # MBEDTLS_ERR_SSL_ALLOC_FAILED / MP_ENOMEM


def _pki_file(name):
    from _support import DATA_DIR

    with open(DATA_DIR + "/pki/" + name, "rb") as f:
        return f.read()


def test_mbedtls_out_of_heap_is_memory_error_not_a_bad_certificate():
    """An allocation mbedTLS could not make (the GC heap on rp2) is the board's memory, reported
    as MemoryError (the app's "out of memory" result), not a crash or a certificate refusal."""
    from ovpnkx import tls_mbedtls as tm

    saved = tm._tls
    try:
        for where in ("context", "cert", "wrap"):
            tm._tls = _NoMemTls(where)  # type: ignore[assignment]

            def run():
                engine = tm.MbedTlsEngine(False, _pki_file("ca.crt"), _pki_file("client.crt"), _pki_file("client.key"),
                                          remote_cert_tls="server")
                engine.start()

            raises(MemoryError, run)
    finally:
        tm._tls = saved
