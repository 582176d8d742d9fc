"""Sans-IO Session tests: a client and a server Session wired back to back in virtual time.

CPython only (the host's TLS engine and crypto); the MicroPython side is proven
against real openvpn in tests/interop. Deterministic entropy makes every run the
same. Covers: success both ways (PRF and tls-ekm, with and without tls-auth),
and failures that must end only the session they hit, at the right virtual time,
with a reason naming the cause: wrong CA, wrong tls-auth key, a silent peer,
AUTH_FAILED, ping-restart, corrupt data packets, garbage control packets. Every
run also checks that no byte of pre_master, key2 (hence of any derived key) or
the tls-auth key shows up in any event, reason or exception text.
"""

import pytest

from ovpnkx import compress as comp
from ovpnkx import packet as pk
from ovpnkx import prf as prfmod
from ovpnkx import session as sessmod
from ovpnkx.datachannel import PING_STRING
from ovpnkx.entropy import DeterministicEntropy
from ovpnkx.tlswrap import TlsAuth
from ovpnkx.wrapconfig import parse_static_key
from ovpnkx_host import pki as pkimod
from ovpnkx_host.crypto_host import HostCrypto
from ovpnkx_host.tls_openssl import OpenSslEngine
from ovpnkx_device.exitnotify import ExitNotification

HAND_WINDOW_MS = 5000
TIMEOUT_MS = 1000


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("session")
    return pkimod.make_pki(str(tmp / "a")), pkimod.make_pki(str(tmp / "b"))


@pytest.fixture
def secrets(monkeypatch):
    """Every key2 the sessions derive (key2_split sees both PRF and tls-ekm keys)."""
    seen = []
    real = prfmod.key2_split  # the session imports it when its keys are due

    def recording(key2, is_server):
        seen.append(bytes(key2))
        return real(key2, is_server)

    monkeypatch.setattr(prfmod, "key2_split", recording)
    return seen


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _tls(pki, is_server: bool, ca=None):
    ca_pem = _read(ca or pki.ca)
    if is_server:
        return lambda: OpenSslEngine(True, ca_pem, _read(pki.server_cert), _read(pki.server_key), "client")
    return lambda: OpenSslEngine(False, ca_pem, _read(pki.client_cert), _read(pki.client_key), "server")


def _tls_auth(path: str, direction: int):
    with open(path) as f:
        return TlsAuth(parse_static_key(f.read()), direction, "SHA1")


class Pair:
    """A client and a server Session exchanging packets in virtual time."""

    def __init__(self, pki, seed: bytes = b"seed", client_ca=None, ask_ekm: bool = False, tls_auth=None,
                 client_tls_auth=None, username=None, password=None, ping_ms: int = 1000,
                 ping_restart_ms: int = 3000, client_extra=None, server_extra=None) -> None:
        """``client_extra``/``server_extra``: more SessionConfig arguments for each side."""
        common = dict(hand_window_ms=HAND_WINDOW_MS, timeout_ms=TIMEOUT_MS, ask_ekm=ask_ekm, key_fingerprint=True)
        self.client_cfg = sessmod.SessionConfig(
            is_server=False, p2mp=True, username=username, password=password,
            tls_auth=_tls_auth(client_tls_auth or tls_auth, 1) if tls_auth else None, **common,
            **(client_extra or {}))
        self.server_cfg = sessmod.SessionConfig(
            is_server=True, ping_ms=ping_ms, ping_restart_ms=ping_restart_ms, peer_id=3,
            tls_auth=_tls_auth(tls_auth, 0) if tls_auth else None, **common, **(server_extra or {}))
        self.crypto = HostCrypto()
        self.client = sessmod.Session(self.client_cfg, DeterministicEntropy(seed + b"/client"), self.crypto,
                                      _tls(pki, False, client_ca), 0)
        self.server = sessmod.Session(self.server_cfg, DeterministicEntropy(seed + b"/server"), self.crypto,
                                      _tls(pki, True), 0)
        self.now = 0
        self.events = {"client": [], "server": []}
        self.to_server = None  # optional filter: packet -> list of packets
        self.to_client = None
        self.deliver = {"client": True, "server": True}

    def _collect(self) -> None:
        self.events["client"] += self.client.events()
        self.events["server"] += self.server.events()

    def step(self) -> None:
        """Exchange everything due now, then jump to the next timer (at most 100 ms)."""
        for _ in range(20):
            c_out = self.client.packets_to_send(self.now)
            s_out = self.server.packets_to_send(self.now)
            if not c_out and not s_out:
                break
            for p in c_out:
                for q in (self.to_server(p) if self.to_server else [p]):
                    if self.deliver["server"]:
                        self.server.receive(q, self.now)
            for p in s_out:
                for q in (self.to_client(p) if self.to_client else [p]):
                    if self.deliver["client"]:
                        self.client.receive(q, self.now)
        self._collect()
        timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]
        self.now = max(self.now + 1, min([self.now + 100] + timers))

    def run_until(self, done, limit_ms: int = 30000) -> None:
        while not done() and self.now < limit_ms:
            self.step()
        self._collect()

    def text(self) -> str:
        """Everything a log or a user would see: events, reasons, reprs of the public objects."""
        parts = []
        for side in ("client", "server"):
            s = getattr(self, side)
            parts += [repr(e) for e in self.events[side]] + [str(e.to_dict()) for e in self.events[side]]
            parts += [str(s.close_reason), repr(s.stats), repr(s.push_reply_text), repr(s.peer_info)]
            parts += [repr(ks) for ks in s.key_sources.values()]
            parts += [repr(ch.state) for ch in s.channels.values()]
        return "\n".join(parts)

    def closed(self, side: str) -> "sessmod.Event":
        ev = [e for e in self.events[side] if e.kind == "closed"]
        assert len(ev) == 1, self.events[side]
        return ev[0]


def _assert_no_secrets(pair: Pair, key2s: list, extra=()) -> None:
    """No 6-byte window of any secret appears as hex (either case) or as a bytes repr."""
    text = pair.text()
    lower = text.lower()
    secrets = list(key2s) + list(extra)
    for s in (pair.client, pair.server):
        secrets += [ks.pre_master for ks in s.key_sources.values() if ks.pre_master]
    assert secrets
    for secret in secrets:
        for i in range(0, len(secret) - 6 + 1):
            w = secret[i:i + 6]
            assert w.hex() not in lower, "secret bytes leaked into the events/log text"
            if len(repr(w)) >= 12:  # shorter reprs are mostly printable and could occur by chance
                assert repr(w)[2:-1] not in text, "secret bytes leaked into the events/log text"


def _kinds(events, kind: str) -> list:
    return [e for e in events if e.kind == kind]


def _pings_both_ways(pair: Pair, n: int = 2) -> None:
    pair.run_until(lambda: pair.client.stats["pings_received"] >= n and pair.server.stats["pings_received"] >= n)
    assert pair.client.stats["pings_received"] >= n, pair.events["client"]
    assert pair.server.stats["pings_received"] >= n, pair.events["server"]


@pytest.mark.parametrize("ekm,tls_auth", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["prf", "tls-ekm", "prf-tls-auth", "tls-ekm-tls-auth"])
def test_success_both_ways_leaks_nothing(pkis, secrets, ekm, tls_auth):
    pki = pkis[0]
    pair = Pair(pki, ask_ekm=ekm, tls_auth=pki.tls_auth if tls_auth else None, username="alice",
                password="hunter2-password")
    _pings_both_ways(pair)
    keys = {side: _kinds(pair.events[side], "keys") for side in ("client", "server")}
    assert keys["client"][0].method == keys["server"][0].method == ("tls-ekm" if ekm else "prf")
    assert keys["client"][0].fingerprint == keys["server"][0].fingerprint
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0
    pair.client.close(pair.now)
    pair.step()
    assert pair.closed("client").reason == "closed by us" and not pair.client.close_error
    assert pair.closed("server").reason == "peer sent OCC EXIT"
    assert len(secrets) == 2 and secrets[0] == secrets[1]
    with open(pki.tls_auth) as f:
        static = parse_static_key(f.read())  # the tls-auth key must not show either
    _assert_no_secrets(pair, secrets, [static] if tls_auth else [])
    assert "hunter2-password" not in pair.text()


def test_deterministic_entropy_gives_the_same_keys(pkis, secrets):
    for _ in range(2):
        pair = Pair(pkis[0], seed=b"same")
        pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    assert len(secrets) == 4 and secrets[0] == secrets[2]  # PRF: a function of the entropy only


def test_wrong_ca_ends_the_client_at_once(pkis, secrets):
    pair = Pair(pkis[0], client_ca=pkis[1].ca)
    pair.run_until(lambda: pair.client.closed)
    ev = pair.closed("client")
    assert "certificate verify failed" in ev.reason and ev.error
    assert ev.at_ms < HAND_WINDOW_MS
    assert not secrets
    # the server, told nothing (as openvpn would be), ends by its hand-window
    pair.run_until(lambda: pair.server.closed)
    sv = pair.closed("server")
    assert sv.at_ms == HAND_WINDOW_MS
    assert "TLS key negotiation failed to occur within 5 seconds" in sv.reason
    _assert_no_secrets(pair, secrets)


def test_wrong_tls_auth_key(pkis, secrets):
    pair = Pair(pkis[0], tls_auth=pkis[0].tls_auth, client_tls_auth=pkis[1].tls_auth)
    pair.run_until(lambda: pair.client.closed and pair.server.closed)
    ev = pair.closed("client")
    assert ev.at_ms == HAND_WINDOW_MS
    assert "no answer from the peer" in ev.reason and "tls-auth key" in ev.reason
    # the server dropped and counted every one of our packets, and never made a key_state
    assert pair.server.stats["dropped"] == pair.server.stats["packets_in"] > 0
    assert not pair.server.channels
    assert all("HMAC" in e.reason or "authentic" in e.reason for e in _kinds(pair.events["server"], "dropped"))
    # its hand-window runs even so: no session lingers
    assert pair.closed("server").at_ms == HAND_WINDOW_MS
    _assert_no_secrets(pair, secrets)


def test_silent_server_hand_window(pkis):
    pair = Pair(pkis[0])
    pair.deliver["server"] = False  # the server hears nothing and so says nothing
    pair.run_until(lambda: pair.client.closed and pair.server.closed)
    ev = pair.closed("client")
    assert ev.at_ms == HAND_WINDOW_MS and ev.error
    assert ev.reason == ("TLS key negotiation failed to occur within 5 seconds (no answer from the peer; no packet "
                         "ever arrived: is the server up, and are its address, port and proto right?)")
    assert pair.client.stats["packets_out"] >= 2  # the reset was retransmitted meanwhile
    # a server session that never saw a reset (a silent TCP peer) ends by its hand-window too
    sv = pair.closed("server")
    assert sv.at_ms == HAND_WINDOW_MS and "no answer from the peer" in sv.reason


def test_server_refusing_our_certificate_in_the_handshake(pkis):
    """The server ends its TLS without a word (openvpn does): the client names the likely cause."""
    pair = Pair(pkis[0])
    seen = []

    def swallow_after_hello(p: bytes):
        seen.append(p)
        # let the reset and the ClientHello through, then the server hears nothing more
        return [p] if len([q for q in seen if pk.opcode_key_id(q)[0] == pk.P_CONTROL_V1]) <= 1 else []

    pair.to_server = swallow_after_hello
    pair.run_until(lambda: pair.client.closed)
    ev = pair.closed("client")
    assert ev.at_ms == HAND_WINDOW_MS
    assert "went silent during the TLS handshake" in ev.reason and "refused our certificate" in ev.reason


def test_auth_failed(pkis, secrets):
    pair = Pair(pkis[0], username="alice", password="hunter2-password")

    def refuse(channel, now_ms):
        channel.write_message("AUTH_FAILED,wrong password")
        return False

    pair.server.negotiation.send_push_reply = refuse  # a server that checks the password and says no
    pair.run_until(lambda: pair.client.closed)
    ev = pair.closed("client")
    assert ev.error and ev.at_ms < HAND_WINDOW_MS
    assert ev.reason == "auth failed: the server refused our username/password: wrong password"
    assert "hunter2-password" not in pair.text()
    assert not pair.client.data_ready


def test_ping_restart_when_the_server_goes_silent(pkis):
    pair = Pair(pkis[0], ping_ms=1000, ping_restart_ms=3000)
    pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    silent_from = pair.now
    pair.deliver["client"] = False
    pair.run_until(lambda: pair.client.closed)
    ev = pair.closed("client")
    assert ev.reason == "ping-restart: nothing from the peer for 3 s"
    assert silent_from + 2000 <= ev.at_ms <= silent_from + 3000 + 100


def test_corrupt_data_packets_are_counted_not_fatal(pkis, secrets):
    pair = Pair(pkis[0], ping_restart_ms=10000)  # three lost pings must not trip ping-restart
    pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    flips = []

    def corrupt_data(p: bytes):
        op, _ = pk.opcode_key_id(p)
        if op in (pk.P_DATA_V1, pk.P_DATA_V2) and len(flips) < 3:
            flips.append(p)
            b = bytearray(p)
            b[-1] ^= 0x01
            return [bytes(b), b"\x48", p[:5]]  # flipped tag; truncated copies
        return [p]

    pair.to_client = corrupt_data
    _pings_both_ways(pair, 4)
    assert len(flips) == 3
    assert pair.client.stats["decrypt_errors"] == 9
    assert not pair.client.closed and not pair.server.closed
    errs = _kinds(pair.events["client"], "decrypt_error")
    assert len(errs) == 9 and all(e.reason for e in errs)
    _assert_no_secrets(pair, secrets)


def test_garbage_control_packets_do_not_stop_a_handshake(pkis, secrets):
    """Garbage, truncated and wrong-session packets mixed into the server's stream: dropped, counted."""
    pair = Pair(pkis[0])
    rnd = DeterministicEntropy(b"garbage")
    injected = []

    def mix(p: bytes):
        junk = [rnd.random_bytes(n) for n in (0, 1, 9, 40)] + [p[:k] for k in (1, 5, 13)]
        forged = bytes([p[0]]) + rnd.random_bytes(8) + p[9:]  # the same packet from another session id
        injected.extend(junk + [forged])
        # the forged copy comes after the real one: as in openvpn, the first well-formed reset
        # decides the peer's session id (without tls-auth a forger who is faster wins; see below)
        return junk + [p, forged]

    pair.to_client = mix
    _pings_both_ways(pair)
    c = pair.client.stats
    assert c["dropped"] + c["decrypt_errors"] > len(injected) // 2
    assert not pair.client.closed
    drops = _kinds(pair.events["client"], "dropped")
    assert any("another session" in e.reason for e in drops), [e.reason for e in drops][:20]
    _assert_no_secrets(pair, secrets)


def test_no_secrets_after_every_kind_of_failure_in_exceptions(pkis, secrets):
    """Misuse raises with a message, and the message carries no key either."""
    pair = Pair(pkis[0])
    with pytest.raises(Exception) as info:
        pair.client.send_data(b"too early")
    assert "no data-channel keys yet" in str(info.value)
    pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    texts = []
    for junk in (b"", b"\x30" + b"\x00" * 30, b"\x48\x00\x00\x03" + b"\x00" * 40):
        pair.client.receive(junk, pair.now)  # never raises
    for e in pair.client.events():
        texts.append(repr(e))
    assert texts
    joined = "\n".join(texts).lower()
    for key2 in secrets:
        for i in range(len(key2) - 6):
            assert key2[i:i + 6].hex() not in joined


def test_without_tls_auth_the_first_reset_decides_the_peer(pkis):
    """A forged server reset that arrives first takes the session (openvpn does the same); the
    real server's packets are then dropped as another session's and the hand-window ends it with
    that named. With tls-auth the forgery is dropped instead and the handshake completes."""
    for tls_auth in (False, True):
        pair = Pair(pkis[0], tls_auth=pkis[0].tls_auth if tls_auth else None)
        rnd = DeterministicEntropy(b"forger")

        def forge_first(p: bytes):
            op, _ = pk.opcode_key_id(p)
            if op != pk.P_CONTROL_HARD_RESET_SERVER_V2:
                return [p]
            return [bytes([p[0]]) + rnd.random_bytes(8) + p[9:], p]

        pair.to_client = forge_first
        pair.run_until(lambda: pair.client.closed or pair.client.data_ready)
        if tls_auth:
            assert pair.client.data_ready and not pair.client.closed
            assert pair.client.stats["dropped"] >= 1
        else:
            ev = pair.closed("client")
            assert ev.at_ms == HAND_WINDOW_MS
            assert "last dropped packet: packet from another session" in ev.reason


def test_a_dropped_first_reset_does_not_claim_the_session(pkis):
    """A reset that acks someone else's session is dropped and leaves no trace: the real
    server's reset, arriving after it, is still accepted and the handshake completes."""
    pair = Pair(pkis[0])
    rnd = DeterministicEntropy(b"stray")
    strays = []

    def stray_first(p: bytes):
        op, _ = pk.opcode_key_id(p)
        if op != pk.P_CONTROL_HARD_RESET_SERVER_V2 or strays:
            return [p]
        stray = pk.ControlPacket(op, 0, rnd.random_bytes(8), [0], rnd.random_bytes(8), 0, b"").to_bytes()
        strays.append(stray)
        return [stray, p]

    pair.to_client = stray_first
    _pings_both_ways(pair)
    assert strays and pair.client.remote_session_id == pair.server.session_id
    drops = _kinds(pair.events["client"], "dropped")
    assert [e.reason for e in drops] == ["acks for a session id that is not ours"]


@pytest.mark.parametrize("initiator", ["server", "client"])
def test_renegotiation_wraps_key_id_and_reports_every_key_state(pkis, secrets, initiator):
    """key_id 0, then 1..7 wrapping to 1; each new key_state gets its own state events,
    a reused key_id included; pings keep flowing on the lame duck meanwhile."""
    pair = Pair(pkis[0])
    _pings_both_ways(pair, 1)
    for _ in range(9):
        side = getattr(pair, initiator)
        before = len(_kinds(pair.events[initiator], "keys"))
        side.renegotiate(pair.now)
        pair.run_until(lambda: len(_kinds(pair.events[initiator], "keys")) > before, pair.now + 10000)
    key_ids = [e.key_id for e in _kinds(pair.events["client"], "keys")]
    assert key_ids == [0, 1, 2, 3, 4, 5, 6, 7, 1, 2], key_ids
    assert [e.key_id for e in _kinds(pair.events["server"], "keys")] == key_ids
    fingerprints = [e.fingerprint for e in _kinds(pair.events["client"], "keys")]
    assert fingerprints == [e.fingerprint for e in _kinds(pair.events["server"], "keys")]
    assert len(set(fingerprints)) == len(fingerprints)  # a fresh key every time
    states = _kinds(pair.events["client"], "state")
    for first_and_last in ("S_PRE_START", "S_GENERATED_KEYS"):  # the second key_state 1 reports all its states
        assert [e.key_id for e in states if e.state == first_and_last] == key_ids, first_and_last
    assert sorted(pair.client.channels) == [1, 2]  # the new key and one lame duck
    _pings_both_ways(pair, pair.client.stats["pings_received"] + 2)
    assert not pair.client.closed and not pair.server.closed
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0
    _assert_no_secrets(pair, secrets)


def test_renegotiate_is_refused_before_keys_and_while_running(pkis):
    pair = Pair(pkis[0])
    with pytest.raises(sessmod.LocalProtocolError):
        pair.client.renegotiate(0)
    _pings_both_ways(pair, 1)
    pair.client.renegotiate(pair.now)
    with pytest.raises(sessmod.LocalProtocolError):
        pair.client.renegotiate(pair.now)


def test_one_push_reply_even_when_the_client_also_sends_push_request(pkis):
    """Our client announces REQUEST_PUSH and sends PUSH_REQUEST too; the server answers once."""
    pair = Pair(pkis[0])
    _pings_both_ways(pair, 2)
    replies = [e for e in _kinds(pair.events["client"], "message") if e.text.startswith("PUSH_REPLY")]
    assert len(replies) == 1, replies


def test_server_session_with_its_own_wrap_peer_id_and_push_hook(pkis, secrets):
    """A server shares one SessionConfig among its sessions; each gets its own tls-auth
    state, peer-id and extra push options (serve's ifconfig), asked once the client's
    certificate is verified."""
    pki = pkis[0]
    shared = sessmod.SessionConfig(is_server=True, ping_ms=1000, ping_restart_ms=3000, peer_id=3,
                                   hand_window_ms=HAND_WINDOW_MS, timeout_ms=TIMEOUT_MS)
    pair = Pair(pki, tls_auth=pki.tls_auth)
    seen = []

    def hook(session):
        channel = session.channels[0]
        seen.append(channel.tls.peer_subject)  # verified by now
        return ["ifconfig 10.8.0.7 255.255.255.0"]

    pair.server = sessmod.Session(shared, DeterministicEntropy(b"seed/server"), pair.crypto, _tls(pki, True), 0,
                                  wrap=_tls_auth(pki.tls_auth, 0), peer_id=1234, push_hook=hook)
    _pings_both_ways(pair, 1)
    assert seen == ["client"]
    assert pair.client.peer_id == 1234 and pair.server.peer_id == 1234
    assert "ifconfig 10.8.0.7 255.255.255.0" in pair.client.negotiation.push_options
    assert shared.tls_auth is None and shared.peer_id == 3  # nothing of the session went into the config
    _assert_no_secrets(pair, secrets)


def test_server_releasing_tls_engines_keeps_working(pkis, secrets):
    """release_tls: each key_state frees its TLS engine once its exchange is over and acked.
    Pings go on, the client's late PUSH_REQUEST is acked and dropped, a renegotiation gets
    a fresh engine, cc-exit is not offered (the client would say EXIT over TLS)."""
    pair = Pair(pkis[0])
    pair.server_cfg.release_tls = True
    pair.client_cfg.peer_info = lambda: "IV_VER=2.6.14\nIV_PROTO=134\nIV_CIPHERS=AES-256-GCM\n"  # + cc-exit
    _pings_both_ways(pair, 2)
    zero = pair.server.channels[0]
    assert zero.tls is None
    assert "cc-exit" not in pair.server.push_reply_text
    pair.client.channels[0].write_message("PUSH_REQUEST")  # a control message after the release
    pair.run_until(lambda: pair.client.channels[0].reliable.all_acked() and pair.now > 500)
    assert pair.client.channels[0].reliable.all_acked()  # acked (and dropped: nothing to read it)
    assert not pair.server.closed and not pair.client.closed
    pair.client.renegotiate(pair.now)
    pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1
                   and pair.server.channels[1].tls is None)
    assert pair.server.channels[1].tls is None and pair.client.channels[1].tls is not None
    before = pair.server.stats["pings_received"]
    pair.run_until(lambda: pair.server.stats["pings_received"] >= before + 2)
    assert pair.server.stats["pings_received"] >= before + 2 and not pair.server.closed
    _assert_no_secrets(pair, secrets)


def test_ended_sessions_leave_no_reference_cycles(pkis):
    """A server with thousands of sessions runs without full garbage collections (each
    would stop every session for a while), so an ended session must be freed by
    reference counting alone: no cycle through its TLS engine or its push hook."""
    import gc

    from ovpnkx_host.tls_openssl import OpenSslContext

    pki = pkis[0]
    # one TLS context per side, as serve and load keep them (a context is long-lived)
    server_ctx = OpenSslContext(True, _read(pki.ca), _read(pki.server_cert), _read(pki.server_key), "client")
    client_ctx = OpenSslContext(False, _read(pki.ca), _read(pki.client_cert), _read(pki.client_key), "server")
    pair = Pair(pki)
    pair.server_cfg.release_tls = True
    server = sessmod.Session(pair.server_cfg, DeterministicEntropy(b"seed/server"), pair.crypto,
                             server_ctx.engine, 0, push_hook=lambda s: ["ifconfig 10.8.0.2 255.255.255.0"])
    pair.server = server
    pair.client = sessmod.Session(pair.client_cfg, DeterministicEntropy(b"seed/client"), pair.crypto,
                                  client_ctx.engine, 0)
    _pings_both_ways(pair, 1)
    pair.client.renegotiate(pair.now)
    pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    pair.client.close(pair.now)
    pair.step()
    assert pair.server.closed and pair.client.closed
    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        del pair, server
        found = gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert found == 0, cyclic


# -- compression stubs and the exit notification (issue 8 items 3 and 4) ---------------

@pytest.mark.parametrize("kind", ["lzo-stub", "stub", "stub-v2"])
def test_configured_stub_frames_both_ways(pkis, kind):
    framing = comp.Framing(kind)
    pair = Pair(pkis[0], client_extra={"compression": framing}, server_extra={"compression": framing})
    plain = []  # what the server's data channel decrypts, before the stub comes off
    decrypt = pair.server.multi.decrypt
    pair.server.multi.decrypt = lambda key_id, p, now: plain.append(decrypt(key_id, p, now)) or plain[-1]
    _pings_both_ways(pair)
    assert pair.server.stats["dropped"] == pair.client.stats["dropped"] == 0
    assert plain[0] == framing.compress(PING_STRING) and (plain[0] != PING_STRING) == (kind != "stub-v2")
    assert ",comp-lzo," in pair.client_cfg.options_string()
    assert ("link-mtu 1541" if kind == "stub-v2" else "link-mtu 1542") in pair.client_cfg.options_string()


def test_the_client_announces_stubs_and_cc_exit(pkis):
    pair = Pair(pkis[0])
    _pings_both_ways(pair, 1)
    info = pair.server.peer_info
    assert info["IV_LZO_STUB"] == info["IV_COMP_STUB"] == info["IV_COMP_STUBv2"] == "1"
    assert int(info["IV_PROTO"]) & 128  # CC_EXIT_NOTIFY, as a 2.6 client
    assert "protocol-flags cc-exit" in pair.server.push_reply_text and pair.client.negotiation.cc_exit
    assert ",comp-lzo," not in pair.client_cfg.options_string()


@pytest.mark.parametrize("pushed,kind", [("comp-lzo no", "lzo-stub"), ("compress", "stub"),
                                         ("compress stub-v2", "stub-v2")])
def test_pushed_stub_is_followed(pkis, pushed, kind):
    pair = Pair(pkis[0], server_extra={"compression": comp.Framing(kind), "push_options": [pushed]})
    _pings_both_ways(pair)
    assert pair.client.negotiation.framing == comp.Framing(kind)
    assert pair.client.stats["dropped"] == pair.server.stats["dropped"] == 0


def test_pushed_compression_ends_the_session_before_any_data(pkis):
    pair = Pair(pkis[0], server_extra={"push_options": ["comp-lzo"]})
    pair.run_until(lambda: pair.client.closed)
    ev = pair.closed("client")
    assert ev.error and "server pushed compression settings that are not allowed (comp-lzo)" in ev.reason
    assert not pair.client.close_fatal  # openvpn restarts (process-push-msg-failed)
    assert pair.client.stats["pings_sent"] == 0 and not pair.client.data_ready


def test_a_framing_server_is_named_for_an_unframed_client(pkis):
    pair = Pair(pkis[0], server_extra={"compression": comp.Framing("lzo-stub")})
    pair.run_until(lambda: pair.client.closed)
    ev = pair.closed("client")
    assert ev.error and pair.client.close_fatal
    assert "add 'comp-lzo no'" in ev.reason
    assert pair.client.stats["pings_received"] == 0


def _data_out(packets: list) -> int:
    return sum(1 for p in packets if pk.opcode_key_id(p)[0] in (pk.P_DATA_V1, pk.P_DATA_V2))


def test_explicit_exit_notify_without_cc_exit_sends_occ_exit_every_second(pkis):
    pair = Pair(pkis[0], ping_ms=60000, ping_restart_ms=120000)  # no keepalive packets in the way
    pair.run_until(lambda: pair.client.data_ready)
    pair.client.negotiation.cc_exit = False  # a server without cc-exit (2.5, or 2.6 p2p without it)
    emitted = []
    note = ExitNotification(pair.client, "udp", 3, emitted.append)
    t0 = pair.now
    note.start(t0, "SIGTERM")
    sent = [(0, _data_out(pair.client.packets_to_send(t0)))]
    for dt in (500, 999, 1000, 1500, 2000, 2999, 3000):
        note.tick(t0 + dt)
        sent.append((dt, _data_out(pair.client.packets_to_send(t0 + dt))))
    assert sent == [(0, 1), (500, 0), (999, 0), (1000, 1), (1500, 0), (2000, 1), (2999, 0), (3000, 0)]
    assert pair.client.closed and pair.client.close_reason == "stopped by SIGTERM (exit notification sent)"
    assert emitted == [{"event": "exit_notify", "at_ms": t0, "method": "occ", "seconds": 3}]


def test_explicit_exit_notify_with_cc_exit_sends_exit_once(pkis):
    pair = Pair(pkis[0])
    pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    note = ExitNotification(pair.client, "udp", 2, lambda ev: None)
    note.start(pair.now, "SIGINT")
    pair.run_until(lambda: pair.server.closed, limit_ms=pair.now + 1500)
    assert pair.closed("server").reason == "peer exited"  # the EXIT control message
    assert not pair.client.closed  # the client waits out its notification period
    note.tick(pair.now + 2000)
    assert pair.client.closed and not pair.client.close_error


def test_no_notification_before_data_keys_or_on_tcp(pkis):
    pair = Pair(pkis[0])
    note = ExitNotification(pair.client, "udp", 2, lambda ev: None)
    note.start(0, "SIGTERM")
    assert pair.client.closed and pair.client.close_reason == "stopped by SIGTERM"
    assert _data_out(pair.client.packets_to_send(0)) == 0
    pair = Pair(pkis[0])
    pair.run_until(lambda: pair.client.data_ready)
    emitted = []
    note = ExitNotification(pair.client, "tcp", 2, emitted.append)
    note.start(pair.now, "SIGTERM")
    assert pair.client.closed and _data_out(pair.client.packets_to_send(pair.now)) == 0 and emitted == []
