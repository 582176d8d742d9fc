"""HMAC known answers from RFC 2202 (MD5, SHA1) and RFC 4231 (SHA256)."""

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
