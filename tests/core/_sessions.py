"""Two sans-IO Sessions wired back to back in virtual time, on either runtime.

The TLS engine is the runtime's own (pyOpenSSL on CPython, mbedTLS on
MicroPython), the crypto backend too; the certificates are the long-lived test
PKI in tests/data/pki. ``Pair.step`` moves every due packet and jumps to the
next timer, so a test reads like a transcript with times.
"""

import sys

from ovpnkx import packet as pk
from ovpnkx.entropy import DeterministicEntropy
from ovpnkx.session import Session, SessionConfig
from ovpnkx.tlswrap import TlsAuth
from ovpnkx.wrapconfig import parse_static_key

from _support import DATA_DIR, crypto_backend

PKI = DATA_DIR + "/pki/"
MICROPYTHON = sys.implementation.name == "micropython"


def read(name):
    with open(PKI + name, "rb") as f:
        return f.read()


def tls_factory(is_server):
    """A TLS engine maker for this runtime, verifying the peer as OpenVPN's remote-cert-tls."""
    if MICROPYTHON:
        from ovpnkx.tls_mbedtls import MbedTlsEngine as Engine
    else:
        from ovpnkx_host.tls_openssl import OpenSslEngine as Engine
    ca = read("ca.crt")
    if is_server:
        cert, key = read("server.crt"), read("server.key")
    else:
        cert, key = read("client.crt"), read("client.key")
    rct = "client" if is_server else "server"
    return lambda: Engine(is_server, ca, cert, key, rct)


def tls_auth(direction):
    return TlsAuth(parse_static_key(read("ta.key")), direction, "SHA1")


def client_config(**kw):
    kw.setdefault("hand_window_ms", 20000)
    kw.setdefault("timeout_ms", 1000)
    return SessionConfig(is_server=False, **kw)


def server_config(**kw):
    kw.setdefault("hand_window_ms", 20000)
    kw.setdefault("timeout_ms", 1000)
    kw.setdefault("ping_ms", 1000)
    kw.setdefault("ping_restart_ms", 5000)
    kw.setdefault("peer_id", 3)
    return SessionConfig(is_server=True, **kw)


def client_session(cfg=None, seed=b"c", now=0):
    return Session(cfg or client_config(), DeterministicEntropy(seed), crypto_backend(), tls_factory(False), now)


def server_session(cfg=None, seed=b"s", now=0):
    return Session(cfg or server_config(), DeterministicEntropy(seed), crypto_backend(), tls_factory(True), now)


def kinds(events, kind):
    return [e for e in events if e.kind == kind]


class Pair:
    """A client and a server Session exchanging packets in virtual time.

    ``to_server`` / ``to_client``: optional filters packet -> list of packets.
    """

    def __init__(self, client_cfg=None, server_cfg=None, seed=b"pair"):
        self.client = client_session(client_cfg, seed + b"/client")
        self.server = server_session(server_cfg, seed + b"/server")
        self.now = 0
        self.events = {"client": [], "server": []}
        self.to_server = None
        self.to_client = None

    def collect(self):
        self.events["client"] += self.client.events()
        self.events["server"] += self.server.events()

    def step(self, max_ms=100):
        """Exchange everything due now, then jump to the next timer (at most ``max_ms``)."""
        for _ in range(20):
            c_out = self.client.packets_to_send(self.now)
            s_out = self.server.packets_to_send(self.now)
            if not c_out and not s_out:
                break
            for p in c_out:
                for q in (self.to_server(p) if self.to_server else [p]):
                    self.server.receive(q, self.now)
            for p in s_out:
                for q in (self.to_client(p) if self.to_client else [p]):
                    self.client.receive(q, self.now)
        self.collect()
        timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]
        self.now = max(self.now + 1, min([self.now + max_ms] + timers))

    def run_until(self, done, limit_ms=60000, max_ms=100):
        while not done() and self.now < limit_ms:
            self.step(max_ms)
        self.collect()
        return done()

    def pings_both_ways(self, n, limit_ms=60000):
        c, s = self.client.stats, self.server.stats
        base_c, base_s = c["pings_received"], s["pings_received"]
        return self.run_until(lambda: c["pings_received"] >= base_c + n and s["pings_received"] >= base_s + n,
                              limit_ms)


def is_data(packet):
    return (packet[0] >> 3) in (pk.P_DATA_V1, pk.P_DATA_V2)
