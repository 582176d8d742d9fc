"""TLS 1.0 PRF, OpenVPN key expansion and key2 split against known answers.

tls1_prf: OpenSSL's published NIST vectors and odd-length secrets computed by
``openssl kdf ... TLS1-PRF``; plus a plain re-derivation written here from
RFC 2246 with hashlib alone. Key expansion: vectors captured from the real
openvpn 2.6.14 (tests/data/KAT_NOTE.md).
"""

import hashlib

from ovpnkx import prf
from ovpnkx.errors import LocalProtocolError

from _support import load_json, raises, unhex

_KAT = load_json("kat_openvpn.json")


# --- an independent TLS 1.0 PRF, straight from RFC 2104 and RFC 2246 ----------

def _plain_hmac(ctor, key, msg):
    if len(key) > 64:
        key = ctor(key).digest()
    key = key + bytes(64 - len(key))
    inner = ctor(bytes(b ^ 0x36 for b in key) + msg).digest()
    return ctor(bytes(b ^ 0x5C for b in key) + inner).digest()


def _plain_p_hash(ctor, secret, seed, n):
    out = b""
    a = seed
    while len(out) < n:
        a = _plain_hmac(ctor, secret, a)
        out += _plain_hmac(ctor, secret, a + seed)
    return out[:n]


def _plain_prf(secret, seed, n):
    ls = (len(secret) + 1) // 2  # L_S1 = L_S2 = ceil(L_S / 2)
    s1 = secret[:ls]
    s2 = secret[len(secret) - ls:]
    a = _plain_p_hash(hashlib.md5, s1, seed, n)
    b = _plain_p_hash(hashlib.sha1, s2, seed, n)
    return bytes(x ^ y for x, y in zip(a, b))


# --- tls1_prf ---------------------------------------------------------------------

def test_tls1_prf_known_vectors():
    vectors = _KAT["tls1_prf"]
    assert len(vectors) >= 8
    odd = 0
    for v in vectors:
        secret = unhex(v["secret"])
        out = unhex(v["output"])
        odd += len(secret) % 2
        assert prf.tls1_prf(secret, unhex(v["seed"]), len(out)) == out, v["name"]
    assert odd >= 3  # odd secret lengths share the middle byte


def test_tls1_prf_matches_plain_formula_for_many_lengths():
    seed = b"OpenVPN master secret" + bytes(range(64))
    for slen in (0, 1, 2, 3, 7, 16, 47, 48, 49, 64, 65, 129, 130):
        secret = bytes((i * 37 + slen) & 0xFF for i in range(slen))
        for n in (0, 1, 15, 16, 20, 21, 48, 100):
            assert prf.tls1_prf(secret, seed, n) == _plain_prf(secret, seed, n), (slen, n)


def test_tls1_prf_odd_secret_shares_middle_byte():
    # with a 3-byte secret, changing the middle byte changes both halves' output,
    # changing the first byte only the MD5 half: check against the formula
    seed = b"label" + b"seed"
    base = prf.tls1_prf(b"\x01\x02\x03", seed, 32)
    assert base == _plain_prf(b"\x01\x02\x03", seed, 32)
    assert base != prf.tls1_prf(b"\x01\x02\x04", seed, 32)
    # a formula that split 1+2 would not equal this
    wrong = bytes(x ^ y for x, y in zip(_plain_p_hash(hashlib.md5, b"\x01", seed, 32),
                                        _plain_p_hash(hashlib.sha1, b"\x02\x03", seed, 32)))
    assert base != wrong


def test_tls1_prf_output_is_prefix_stable():
    secret = bytes(range(48))
    assert prf.tls1_prf(secret, b"x", 256)[:37] == prf.tls1_prf(secret, b"x", 37)
    assert prf.tls1_prf(secret, b"x", 0) == b""


def test_tls1_prf_rejects_negative_length():
    raises(LocalProtocolError, prf.tls1_prf, b"k", b"s", -1)


# --- key expansion against the real openvpn ------------------------------------------

def _expand(v):
    return prf.openvpn_key_expansion(
        unhex(v["client_pre_master"]), unhex(v["client_random1"]), unhex(v["client_random2"]),
        unhex(v["server_random1"]), unhex(v["server_random2"]),
        unhex(v["client_session_id"]), unhex(v["server_session_id"]))


def test_key_expansion_matches_openvpn_key2():
    vectors = _KAT["openvpn"]
    assert len(vectors) >= 2
    for v in vectors:
        key2 = _expand(v)
        assert len(key2) == prf.KEY2_LEN
        klen, hlen = v["cipher_key_len"], v["hmac_key_len"]
        # key2_print: "Master Encrypt" = keys[0], "Master Decrypt" = keys[1]
        assert key2[0:klen] == unhex(v["keys0_cipher"]), v["name"]
        assert key2[64:64 + hlen] == unhex(v["keys0_hmac"]), v["name"]
        assert key2[128:128 + klen] == unhex(v["keys1_cipher"]), v["name"]
        assert key2[192:192 + hlen] == unhex(v["keys1_hmac"]), v["name"]


def test_key2_split_matches_each_side_of_openvpn():
    for v in _KAT["openvpn"]:
        key2 = _expand(v)
        klen, hlen = v["cipher_key_len"], v["hmac_key_len"]
        for role, is_server in (("server", True), ("client", False)):
            enc, dec = prf.key2_split(key2, is_server)
            assert enc.cipher_key(klen) == unhex(v[role + "_outgoing_cipher_key"]), (v["name"], role)
            assert dec.cipher_key(klen) == unhex(v[role + "_incoming_cipher_key"]), (v["name"], role)
            assert enc.hmac_key(hlen) == unhex(v[role + "_outgoing_hmac_key"]), (v["name"], role)
            assert dec.hmac_key(hlen) == unhex(v[role + "_incoming_hmac_key"]), (v["name"], role)


def test_implicit_iv_matches_openvpn_aead_packets():
    aead = [v for v in _KAT["openvpn"] if v["server_outgoing_implicit_iv"]]
    assert len(aead) >= 2
    for v in aead:
        key2 = _expand(v)
        s_enc, s_dec = prf.key2_split(key2, True)
        c_enc, c_dec = prf.key2_split(key2, False)
        assert s_enc.implicit_iv() == unhex(v["server_outgoing_implicit_iv"]), v["name"]
        assert s_dec.implicit_iv() == unhex(v["server_incoming_implicit_iv"]), v["name"]
        assert c_enc.implicit_iv() == unhex(v["client_outgoing_implicit_iv"]), v["name"]
        assert c_dec.implicit_iv() == unhex(v["client_incoming_implicit_iv"]), v["name"]


def test_key_expansion_uses_every_input():
    v = _KAT["openvpn"][0]
    args = [unhex(v[k]) for k in ("client_pre_master", "client_random1", "client_random2",
                                  "server_random1", "server_random2",
                                  "client_session_id", "server_session_id")]
    base = prf.openvpn_key_expansion(*args)
    for i in range(len(args)):
        changed = list(args)
        changed[i] = bytes([changed[i][0] ^ 1]) + changed[i][1:]
        assert prf.openvpn_key_expansion(*changed) != base, i
    # the session ids are ordered client, server
    swapped = args[:5] + [args[6], args[5]]
    assert prf.openvpn_key_expansion(*swapped) != base


def test_key_expansion_checks_lengths():
    good = [bytes(48), bytes(32), bytes(32), bytes(32), bytes(32), bytes(8), bytes(8)]
    prf.openvpn_key_expansion(*good)
    for i in range(len(good)):
        for delta in (-1, 1):
            bad = list(good)
            bad[i] = bytes(len(bad[i]) + delta)
            raises(LocalProtocolError, prf.openvpn_key_expansion, *bad)
    bad = list(good)
    bad[0] = "x" * 48
    raises(LocalProtocolError, prf.openvpn_key_expansion, *bad)


# --- key2_split and KeyDirection -----------------------------------------------------

def test_key2_split_layout_and_roles():
    key2 = bytes(range(256))
    c_enc, c_dec = prf.key2_split(key2, False)
    s_enc, s_dec = prf.key2_split(key2, True)
    assert c_enc.cipher == key2[0:64] and c_enc.hmac == key2[64:128]
    assert c_dec.cipher == key2[128:192] and c_dec.hmac == key2[192:256]
    assert s_enc.cipher == c_dec.cipher and s_enc.hmac == c_dec.hmac
    assert s_dec.cipher == c_enc.cipher and s_dec.hmac == c_enc.hmac
    assert c_enc.cipher_key(32) == key2[0:32]
    assert c_enc.hmac_key(20) == key2[64:84]
    assert c_enc.implicit_iv() == key2[64:72]
    assert s_enc.implicit_iv() == key2[192:200]


def test_key2_split_rejects_wrong_length():
    raises(LocalProtocolError, prf.key2_split, bytes(255), True)
    raises(LocalProtocolError, prf.key2_split, bytes(257), False)


def test_key_direction_bounds_and_repr():
    kd = prf.KeyDirection(bytes(64), bytes(range(64)))
    assert kd.cipher_key(0) == b"" and kd.cipher_key(64) == bytes(64)
    raises(LocalProtocolError, kd.cipher_key, 65)
    raises(LocalProtocolError, kd.hmac_key, 65)
    raises(LocalProtocolError, kd.cipher_key, -1)
    raises(LocalProtocolError, prf.KeyDirection, bytes(63), bytes(64))
    raises(LocalProtocolError, prf.KeyDirection, bytes(64), bytes(65))
    assert "00" not in repr(kd) and "01" not in repr(kd)


def test_constants():
    assert prf.EKM_LABEL == b"EXPORTER-OpenVPN-datakeys"
    assert prf.KEY2_LEN == 256
