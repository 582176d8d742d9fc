"""AES-GCM of ovpnkx.gcm (pure Python over an AES-ECB) against known answers.

Runs on both runtimes: over cryptolib's ECB on MicroPython, over an ECB from
``cryptography`` on CPython, so the same gcm.py text is checked twice.
Vectors: McGrew & Viega, "The Galois/Counter Mode of Operation", test cases
1-18 (AES-192 cases 7-12 only where the runtime's AES has 192-bit keys).
"""

import hashlib
import sys

from ovpnkx import gcm, ghash_full
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

from _support import crypto_backend, raises, unhex

MICROPYTHON = sys.implementation.name == "micropython"

_K3 = "feffe9928665731c6d6a8f9467308308"
_P3 = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
       "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
_P4 = _P3[:120]
_A4 = "feedfacedeadbeeffeedfacedeadbeefabaddad2"
_IV3 = "cafebabefacedbaddecaf888"
_IV5 = "cafebabefacedbad"
_IV6 = ("9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728"
        "c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b")
_K192 = _K3 + _K3[:16]
_K256 = _K3 + _K3

# (case, key, plaintext, iv, aad, ciphertext, tag)
VECTORS = [
    (1, "00" * 16, "", "00" * 12, "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
    (2, "00" * 16, "00" * 16, "00" * 12, "", "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
    (3, _K3, _P3, _IV3, "",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985", "4d5c2af327cd64a62cf35abd2ba6fab4"),
    (4, _K3, _P4, _IV3, _A4,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", "5bc94fbc3221a5db94fae95ae7121a47"),
    (5, _K3, _P4, _IV5, _A4,
     "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c7423"
     "73806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598", "3612d2e79e3b0785561be14aaca2fccb"),
    (6, _K3, _P4, _IV6, _A4,
     "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca7"
     "01e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5", "619cc5aefffe0bfa462af43c1699d050"),
    (7, "00" * 24, "", "00" * 12, "", "", "cd33b28ac773f74ba00ed1f312572435"),
    (8, "00" * 24, "00" * 16, "00" * 12, "", "98e7247c07f0fe411c267e4384b0f600", "2ff58d80033927ab8ef4d4587514f0fb"),
    (9, _K192, _P3, _IV3, "",
     "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c"
     "7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710acade256", "9924a7c8587336bfb118024db8674a14"),
    (10, _K192, _P4, _IV3, _A4,
     "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c"
     "7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710", "2519498e80f1478f37ba55bd6d27618c"),
    (11, _K192, _P4, _IV5, _A4,
     "0f10f599ae14a154ed24b36e25324db8c566632ef2bbb34f8347280fc4507057"
     "fddc29df9a471f75c66541d4d4dad1c9e93a19a58e8b473fa0f062f7", "65dcc57fcf623a24094fcca40d3533f8"),
    (12, _K192, _P4, _IV6, _A4,
     "d27e88681ce3243c4830165a8fdcf9ff1de9a1d8e6b447ef6ef7b79828666e45"
     "81e79012af34ddd9e2f037589b292db3e67c036745fa22e7e9b7373b", "dcf566ff291c25bbb8568fc3d376a6d9"),
    (13, "00" * 32, "", "00" * 12, "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    (14, "00" * 32, "00" * 16, "00" * 12, "", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
    (15, _K256, _P3, _IV3, "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad", "b094dac5d93471bdec1a502270e3cc6c"),
    (16, _K256, _P4, _IV3, _A4,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", "76fc6ece0f4e1768cddf8853bb2d551b"),
    (17, _K256, _P4, _IV5, _A4,
     "c3762df1ca787d32ae47c13bf19844cbaf1ae14d0b976afac52ff7d79bba9de0"
     "feb582d33934a4f0954cc2363bc73f7862ac430e64abe499f47c9b1f", "3a337dbf46a792c45e454913fe2ea8f2"),
    (18, _K256, _P4, _IV6, _A4,
     "5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf4"
     "0fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f", "a44a8266ee1c8eb0c8b5d4cf5ae9f19a"),
]


def _gcm(key, compact=False):
    """AesGcm over this runtime's ECB, or None when its AES lacks this key size."""
    try:
        return gcm.AesGcm(crypto_backend().ecb_encryptor(key), compact)
    except (LocalProtocolError, ValueError):
        return None


def _cases():
    out = []
    for case, k, p, iv, a, c, t in VECTORS:
        g = _gcm(unhex(k))
        if g is not None:
            out.append((case, g, unhex(p), unhex(iv), unhex(a), unhex(c), unhex(t)))
    return out


def test_vectors_available():
    # AES-192 exists on CPython only: cryptolib refuses 24-byte keys
    assert len(_cases()) == (12 if MICROPYTHON else 18)


def test_vectors_seal():
    for case, g, p, iv, a, c, t in _cases():
        assert g.seal(iv, p, a) == c + t, "case %d" % case


def test_vectors_open():
    for case, g, p, iv, a, c, t in _cases():
        assert g.open(iv, c + t, a) == p, "case %d" % case


def test_vectors_with_the_compact_table():
    for case, k, p, iv, a, c, t in VECTORS:
        g = _gcm(unhex(k), compact=True)
        if g is not None:
            assert g.seal(unhex(iv), unhex(p), unhex(a)) == unhex(c) + unhex(t), "case %d" % case
            assert g.open(unhex(iv), unhex(c) + unhex(t), unhex(a)) == unhex(p), "case %d" % case


def test_tampering_is_refused():
    for case, g, p, iv, a, c, t in _cases():
        good = c + t
        for i in range(0, len(good), 7):
            bad = bytearray(good)
            bad[i] ^= 0x01
            raises(RemoteProtocolError, g.open, iv, bytes(bad), a)
        raises(RemoteProtocolError, g.open, iv, good, a + b"x")
        raises(RemoteProtocolError, g.open, iv[:-1] + bytes((iv[-1] ^ 1,)), good, a)


def test_shorter_than_tag_is_refused():
    g = _gcm(bytes(16))
    for n in range(16):
        raises(RemoteProtocolError, g.open, bytes(12), bytes(n), b"")


def test_every_length_round_trips():
    g = _gcm(bytes(range(32)))
    nonce = bytes(range(12))
    for n in range(0, 70):
        pt = bytes((i * 13) & 0xFF for i in range(n))
        sealed = g.seal(nonce, pt, b"hdr")
        assert len(sealed) == n + 16
        assert g.open(nonce, sealed, b"hdr") == pt


def test_long_message_spanning_counter_batches():
    # 3000 bytes = 188 blocks, more than one ECB batch; answers from OpenSSL
    pt = bytes((i * 7 + 3) & 0xFF for i in range(3000))
    answers = {
        16: ("06459835ff1bb903ee919749194969bdd447264731b5bd4d57d646ab7cb66fdc", "327e7e40098471d180590df67b19641f"),
        32: ("310c5fd035cfd1e12facdb5f396bc6de5801fe395adf344652b22304a36593a0", "4fa78fc4f2cfa5a84521981419bd28a7"),
    }
    for klen in (16, 32):
        g = _gcm(bytes(range(klen)))
        sealed = g.seal(bytes(range(12)), pt, b"aad")
        assert hashlib.sha256(sealed).digest() == unhex(answers[klen][0])
        assert sealed[-16:] == unhex(answers[klen][1])
        assert g.open(bytes(range(12)), sealed, b"aad") == pt


def test_counter_wraps_in_32_bits():
    # inc32 wraps the low 32 bits only; reachable with hashed (non-96-bit) nonces
    ecb = crypto_backend().ecb_encryptor(bytes(16))
    g = gcm.AesGcm(ecb)
    j0 = bytes(range(12)) + b"\xff\xff\xff\xfe"
    stream = g._stream(j0, 16 * 3)
    blocks = [j0, bytes(range(12)) + b"\xff\xff\xff\xff", bytes(range(12)) + bytes(4),
              bytes(range(12)) + b"\x00\x00\x00\x01"]
    assert stream == ecb(b"".join(blocks))


def test_ghash_paths_agree():
    h = int.from_bytes(crypto_backend().ecb_encryptor(bytes(range(16)))(bytes(16)), "big")
    data = bytes((i * 31 + 5) & 0xFF for i in range(160))
    portable = ghash_full.PortableGhash(h)
    used = ghash_full.full_ghash()(h)
    compact = gcm._CompactGhash(h)
    for y in (0, 1, (1 << 128) - 1, 0x0123456789ABCDEF0123456789ABCDEF):
        expected = y
        for off in range(0, len(data), 16):
            expected = gcm.gf_mul(expected ^ int.from_bytes(data[off:off + 16], "big"), h)
        assert portable.ghash(y, data) == expected
        assert used.ghash(y, data) == expected
        assert compact.ghash(y, data) == expected
    assert ghash_full.ghash_backend() in ("viper", "portable")
    if not MICROPYTHON:
        assert ghash_full.ghash_backend() == "portable"


def test_empty_nonce_is_local_error():
    raises(LocalProtocolError, _gcm(bytes(16)).seal, b"", b"x", b"")


def test_counter_blocks_of_a_batch():
    # a batch's counters are worked out, not cut from a kept 64-block integer: every size of batch
    for k in range(1, 65):  # gcm._BATCH (a const(): no attribute on MicroPython)
        want = b"".join(i.to_bytes(16, "big") for i in range(k))
        assert gcm._counters(k).to_bytes(16 * k, "big") == want


def test_a_packet_longer_than_a_batch():
    # 100 blocks: one full batch and one of 36, each counter block once, in order
    key = bytes(range(16))
    ecb = crypto_backend().ecb_encryptor(key)
    g = _gcm(key)
    j0 = bytes(12) + b"\x00\x00\x00\x01"
    blocks = [j0] + [bytes(12) + (2 + i).to_bytes(4, "big") for i in range(100)]
    assert g._stream(j0, 16 * 100) == ecb(b"".join(blocks))
