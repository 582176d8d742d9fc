"""Hypothesis properties of tls-crypt and tls-crypt-v2 unwrapping (CPython only).

Whatever bytes arrive, ``unwrap`` raises nothing but RemoteProtocolError and leaves
the wrapper as it was; any change to a genuine packet is refused; the portable
AES-CTR (the MicroPython path) agrees with OpenSSL's; client keys wrap and unwrap.
"""

import json
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx import packet as pk
from ovpnkx.ctr import ctr_crypt
from ovpnkx.errors import RemoteProtocolError
from ovpnkx.tlscrypt import METADATA_MAX, TlsCrypt, parse_v2_client_key
from ovpnkx.tlscrypt_server import TlsCryptV2Server, TlsCryptV2ServerKey, parse_v2_server_key
from ovpnkx.wrapconfig import parse_static_key
from ovpnkx_host.crypto_host import HostCrypto

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
with open(os.path.join(DATA, "tlscrypt_kat.json")) as _f:
    KAT = json.load(_f)
CRYPTO = HostCrypto()
KEY = parse_static_key(KAT["tls-crypt"]["static_key"])
SK = TlsCryptV2ServerKey(parse_v2_server_key(KAT["tls-crypt-v2"]["v2_server_key"]), CRYPTO)
KC, WKC = parse_v2_client_key(KAT["tls-crypt-v2"]["v2_client_key"])
T0 = 1700000000000

sids = st.binary(min_size=8, max_size=8).filter(any)
plain_ops = st.sampled_from([op for op in pk.CONTROL_OPCODES
                             if op not in (pk.P_CONTROL_HARD_RESET_CLIENT_V3, pk.P_CONTROL_WKC_V1)])


@st.composite
def plains(draw, ops=plain_ops):
    """A plain control packet as the wrappers see it: op|key_id, session_id, the rest."""
    return bytes([draw(ops) << 3 | draw(st.integers(0, 7))]) + draw(sids) + draw(st.binary(max_size=400))


def _genuine(kind):
    """(a fresh receiving wrapper, a genuine packet for it, its plain form)."""
    if kind == "v1":
        plain = b"\x38" + b"\x01" * 8 + b"\x00" * 5
        return TlsCrypt(KEY, True, CRYPTO), TlsCrypt(KEY, False, CRYPTO).wrap(plain, T0), plain
    plain = b"\x50" + b"\x01" * 8 + b"\x00" * 5
    return TlsCryptV2Server(SK), TlsCrypt(KC, False, CRYPTO, wkc=WKC).wrap(plain, T0), plain


@settings(max_examples=150, deadline=None)
@given(plains(), st.booleans())
def test_round_trip_both_ways(plain, v2):
    if v2:
        client, server = TlsCrypt(KC, False, CRYPTO, wkc=WKC), TlsCryptV2Server(SK)
        server.unwrap(client.wrap(b"\x50" + plain[1:9] + b"\x00" * 5, T0), T0)  # learns Kc
    else:
        client, server = TlsCrypt(KEY, False, CRYPTO), TlsCrypt(KEY, True, CRYPTO)
    assert server.unwrap(client.wrap(plain, T0), T0) == plain
    assert client.unwrap(server.wrap(plain, T0), T0) == plain


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1400), st.sampled_from(["v1", "v1-client", "v2"]))
def test_any_bytes_raise_only_remote_protocol_error_and_change_nothing(data, kind):
    if kind == "v1-client":
        wrapper = TlsCrypt(KEY, False, CRYPTO)
        plain = b"\x40" + b"\x02" * 8 + b"\x00" * 5
        genuine = TlsCrypt(KEY, True, CRYPTO).wrap(plain, T0)
    else:
        wrapper, genuine, plain = _genuine(kind)
    try:
        wrapper.unwrap(data, T0)
    except RemoteProtocolError:
        pass
    else:  # only a forgery could pass: impossible without the key
        raise AssertionError("random bytes were accepted")
    assert wrapper.unwrap(genuine, T0) == plain


@st.composite
def mutations(draw, n):
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "replace"]))
    if kind == "flip":
        return kind, draw(st.integers(0, n - 1)), 1 << draw(st.integers(0, 7))
    if kind == "truncate":
        return kind, draw(st.integers(0, n - 1)), 0
    if kind == "extend":
        return kind, 0, draw(st.binary(min_size=1, max_size=20))
    return kind, draw(st.integers(0, n - 1)), draw(st.integers(1, 255))


def _mutate(wire, m):
    kind, i, arg = m
    if kind == "flip" or kind == "replace":
        b = bytearray(wire)
        b[i] ^= arg
        return bytes(b)
    if kind == "truncate":
        return wire[:i]
    return wire + arg


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["v1", "v2"]), st.data())
def test_any_change_to_a_genuine_packet_is_refused(kind, data):
    wrapper, genuine, plain = _genuine(kind)
    bad = _mutate(genuine, data.draw(mutations(len(genuine))))
    try:
        wrapper.unwrap(bad, T0)
    except RemoteProtocolError:
        pass
    else:
        raise AssertionError("a changed packet was accepted")
    assert wrapper.unwrap(genuine, T0) == plain
    if kind == "v2":
        assert wrapper.keyed


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=120))
def test_each_packet_is_accepted_once_whatever_the_order(order):
    client, server = TlsCrypt(KEY, False, CRYPTO), TlsCrypt(KEY, True, CRYPTO)
    wires = [client.wrap(b"\x20" + b"\x01" * 8 + bytes([i]) * 5, T0) for i in range(41)]
    seen = set()
    for i in order:
        try:
            server.unwrap(wires[i], T0)
            assert i not in seen
            seen.add(i)
        except RemoteProtocolError as exc:
            assert i in seen and "replay" in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.one_of(st.binary(min_size=16, max_size=16),
                                                      st.integers(2**128 - 80, 2**128 - 1).map(
                                                          lambda v: v.to_bytes(16, "big"))),
       st.binary(max_size=1300))
def test_portable_ctr_is_openssls_ctr(key, iv, data):
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    assert ctr_crypt(CRYPTO.ecb_encryptor(key), iv, data) == enc.update(data) + enc.finalize()


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=256, max_size=256), st.binary(min_size=1, max_size=METADATA_MAX))
def test_client_keys_wrap_and_unwrap(kc, metadata):
    wkc = SK.wrap_client_key(kc, metadata)
    assert len(wkc) == 32 + 256 + len(metadata) + 2
    assert SK.unwrap_client_key(wkc) == (kc, metadata)
