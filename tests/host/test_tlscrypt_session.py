"""Sessions with tls-crypt and tls-crypt-v2, back to back in virtual time (CPython).

The layout and keys are proven against openvpn in tests/core/test_tlscrypt.py and
tests/interop/test_tlscrypt_interop.py; here the session parts: the V3 reset, the
server learning the client key, the stateless reply and the P_CONTROL_WKC_V1 that
answers it (with room kept for the key in ``tls-mtu``), replayed and tampered
packets dropped and counted, and the hand-window hint naming tls-crypt.
"""

import json
import os

import pytest

from ovpnkx import packet as pk
from ovpnkx import session as sessmod
from ovpnkx.cookie import CookieResponder, continue_sending_after
from ovpnkx.entropy import DeterministicEntropy
from ovpnkx.tlscrypt import TlsCrypt, parse_v2_client_key
from ovpnkx.tlscrypt_server import TlsCryptV2Server, TlsCryptV2ServerKey, parse_v2_server_key
from ovpnkx.wrapconfig import parse_static_key
from ovpnkx_host import pki as pkimod
from ovpnkx_host.crypto_host import HostCrypto
from ovpnkx_host.tls_openssl import OpenSslEngine

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
with open(os.path.join(DATA, "tlscrypt_kat.json")) as _f:
    KAT = json.load(_f)
CRYPTO = HostCrypto()
KEY = parse_static_key(KAT["tls-crypt"]["static_key"])
SK = TlsCryptV2ServerKey(parse_v2_server_key(KAT["tls-crypt-v2"]["v2_server_key"]), CRYPTO)
KC, WKC = parse_v2_client_key(KAT["tls-crypt-v2"]["v2_client_key"])
PEER = b"127.0.0.1:40000"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return pkimod.make_pki(str(tmp_path_factory.mktemp("tlscrypt")))


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _cfg(is_server, wrap, tls_mtu=1250):
    return sessmod.SessionConfig(is_server=is_server, p2mp=True, tls_auth=wrap, hand_window_ms=5000,
                                 timeout_ms=1000, ping_ms=1000, ping_restart_ms=3000, tls_mtu=tls_mtu)


def _client(pki, wrap, tls_mtu=1250):
    ca, cert, key = _read(pki.ca), _read(pki.client_cert), _read(pki.client_key)
    return sessmod.Session(_cfg(False, wrap, tls_mtu), DeterministicEntropy(b"c"), CRYPTO,
                           lambda: OpenSslEngine(False, ca, cert, key, "server"), 0)


def _server(pki, wrap, cookie=None, tls_mtu=1250):
    ca, cert, key = _read(pki.ca), _read(pki.server_cert), _read(pki.server_key)
    return sessmod.Session(_cfg(True, wrap, tls_mtu), DeterministicEntropy(b"s"), CRYPTO,
                           lambda: OpenSslEngine(True, ca, cert, key, "client"), 0, cookie=cookie)


def _run(client, server, now=0, limit=20000, to_server=None, seen=None):
    """Exchange packets until both sides decrypted a ping (or the limit); returns now."""
    while now < limit and not (client.stats["pings_received"] and server.stats["pings_received"]):
        for _ in range(20):
            c_out, s_out = client.packets_to_send(now), server.packets_to_send(now)
            if not c_out and not s_out:
                break
            for p in c_out:
                if seen is not None:
                    seen.append(p)
                for q in (to_server(p) if to_server else [p]):
                    server.receive(q, now)
            for p in s_out:
                client.receive(p, now)
        if client.closed or server.closed:
            break
        timers = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
        now = max(now + 1, min([now + 100] + timers))
    return now


def _events(session):
    return [e.to_dict() for e in session.events()]


@pytest.mark.parametrize("kind", ["tls-crypt", "tls-crypt-v2"])
def test_handshake_and_pings_without_the_cookie(pki, kind):
    """As over TCP: the server session sees the client's reset (V3 with its key for v2)."""
    if kind == "tls-crypt":
        cw, sw = TlsCrypt(KEY, False, CRYPTO), TlsCrypt(KEY, True, CRYPTO)
    else:
        cw, sw = TlsCrypt(KC, False, CRYPTO, wkc=WKC), TlsCryptV2Server(SK)
    client, server = _client(pki, cw), _server(pki, sw)
    first = client.packets_to_send(0)
    assert len(first) == 1
    assert first[0][0] >> 3 == (pk.P_CONTROL_HARD_RESET_CLIENT_V3 if kind == "tls-crypt-v2"
                                else pk.P_CONTROL_HARD_RESET_CLIENT_V2)
    server.receive(first[0], 0)
    _run(client, server)
    assert client.data_ready and server.data_ready, _events(client) + _events(server)
    assert client.stats["pings_received"] and server.stats["pings_received"]
    assert client.stats["dropped"] == server.stats["dropped"] == 0
    if kind == "tls-crypt-v2":
        assert sw.keyed and sw.metadata[0] == 1


def test_v2_stateless_reply_and_wkc_v1_within_tls_mtu(pki):
    """The UDP cookie flow: the first control packet after the reply is a P_CONTROL_WKC_V1
    carrying the key again, and with it still fits ``tls-mtu``."""
    mtu = 700
    responder = CookieResponder(b"k" * 32, lambda: TlsCryptV2Server(SK))
    cw = TlsCrypt(KC, False, CRYPTO, wkc=WKC)
    client = _client(pki, cw, mtu)
    reset = client.packets_to_send(0)[0]
    reply = responder.reply(reset, PEER, 0)
    client.receive(reply, 0)
    out = client.packets_to_send(0)
    first = out[0]
    assert first[0] >> 3 == pk.P_CONTROL_WKC_V1 and first.endswith(WKC)
    assert all(len(p) <= mtu for p in out), [len(p) for p in out]
    assert [p[0] >> 3 for p in out[1:]] == [pk.P_CONTROL_V1] * (len(out) - 1)  # the rest of the hello
    cookie = responder.verify(first, PEER, 0)
    assert cookie is not None
    sw = TlsCryptV2Server(SK)
    server = _server(pki, sw, cookie=cookie, tls_mtu=mtu)
    continue_sending_after(sw, responder.sender)
    for p in out:
        server.receive(p, 0)
    seen = []
    _run(client, server, seen=seen)
    assert client.data_ready and server.data_ready, _events(client) + _events(server)
    assert server.stats["dropped"] == 0 and client.stats["dropped"] == 0
    # only the one packet carried the key again, even if it was resent
    assert [p[0] >> 3 for p in seen].count(pk.P_CONTROL_WKC_V1) == 0


def test_replayed_and_tampered_control_packets_are_dropped_and_counted(pki):
    cw, sw = TlsCrypt(KC, False, CRYPTO, wkc=WKC), TlsCryptV2Server(SK)
    client, server = _client(pki, cw), _server(pki, sw)
    copies = {"n": 0}

    def replay_and_tamper(p):
        if p[0] >> 3 in pk.DATA_OPCODES:
            return [p]
        copies["n"] += 1
        bad = bytearray(p)
        bad[30] ^= 1  # inside the tag
        return [p, p, bytes(bad)]

    _run(client, server, to_server=replay_and_tamper)
    assert client.data_ready and server.data_ready
    reasons = [e["reason"] for e in _events(server) if e["event"] == "dropped"]
    assert server.stats["dropped"] == len(reasons) == 2 * copies["n"]
    assert sum("replay" in r for r in reasons) == copies["n"]
    assert sum("authentication failed" in r for r in reasons) == copies["n"]


@pytest.mark.parametrize("kind", ["tls-crypt", "tls-crypt-v2"])
def test_wrong_key_ends_in_a_hand_window_hint_naming_it(pki, kind):
    if kind == "tls-crypt":
        cw, sw = TlsCrypt(bytes(range(256)), False, CRYPTO), TlsCrypt(KEY, True, CRYPTO)
    else:  # a client key wrapped by another server key
        other = TlsCryptV2ServerKey(bytes(range(128)), CRYPTO)
        cw, sw = TlsCrypt(KC, False, CRYPTO, wkc=other.wrap_client_key(KC, b"\x00")), TlsCryptV2Server(SK)
    client, server = _client(pki, cw), _server(pki, sw)
    _run(client, server, limit=8000)
    assert client.closed and client.close_error
    reason = client.close_reason
    assert "nothing authenticated ever arrived" in reason and ("check the %s key" % kind) in reason, reason
    dropped = [e["reason"] for e in _events(server) if e["event"] == "dropped"]
    assert dropped and all(("client key authentication error" if kind == "tls-crypt-v2"
                            else "packet authentication failed") in r for r in dropped), dropped
    text = repr(_events(client)) + reason + repr(dropped)
    for secret in (KEY, KC, bytes(range(256))):
        assert secret[64:72].hex() not in text and secret[:8].hex() not in text


def test_v2_renegotiation_keeps_the_client_key(pki):
    """A soft reset (key_id 1) runs under the same client key; no WKc is sent again."""
    cw, sw = TlsCrypt(KC, False, CRYPTO, wkc=WKC), TlsCryptV2Server(SK)
    client, server = _client(pki, cw), _server(pki, sw)
    now = _run(client, server)
    assert client.data_ready
    client.renegotiate(now)
    seen = []
    for _ in range(200):
        for p in client.packets_to_send(now):
            seen.append(p)
            server.receive(p, now)
        for p in server.packets_to_send(now):
            client.receive(p, now)
        if client.primary == 1 and server.primary == 1:
            break
        now += 50
    assert client.primary == 1 and server.primary == 1, _events(client) + _events(server)
    control = [p for p in seen if p[0] >> 3 not in pk.DATA_OPCODES]
    assert control and control[0][0] == pk.P_CONTROL_SOFT_RESET_V1 << 3 | 1
    assert not any(p.endswith(WKC) for p in control)
    assert client.stats["dropped"] == server.stats["dropped"] == 0
