"""HMAC known answers from RFC 2202 (MD5, SHA1) and RFC 4231 (SHA256, SHA384, SHA512), and the
FIPS 180-2 SHA-384/512 examples for the pure-Python stand-in of boards whose hashlib lacks them."""

from ovpnkx import digest
from ovpnkx.errors import LocalProtocolError

from _support import raises, unhex


def test_hmac_md5_rfc2202_case2():
    assert digest.hmac_digest("MD5", b"Jefe", b"what do ya want for nothing?") == unhex(
        "750c783e6ab0b503eaa86e310a5db738")


def test_hmac_sha1_rfc2202_case6_long_key():
    key = b"\xaa" * 80
    msg = b"Test Using Larger Than Block-Size Key - Hash Key First"
    assert digest.hmac_digest("SHA1", key, msg) == unhex("aa4ae5e15272d00e95705637ce8a3b55ed402112")


def test_hmac_sha256_rfc4231_case2_in_parts():
    h = digest.Hmac("SHA256", b"Jefe")
    assert h.digest(b"what do ya ", b"want for nothing?") == unhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    # the object is reusable
    assert h.digest(b"what do ya want for nothing?") == h.digest(b"what do ya ", b"want for nothing?")


def test_digest_sizes():
    assert digest.digest_size("SHA1") == 20
    assert digest.digest_size("SHA256") == 32


def test_unknown_digest_is_local_error():
    raises(LocalProtocolError, digest.digest_size, "WHIRLPOOL")


def test_compare_digest():
    assert digest.compare_digest(b"abc", b"abc")
    assert not digest.compare_digest(b"abc", b"abd")
    assert not digest.compare_digest(b"abc", b"ab")


# FIPS 180-2 appendix C / D examples: "abc", the 896-bit two-block message, and ""
_TWO_BLOCKS = (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
               b"mnopqrstnopqrstu")
_NIST = [
    ("sha512", b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                       "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    ("sha512", _TWO_BLOCKS, "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                            "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"),
    ("sha512", b"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
    ("sha384", b"abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                       "8086072ba1e7cc2358baeca134c825a7"),
    ("sha384", _TWO_BLOCKS, "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712"
                            "fcc7c71a557e2db966c3e9fa91746039"),
]


def test_pure_sha512_and_sha384_nist_vectors():
    # the pure-Python module itself, on both runtimes (hashlib may hide it on CPython)
    from ovpnkx import sha512

    for name, msg, want in _NIST:
        assert getattr(sha512, name)(msg).digest() == unhex(want), (name, msg)


def test_pure_sha512_in_pieces_and_digest_keeps_state():
    from ovpnkx.sha512 import sha512

    h = sha512()
    for i in range(0, len(_TWO_BLOCKS), 7):  # across the 128-byte block edge
        h.update(_TWO_BLOCKS[i:i + 7])
    first = h.digest()
    assert first == unhex(_NIST[1][2]) and h.digest() == first
    h.update(b"x")
    assert h.digest() == sha512(_TWO_BLOCKS + b"x").digest()


def test_hmac_sha384_and_sha512_rfc4231():
    msg = b"what do ya want for nothing?"
    assert digest.hmac_digest("SHA384", b"Jefe", msg) == unhex(
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649")
    assert digest.Hmac("SHA512", b"Jefe").digest(b"what do ya ", b"want for nothing?") == unhex(
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd"
        "caeab1a34d4a6b4b636e070a38bce737")
    # case 6: a key longer than the 128-byte block is hashed first
    assert digest.hmac_digest("SHA512", b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First") \
        == unhex("80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e52"
                 "95e64f73f63f0aec8b915a985d786598")
    assert digest.digest_size("SHA384") == 48 and digest.digest_size("SHA512") == 64
