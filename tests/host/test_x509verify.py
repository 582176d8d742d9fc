"""ovpnkx.x509verify: the client's chain check (the MicroPython TLS engine runs mbedTLS
with CERT_NONE and relies on it). Certificates made here with ``cryptography``; every
case runs on CPython and again on the MicroPython unix port, which must agree."""

import datetime
import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ovpnkx.der import utc_seconds
from ovpnkx.errors import RemoteProtocolError
from ovpnkx.x509verify import verify_chain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
NOW = datetime.datetime.now(datetime.timezone.utc)
NOW_S = int(NOW.timestamp())


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn, key, issuer_name, issuer_key, *, ca=False, days=(-1, 365), alg=hashes.SHA256(), ku=True,
          path_len=None):
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW + datetime.timedelta(days=days[0]))
         .not_valid_after(NOW + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True))
    if ku:
        b = b.add_extension(x509.KeyUsage(not ca, False, not ca, False, False, ca, ca, False, False), True)
    return b.sign(issuer_key, alg)


def _der(c):
    return c.public_bytes(serialization.Encoding.DER)


def _ec(curve=ec.SECP256R1):
    return ec.generate_private_key(curve())


def _cases():
    root_k = _ec()
    root = _cert("root", root_k, _name("root"), root_k, ca=True)
    leaf_k = _ec()
    leaf = _cert("server", leaf_k, root.subject, root_k)
    impostor_k = _ec()  # same CA name, other key
    impostor = _cert("root", impostor_k, _name("root"), impostor_k, ca=True)
    forged = _cert("server", leaf_k, impostor.subject, impostor_k)
    tampered = bytearray(_der(leaf))
    tampered[-5] ^= 0x01  # inside the signature
    mid_k = _ec()
    mid = _cert("intermediate", mid_k, root.subject, root_k, ca=True)
    leaf2 = _cert("server2", leaf_k, mid.subject, mid_k)
    notca_k = _ec()
    notca = _cert("notca", notca_k, root.subject, root_k, ca=False)
    leaf3 = _cert("server3", leaf_k, notca.subject, notca_k)
    rsa_k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_root = _cert("rsa root", rsa_k, _name("rsa root"), rsa_k, ca=True)
    rsa_leaf = _cert("rsa server", leaf_k, rsa_root.subject, rsa_k)
    rsa_bad = bytearray(_der(rsa_leaf))
    rsa_bad[-3] ^= 0x40
    small_k = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_root = _cert("small root", small_k, _name("small root"), small_k, ca=True)
    small_leaf = _cert("small server", leaf_k, small_root.subject, small_k)
    p384_k = _ec(ec.SECP384R1)
    p384_root = _cert("p384 root", p384_k, _name("p384 root"), p384_k, ca=True, alg=hashes.SHA384())
    p384_leaf = _cert("p384 server", leaf_k, p384_root.subject, p384_k, alg=hashes.SHA384())
    p384_leaf256 = _cert("p384 server", leaf_k, p384_root.subject, p384_k, alg=hashes.SHA256())
    # cryptography signs no SHA-1 any more: relabel sha256WithRSAEncryption as sha1WithRSAEncryption
    sha1_leaf = _der(rsa_leaf).replace(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x05")
    expired = _cert("server", leaf_k, root.subject, root_k, days=(-30, -1))
    future = _cert("server", leaf_k, root.subject, root_k, days=(1, 30))
    old_root = _cert("root", root_k, _name("root"), root_k, ca=True, days=(-30, -1))
    nokcs_root = _cert("root", root_k, _name("root"), root_k, ca=True, ku=False)
    # the ECDSA-Sig-Value itself malformed (same length, so the certificate's framing holds)
    sig = leaf.signature
    assert _der(leaf).endswith(sig) and sig[0] == 0x30 and sig[2] == 0x02
    not_integer = _der(leaf)[:-len(sig)] + sig[:2] + b"\x04" + sig[3:]
    short_seq = _der(leaf)[:-len(sig)] + sig[:1] + bytes([sig[1] - 1]) + sig[2:]
    d = _der
    return [
        ("valid", [d(leaf)], [d(root)], None),
        ("other CA key, same name", [d(forged)], [d(root)], "not correctly signed"),
        ("tampered signature", [bytes(tampered)], [d(root)], "not correctly signed"),
        ("signature value not two INTEGERs", [not_integer], [d(root)], "not correctly signed"),
        ("signature value's length wrong", [short_seq], [d(root)], "not correctly signed"),
        ("via intermediate", [d(leaf2), d(mid)], [d(root)], None),
        ("intermediate missing", [d(leaf2)], [d(root)], "not correctly signed"),
        ("issuer is no CA", [d(leaf3), d(notca)], [d(root)], "not correctly signed"),
        ("RSA-2048 CA", [d(rsa_leaf)], [d(rsa_root)], None),
        ("RSA signature bit flipped", [bytes(rsa_bad)], [d(rsa_root)], "not correctly signed"),
        ("RSA-1024 CA", [d(small_leaf)], [d(small_root)], "at least 2048"),
        ("P-384 CA, SHA-256", [d(p384_leaf256)], [d(p384_root)], None),
        ("P-384 CA, SHA-384", [d(p384_leaf)], [d(p384_root)], "sha384?"),  # ? : needs hashlib.sha384
        ("SHA-1 signature", [sha1_leaf], [d(rsa_root)], "SHA-1"),
        ("expired leaf", [d(expired)], [d(root)], "expired"),
        ("leaf not yet valid", [d(future)], [d(root)], "starts in the future"),
        ("expired CA", [d(leaf)], [d(old_root)], "expired"),
        ("CA without keyUsage is fine", [d(leaf)], [d(nokcs_root)], None),
        ("two CAs, the second signs", [d(leaf)], [d(impostor), d(root)], None),
        ("garbage", [b"\x30\x03\x02\x01\x00"], [d(root)], "DER"),
    ]


@pytest.fixture(scope="module")
def cases():
    return _cases()


def _expect(case, got_error, have_sha384):
    name, _, _, want = case
    if want == "sha384?":
        want = None if have_sha384 else "sha384"
    if want is None:
        assert got_error is None, (name, got_error)
    else:
        assert got_error is not None and want in got_error, (name, got_error)
        assert got_error.startswith("certificate verify failed: ") or "DER" in got_error, (name, got_error)


def test_chains_on_cpython(cases):
    import hashlib

    for case in cases:
        try:
            leaf = verify_chain(case[1], case[2], NOW_S)
            err = None
            assert leaf.der == case[1][0]
        except RemoteProtocolError as exc:
            err = str(exc)
        _expect(case, err, hasattr(hashlib, "sha384"))


def test_chains_on_micropython_agree(cases, tmp_path):
    data = tmp_path / "cases.json"
    data.write_text(json.dumps([[c[0], [x.hex() for x in c[1]], [x.hex() for x in c[2]]] for c in cases]))
    # as the board's engine does it: the certificates read by x509cert, then checked as read
    code = ("import json, binascii, hashlib\nfrom ovpnkx.x509verify import verify_chain\n"
            "from ovpnkx.x509cert import parse\n"
            "from ovpnkx.errors import RemoteProtocolError\nout = []\n"
            "for name, chain, cas in json.load(open(%r)):\n"
            "    try:\n        verify_chain([parse(binascii.unhexlify(x)) for x in chain], "
            "[parse(binascii.unhexlify(x)) for x in cas], %d)\n        out.append(None)\n"
            "    except RemoteProtocolError as e:\n        out.append(str(e))\n"
            "print(json.dumps([hasattr(hashlib, 'sha384'), out]))\n" % (str(data), NOW_S))
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    proc = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    have384, errors = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not have384  # the unix port, as rp2 and esp32: no sha384 in hashlib
    for case, err in zip(cases, errors):
        _expect(case, err, have384)


def test_utc_seconds():
    assert utc_seconds(1970, 1, 1) == 0 and utc_seconds(2000, 3, 1) == 951868800
    assert utc_seconds(NOW.year, NOW.month, NOW.day, NOW.hour, NOW.minute, NOW.second) == NOW_S


def test_reader_knows_the_curves_the_check_has():
    """x509cert takes an EC key only on a curve x509verify can check, at its coordinate size."""
    from ovpnkx import x509cert, x509verify
    from ovpnkx.x509verify import bit_length

    # each curve's five numbers (p, n, Gx, Gy, b) at the coordinate size, and p as long as that
    assert {c: len(raw) // 5 for c, raw in x509verify._CURVES.items()} == x509cert._CURVE_SIZES
    assert all((bit_length(int.from_bytes(raw[:len(raw) // 5], "big")) + 7) // 8 == len(raw) // 5
               and len(raw) % 5 == 0 for raw in x509verify._CURVES.values())
    assert [bit_length(x) for x in (0, 1, 255, 256, 2 ** 255)] == [0, 1, 8, 9, 256]
