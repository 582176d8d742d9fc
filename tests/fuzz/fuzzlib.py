"""Seeded fuzzing of everything that reads peer input, on CPython and on MicroPython.

    python|micropython tests/fuzz/fuzzlib.py TARGET|ALL INPUTS SEED PKI_DIR [CRASH_DIR]

prints one JSON line per target: target, runtime, inputs, how many ended in RemoteProtocolError,
every other exception (type, count, first message, first input), the memory in use
after a warm-up and at the end (CPython: RSS; MicroPython: gc.mem_alloc() after
gc.collect()), and the seconds taken. ``tools/fuzz.py`` (`make fuzz`) runs every
target on both runtimes; ``tests/host/test_fuzz_quick.py`` runs a few hundred inputs
of each on both as part of `make test`.

The inputs come from a seeded xorshift PRNG (the same stream on both runtimes) that
mutates valid seeds (bit flips, interesting values, inserts, deletes, truncation,
splices, AFL's "havoc" in small), with a few untouched seeds and random blobs mixed
in. The rule checked is the core's: a parser fed any bytes raises nothing but
``RemoteProtocolError`` (framing decoders and the serial link raise nothing at all;
a session or the server's datagram handler lets nothing out), and memory stays flat.
"""

import gc
import sys
import time

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.append(_HERE + "/../../firmware")
MICROPYTHON = sys.implementation.name == "micropython"

from ovpnkx.cookie import encode_tlvs  # noqa: E402
from ovpnkx.errors import ProtocolError, RemoteProtocolError  # noqa: E402


class Rng:
    """xorshift32: deterministic and the same on both runtimes."""

    def __init__(self, seed):
        self.s = ((seed * 0x9E3779B1) + 0x7F4A7C15) & 0xFFFFFFFF or 1

    def u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.u32() % n if n > 0 else 0

    def blob(self, n):
        return bytes([self.u32() & 0xFF for _ in range(n)])


_I8 = (0, 1, 0x7F, 0x80, 0xFF, 0x2C, 0x0A, 0x20, 0x3D, 0x3A)  # also ',', '\n', ' ', '=', ':' for texts
_I16 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF)
_I32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100)


def mutate(rng, data, corpus, max_len):
    """One to four havoc steps on ``data``."""
    buf = bytearray(data)
    for _ in range(1 + rng.below(4)):
        n = len(buf)
        op = rng.below(12)
        p = rng.below(n) if n else 0
        if op == 0 and n:
            buf[p] ^= 1 << rng.below(8)
        elif op == 1 and n:
            buf[p] = _I8[rng.below(len(_I8))]
        elif op == 2 and n:
            buf[p] = rng.below(256)
        elif op == 3 and n > 1:
            v = _I16[rng.below(len(_I16))]
            p = rng.below(n - 1)
            buf[p] = v >> 8
            buf[p + 1] = v & 0xFF
        elif op == 4 and n > 3:
            v = _I32[rng.below(len(_I32))]
            p = rng.below(n - 3)
            for k in range(4):
                buf[p + k] = (v >> (24 - 8 * k)) & 0xFF
        elif op == 5:
            buf = buf[:p] + rng.blob(1 + rng.below(16)) + buf[p:]
        elif op == 6 and n:
            buf = buf[:p] + buf[p + 1 + rng.below(min(n - p, 32)):]
        elif op == 7 and n:
            buf = buf[:rng.below(n)]
        elif op == 8:
            buf = buf + rng.blob(1 + rng.below(32))
        elif op == 9 and corpus:
            other = corpus[rng.below(len(corpus))]
            q = rng.below(len(other) + 1)
            buf = buf[:p] + bytearray(other[q:])
        elif op == 10 and n:
            k = 1 + rng.below(min(n - p, 64))
            buf = buf[:p] + buf[p:p + k] + buf[p:]
        elif op == 11 and n:
            buf[p] = (buf[p] + (1 + rng.below(8)) * (1 if rng.below(2) else -1)) & 0xFF
    if len(buf) > max_len:
        buf = buf[:max_len]
    return bytes(buf)


def text(data):
    """Bytes as a str of the same code points (the unix port has no latin-1 codec)."""
    return "".join([chr(b) for b in data])


# ---- runtime backends and the test PKI ------------------------------------------

def crypto():
    if MICROPYTHON:
        from ovpnkx.crypto_mp import MicroPythonCrypto
        return MicroPythonCrypto()
    from ovpnkx_host.crypto_host import HostCrypto
    return HostCrypto()


class Pki:
    """PEM files of ovpnkx_host.pki.make_pki, read from a directory."""

    def __init__(self, path):
        def read(name):
            with open(path + "/" + name, "rb") as f:
                return f.read()
        self.ca = read("ca.crt")
        self.server_cert, self.server_key = read("server.crt"), read("server.key")
        self.client_cert, self.client_key = read("client.crt"), read("client.key")
        self.ta = read("ta.key").decode()

    def engine(self, is_server):
        if MICROPYTHON:
            from ovpnkx.tls_mbedtls import MbedTlsEngine as Engine
        else:
            from ovpnkx_host.tls_openssl import OpenSslEngine as Engine
        if is_server:
            eng = Engine(True, self.ca, self.server_cert, self.server_key, "client")
        else:
            eng = Engine(False, self.ca, self.client_cert, self.client_key, "server")
        return eng

    def ders(self):
        from ovpnkx.certinfo import pem_blocks
        return [bytes(d) for pem in (self.ca, self.server_cert, self.client_cert) for d in pem_blocks(pem, "CERTIFICATE")]


def tls_auth(pki, direction):
    from ovpnkx.tlswrap import TlsAuth
    from ovpnkx.wrapconfig import parse_static_key
    return TlsAuth(parse_static_key(pki.ta), direction, "SHA1")


# ---- targets ----------------------------------------------------------------------
# A target has ``seeds`` (the corpus: a list of bytes, which may change as it runs),
# ``max_len``, ``strict`` (True: not even RemoteProtocolError may come out) and
# ``feed(data)``.


class Target:
    max_len = 2048
    strict = False

    def corpus(self):
        return self.seeds

    def quiesce(self):
        """Put live state (a session in the middle of a handshake) in a comparable
        starting state before memory is measured; stateless targets have none."""


class Func(Target):
    """A stateless parser: ``func(data)``."""

    def __init__(self, func, seeds, max_len=2048):
        self.func, self.seeds, self.max_len = func, seeds, max_len

    def feed(self, data):
        self.func(data)


def _control_seeds():
    from ovpnkx import packet as pk
    sid, rsid = bytes(range(1, 9)), bytes(range(9, 17))
    return [pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, sid, (), None, 0, b"").to_bytes(),
            pk.ControlPacket(pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, rsid, (0,), sid, 0, b"").to_bytes(),
            pk.ControlPacket(pk.P_CONTROL_V1, 0, sid, (1, 2, 3), rsid, 7, b"\x16\x03\x01" + bytes(60)).to_bytes(),
            pk.ControlPacket(pk.P_ACK_V1, 2, sid, (4, 5, 6, 7, 8), rsid, None, b"").to_bytes(),
            pk.ControlPacket(pk.P_CONTROL_SOFT_RESET_V1, 1, sid, (), None, 0, b"").to_bytes(),
            pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, sid, (), None, 0,
                             encode_tlvs([(1, b"\x00\x01"), (2, b"")])).to_bytes()]


def t_opcode(ctx):
    from ovpnkx import packet as pk
    return Func(pk.opcode_key_id, _control_seeds() + [b"\x48\x00\x00\x01" + bytes(20)], 64)


def t_parse_control(ctx):
    from ovpnkx import packet as pk
    return Func(pk.parse_control, _control_seeds(), 1400)


def t_tlvs(ctx):
    from ovpnkx import packet as pk
    return Func(pk.parse_tlvs, [encode_tlvs([(1, b"\x00\x01"), (7, b"x" * 5), (0xFFFF, b"")]), b""], 512)


class Deframer(Target):
    """OpenVPN's TCP framing: a fresh deframer per input, fed in up to three chunks."""

    max_len = 4096

    def __init__(self, ctx):
        from ovpnkx import streambuf as sb
        self.sb = sb
        self.seeds = [b"".join(sb.frame(p) for p in _control_seeds()), sb.frame(b"\x30" + bytes(40))]
        self.rng = ctx["rng"]

    def feed(self, data):
        d = self.sb.StreamDeframer()
        a = self.rng.below(len(data) + 1)
        b = a + self.rng.below(len(data) - a + 1)
        for part in (data[:a], data[a:b], data[b:]):
            d.feed(part)


class SerialFrames(Target):
    """The serial frame decoder: one decoder for the whole run, which must never raise."""

    max_len = 3000
    strict = True

    def __init__(self, ctx):
        from ovpnkx.serialframe import FrameDecoder, encode_frame
        self.dec = FrameDecoder(256)
        self.seeds = [encode_frame(p) for p in (b"", b"\x00\x00", bytes(range(256)), b"x" * 300)]
        self.seeds.append(b"".join(self.seeds))

    def feed(self, data):
        self.dec.feed(data)


class SerialLink(Target):
    """One link end for the whole run (its windows, queues and timers grow with what it
    is fed, within their bounds); fed mutated frames of a peer; it must never raise."""

    max_len = 1500
    strict = True

    def __init__(self, ctx):
        from ovpnkx.seriallink import MSG_TIME, Link
        peer = Link(9, fragment=24)
        for p in _control_seeds():
            peer.send(p, 0)
        peer.send_message(MSG_TIME, b"2026-12-01T00:00:00Z")
        wire = peer.bytes_to_send(0)
        self.seeds = [b"\x00" + f + b"\x00" for f in wire.split(b"\x00") if f] + [wire]
        self.link = Link(4)
        self.now = 0

    def feed(self, data):
        self.now += 7
        self.link.receive(data, self.now)
        self.link.bytes_to_send(self.now)
        if self.link.messages:
            self.link.messages = []
        if self.link.stats["fragments_in"] % 50 == 0:
            self.link.send(b"x" * 100, self.now)  # something of ours in flight, for the acks to act on


def _km2_seeds(is_client):
    from ovpnkx.keymethod2 import KeyMethod2Message, KeySource, write_key_method2
    ks = KeySource(bytes(48) if is_client else None, bytes(range(32)), bytes(range(32, 64)))
    out = []
    for user, pw, info in ((None, None, ""), ("alice", "secret", "IV_VER=2.6.14\nIV_PROTO=14\nIV_CIPHERS=AES-256-GCM\n")):
        m = KeyMethod2Message(ks, "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM",
                              user, pw, info)
        out.append(write_key_method2(m, is_client))
    return out


def t_km2_client(ctx):
    from ovpnkx.keymethod2 import read_key_method2
    return Func(lambda d: read_key_method2(d, True), _km2_seeds(True), 1400)


def t_km2_server(ctx):
    from ovpnkx.keymethod2 import read_key_method2
    return Func(lambda d: read_key_method2(d, False), _km2_seeds(False), 1400)


def t_peer_info(ctx):
    from ovpnkx.keymethod2 import iv_proto, parse_peer_info
    from ovpnkx.push import iv_ciphers

    def feed(data):
        info = parse_peer_info(text(data))
        iv_proto(info)
        iv_ciphers(info)
    return Func(feed, [b"IV_VER=2.6.14\nIV_PLAT=linux\nIV_PROTO=990\nIV_CIPHERS=AES-256-GCM:CHACHA20-POLY1305\n",
                       b"IV_PROTO=-1\nIV_CIPHERS=\n", b""], 800)


def t_push_reply(ctx):
    from ovpnkx.push import PushReply

    def feed(data):
        r = PushReply()
        for part in text(data).split("\x00"):
            r.add(part)
    return Func(feed, [b"PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,"
                       b"ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,"
                       b"protocol-flags cc-exit tls-ekm,key-derivation tls-ekm",
                       b"PUSH_REPLY,ping 1,push-continuation 2\x00PUSH_REPLY,peer-id 16777215,push-continuation 1"],
                1024)


class TlsAuthUnwrap(Target):
    """tls-auth: one receiver for the run (its replay window) fed mutated wrapped packets;
    with ``resign``, mutated *plain* packets wrapped by a real sender, so that what
    follows the HMAC (replay window, then the control packet parser) is reached."""

    max_len = 1400

    def __init__(self, ctx, resign):
        from ovpnkx import packet as pk
        self.pk = pk
        self.sender = tls_auth(ctx["pki"], 1)
        self.receiver = tls_auth(ctx["pki"], 0)
        self.resign = resign
        self.now = 1000000
        plain = _control_seeds()
        self.seeds = plain if resign else [self.sender.wrap(p, self.now) for p in plain]

    def feed(self, data):
        self.now += 3
        if self.resign:
            if len(data) < 9:
                return
            data = self.sender.wrap(data, self.now)
        self.pk.parse_control(self.receiver.unwrap(data, self.now))


class TlsCryptUnwrap(Target):
    """tls-crypt: one receiver (the server's side, its replay window) fed mutated packets
    of the client; with ``reseal``, mutated plain packets encrypted by the real client."""

    max_len = 1400

    def __init__(self, ctx, reseal):
        from ovpnkx import packet as pk
        from ovpnkx.tlscrypt import TlsCrypt
        from ovpnkx.wrapconfig import parse_static_key
        key = parse_static_key(ctx["pki"].ta)
        c = crypto()
        self.pk = pk
        self.sender = TlsCrypt(key, False, c)
        self.receiver = TlsCrypt(key, True, c)
        self.reseal = reseal
        self.now = 1000000
        plain = [p for p in _control_seeds() if p[0] >> 3 != pk.P_CONTROL_HARD_RESET_CLIENT_V3]
        self.seeds = plain if reseal else [self.sender.wrap(p, self.now) for p in plain]

    def feed(self, data):
        self.now += 3
        if self.reseal:
            if len(data) < 9 or data[0] >> 3 in (self.pk.P_CONTROL_HARD_RESET_CLIENT_V3, self.pk.P_CONTROL_WKC_V1):
                return
            data = self.sender.wrap(data, self.now)
        self.pk.parse_control(self.receiver.unwrap(data, self.now))


def _v2_keys():
    from ovpnkx.tlscrypt_server import TlsCryptV2ServerKey
    server_key = TlsCryptV2ServerKey(bytes([(i * 5 + 1) & 0xFF for i in range(128)]), crypto())
    kc = bytes([(i * 11 + 7) & 0xFF for i in range(256)])
    return server_key, kc, server_key.wrap_client_key(kc, b"\x00metadata")


class TlsCryptV2Server(Target):
    """tls-crypt-v2 on the server: a fresh per-client wrapper per input (it learns the
    client key from the first V3 or WKC_V1 packet), fed mutated client packets."""

    max_len = 1600

    def __init__(self, ctx):
        from ovpnkx import packet as pk
        from ovpnkx.tlscrypt import TlsCrypt
        from ovpnkx.tlscrypt_server import TlsCryptV2Server as Server
        self.Server = Server
        self.server_key, kc, wkc = _v2_keys()
        client = TlsCrypt(kc, False, crypto(), wkc=wkc)
        sid, rsid = bytes(range(1, 9)), bytes(range(9, 17))
        self.now = 2000000
        self.seeds = [client.wrap(p.to_bytes(), self.now) for p in (
            pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V3, 0, sid, (), None, 0, b""),
            pk.ControlPacket(pk.P_CONTROL_WKC_V1, 0, sid, (0,), rsid, 1, b"\x16\x03\x01"),
            pk.ControlPacket(pk.P_CONTROL_V1, 0, sid, (0,), rsid, 2, b"\x16\x03\x01" + bytes(40)))]
        self.pk = pk

    def feed(self, data):
        self.now += 5
        server = self.Server(self.server_key)
        pk = self.pk
        if data and data[0] >> 3 not in (pk.P_CONTROL_HARD_RESET_CLIENT_V3, pk.P_CONTROL_WKC_V1):
            server.unwrap(self.seeds[0], self.now)  # keyed by the genuine reset first
        pk.parse_control(server.unwrap(data, self.now))


def t_v2_client_key(ctx):
    server_key, _, wkc = _v2_keys()
    return Func(server_key.unwrap_client_key, [wkc], 1100)


class DataDecrypt(Target):
    """One data channel (its replay window) per cipher, fed mutated packets of its peer;
    with ``reseal``, each input is sealed by the real sender first (its first 4 bytes
    taken as the packet-id), so that the replay window and what follows are reached."""

    max_len = 1600

    def __init__(self, ctx, cipher, auth="SHA1", reseal=False):
        from ovpnkx.datachannel import PING_STRING, DataChannel, occ_exit_message
        from ovpnkx.prf import key2_split
        key2 = bytes([(i * 7 + 3) & 0xFF for i in range(256)])
        c = crypto()
        if not c.supports(cipher):
            raise SkipTarget("%s is not available on this runtime" % cipher)
        s_enc, s_dec = key2_split(key2, True)
        c_enc, c_dec = key2_split(key2, False)
        sender = DataChannel(c, cipher, auth, s_enc, s_dec, 0, peer_id=5)
        sender_v1 = DataChannel(c, cipher, auth, s_enc, s_dec, 0)
        self.dc = DataChannel(c, cipher, auth, c_enc, c_dec, 0, peer_id=5)
        self.reseal = reseal
        self.sender = sender
        if reseal:
            self.seeds = [b"\x00\x00\x00\x01" + PING_STRING, b"\x00\x00\x01\x00" + occ_exit_message(),
                          b"\xff\xff\xff\xfe" + b"x" * 100]
        else:
            self.seeds = [sender.encrypt(p) for p in (PING_STRING, occ_exit_message(), b"x" * 200)]
            self.seeds += [sender_v1.encrypt(PING_STRING)]

    def feed(self, data):
        if self.reseal:
            if len(data) < 4:
                return
            pid = int.from_bytes(data[:4], "big")
            self.sender._send_id = (pid - 1) & 0xFFFFFFFF  # the harness picks the packet-id
            try:
                data = self.sender.encrypt(data[4:])
            except ProtocolError:  # packet-id 0 or past the wrap: the sender refuses, as it should
                return
        self.dc.decrypt(data)


class Cookie(Target):
    """The 2.6 server's stateless cookie: reply() to resets and verify() of proofs."""

    max_len = 600

    def __init__(self, ctx):
        from ovpnkx import packet as pk
        from ovpnkx.cookie import CookieResponder
        pki = ctx["pki"]
        self.cr = CookieResponder(bytes(range(32)), lambda: tls_auth(pki, 0))
        client = tls_auth(pki, 1)
        self.now = 5000000
        sid = bytes(range(1, 9))
        reset = client.wrap(pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, sid, (), None, 0, b"").to_bytes(),
                            self.now)
        reply = self.cr.reply(reset, b"127.0.0.1:1194", self.now)
        srv_sid = pk.parse_control(tls_auth(pki, 1).unwrap(reply, self.now)).session_id
        proof = client.wrap(pk.ControlPacket(pk.P_CONTROL_V1, 0, sid, (0,), srv_sid, 1, b"\x16\x03\x01").to_bytes(),
                            self.now)
        self.seeds = [reset, proof]

    def feed(self, data):
        self.now += 11
        self.cr.reply(data, b"127.0.0.1:1194", self.now)
        self.cr.verify(data, b"127.0.0.1:1194", self.now)


def t_certinfo(ctx):
    from ovpnkx.certinfo import EKU_SERVER_AUTH, CertInfo

    def feed(data):
        info = CertInfo(data)
        info.has_eku(EKU_SERVER_AUTH)
        info.verify_name()
    return Func(feed, ctx["pki"].ders(), 2048)


def t_tls_records(ctx):
    """The MicroPython engine's own reading of the peer's TLS bytes (before mbedTLS):
    records, handshake messages, the certificate chain of a Certificate message."""
    from ovpnkx import tls_mbedtls as tm
    from ovpnkx.der import chain_from_message, handshake_messages

    def feed(data):
        tm.split_records(bytearray(data))
        for htype, msg in handshake_messages(data[5:]):
            if htype == 11:  # Certificate
                chain_from_message(msg)
    flights = ctx["flights"]()
    return Func(feed, [flights["server12"], flights["client12"]], 4096)


def t_x509_cert(ctx):
    """The board's own certificate reader (x509verify: the fields chain checks use)."""
    from ovpnkx.x509verify import Cert
    return Func(Cert, ctx["pki"].ders(), 2048)


class X509Chain(Target):
    """The board's chain verification (signatures in Python up to the CA, validity,
    CA constraints) of a mutated server certificate against the real CA."""

    max_len = 2048

    def __init__(self, ctx):
        from ovpnkx.certinfo import pem_blocks
        from ovpnkx.x509verify import verify_chain
        self.verify = verify_chain
        pki = ctx["pki"]
        self.ca = [bytes(d) for d in pem_blocks(pki.ca, "CERTIFICATE")]
        self.seeds = [bytes(d) for d in pem_blocks(pki.server_cert, "CERTIFICATE")]
        self.now = int(time.time())

    def feed(self, data):
        self.verify([data], self.ca, self.now)


class SkipTarget(Exception):
    """The target does not exist on this runtime (said in the table)."""


def _record_flights(pki):
    """Genuine TLS flights with our server engine: TLS 1.3 from our client engine (where
    the runtime has it), and TLS 1.2, where the certificates go in clear text for the
    mutations to reach (on CPython from a pyOpenSSL client capped at 1.2: our engine
    takes whatever is newest)."""
    out = {}
    sv = pki.engine(True)
    sv.start()
    if MICROPYTHON:  # MicroPython's mbedTLS speaks TLS 1.2
        cl = pki.engine(False)
        cl.start()
        ch = cl.pending_ciphertext()
        sv.feed(ch)
        sf = sv.pending_ciphertext()
        cl.feed(sf)
        out["hello12"], out["server12"], out["client12"] = ch, sf, cl.pending_ciphertext()
        return out
    cl = pki.engine(False)
    cl.start()
    out["hello13"] = cl.pending_ciphertext()
    sv.feed(out["hello13"])
    out["server13"] = sv.pending_ciphertext()
    from OpenSSL import SSL
    from OpenSSL import crypto as oc
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate(oc.load_certificate(oc.FILETYPE_PEM, pki.client_cert))
    ctx.use_privatekey(oc.load_privatekey(oc.FILETYPE_PEM, pki.client_key))
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()

    def step():
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            pass
        return conn.bio_read(65536)
    out["hello12"] = step()
    sv12 = pki.engine(True)
    sv12.start()
    sv12.feed(out["hello12"])
    out["server12"] = sv12.pending_ciphertext()
    conn.bio_write(out["server12"])
    out["client12"] = step()
    return out


class TlsEngine(Target):
    """A fresh TLS engine per input (OpenSSL's on CPython, mbedTLS on MicroPython) fed a
    mutated peer flight: the server engine the client's, the client engine the server's."""

    max_len = 6000

    def __init__(self, ctx, is_server):
        self.pki = ctx["pki"]
        self.is_server = is_server
        f = ctx["flights"]()
        if is_server:
            self.seeds = [f[k] for k in ("hello13", "hello12") if k in f] + [f["hello12"] + f["client12"]]
        else:
            self.seeds = [f[k] for k in ("server13", "server12") if k in f]

    def feed(self, data):
        eng = self.pki.engine(self.is_server)
        eng.start()
        eng.pending_ciphertext()
        try:
            eng.feed(data)
            eng.pending_ciphertext()
            eng.read()
        except RemoteProtocolError:
            raise


class SessionPair(Target):
    """Session.receive: a client and a server Session (real TLS engines) talk; each input
    is a mutation of one of the last genuine packets sent to one side, delivered to it
    between the genuine ones. The pair is replaced when a side closes or after a while,
    so every stage of the handshake and the data phase gets inputs. With ``tls_auth``
    the mutated packets are signed again, so that they pass the HMAC."""

    max_len = 1600

    def __init__(self, ctx, with_tls_auth):
        from ovpnkx import session as sm
        from ovpnkx.entropy import DeterministicEntropy
        self.sm, self.Entropy = sm, DeterministicEntropy
        self.pki = ctx["pki"]
        self.rng = ctx["rng"]
        self.with_tls_auth = with_tls_auth
        self.crypto = crypto()
        self.pairs = 0
        self.seeds = _control_seeds()
        self._new_pair()

    def _new_pair(self):
        sm = self.sm
        self.pairs += 1
        common = {"hand_window_ms": 20000, "timeout_ms": 500}
        ta = self.with_tls_auth
        ccfg = sm.SessionConfig(is_server=False, p2mp=True, ask_ekm=not MICROPYTHON, ping_ms=300,
                                ping_restart_ms=4000, tls_auth=tls_auth(self.pki, 1) if ta else None, **common)
        scfg = sm.SessionConfig(is_server=True, ping_ms=300, ping_restart_ms=4000, peer_id=3,
                                tls_auth=tls_auth(self.pki, 0) if ta else None, **common)
        tag = ("%d" % self.pairs).encode()
        self.side = {
            "c": sm.Session(ccfg, self.Entropy(b"c" + tag), self.crypto, lambda: self.pki.engine(False), 0),
            "s": sm.Session(scfg, self.Entropy(b"s" + tag), self.crypto, lambda: self.pki.engine(True), 0)}
        # for re-signing a mutated packet as its genuine sender would
        self.signer = {"c": tls_auth(self.pki, 0), "s": tls_auth(self.pki, 1)} if ta else None
        self.seen = {"c": [], "s": []}
        self.turn = "c"
        self.now = 0
        self.left = 4 + self.rng.below(30)  # most inputs in the handshake, some in the data phase

    def corpus(self):
        return self.seen[self.turn] or self.seeds

    def _unwrap(self, to, p):
        if self.signer is None:
            return p
        try:
            return self.signer[to].unwrap(p, self.now) if p[0] >> 3 not in (6, 9) else p
        except RemoteProtocolError:
            return p

    def _exchange(self):
        c, s = self.side["c"], self.side["s"]
        for _ in range(1):  # one round per input: every stage of the handshake gets inputs
            co, so = c.packets_to_send(self.now), s.packets_to_send(self.now)
            for to, packets, sess in (("s", co, s), ("c", so, c)):
                for p in packets:
                    keep = self.seen[to]
                    keep.append(self._unwrap(to, p))
                    if len(keep) > 8:
                        keep.pop(0)
                    sess.receive(p, self.now)
        c.events()
        s.events()
        self.now += 40

    def quiesce(self):
        self._new_pair()

    def feed(self, data):
        to = self.turn
        self.turn = "s" if to == "c" else "c"
        if self.signer is not None and data and data[0] >> 3 not in (6, 9) and len(data) >= 9:
            data = tls_auth(self.pki, 1 if to == "s" else 0).wrap(data, self.now)
        self.side[to].receive(data, self.now)
        self._exchange()
        self.left -= 1
        if self.left <= 0 or self.side["c"].closed or self.side["s"].closed:
            self._new_pair()


class ServeDatagrams(Target):
    """`ovpnkx serve`'s UDP datagram handler (CPython): the stateless cookie, session
    creation and every session's receive, from 8 peer addresses."""

    max_len = 1600

    def __init__(self, ctx):
        if MICROPYTHON:
            raise SkipTarget("ovpnkx serve runs on CPython")
        import asyncio
        self.asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self.pki = ctx["pki"]
        self.rng = ctx["rng"]
        self.seeds = []
        self.loop.run_until_complete(self._setup(ctx["pki_dir"]))

    async def _setup(self, pki_dir):
        from ovpnkx import packet as pk
        from ovpnkx.config import parse_config
        from ovpnkx_host import server

        def read(path):
            with open(path) as f:
                return f.read()
        conf = "\n".join(["server 10.8.0.0 255.255.255.0", "proto udp", "port 0", "local 127.0.0.1",
                          "ca %s/ca.crt" % pki_dir, "cert %s/server.crt" % pki_dir, "key %s/server.key" % pki_dir,
                          "tls-auth %s/ta.key 0" % pki_dir, "keepalive 10 60", "data-ciphers AES-256-GCM", ""])
        self.events = 0

        def emit(record):
            self.events += 1
        self.server = server.Server(parse_config(conf, "server.conf", read, server=True), True, emit)
        self.sent = []
        outer = self

        class Udp:  # the server's UDP socket (server.UdpListener), as far as replies go
            def sendto(self, data, addr):
                outer.sent.append((data, addr))
                if len(outer.sent) > 16:
                    outer.sent.pop(0)
        self.server.udp = Udp()
        # genuine openings: a client reset, then (for the answer) its cookie proof
        client = tls_auth(self.pki, 1)
        for i in range(4):
            sid = bytes([i + 1]) * 8
            reset = client.wrap(pk.ControlPacket(pk.P_CONTROL_HARD_RESET_CLIENT_V2, 0, sid, (), None, 0,
                                                 b"").to_bytes(), server.now_ms())
            self.server.datagram(("127.0.0.1", 40000 + i), reset)
            answer = self.sent[-1][0]
            srv_sid = pk.parse_control(tls_auth(self.pki, 1).unwrap(answer, server.now_ms())).session_id
            proof = client.wrap(pk.ControlPacket(pk.P_CONTROL_V1, 0, sid, (0,), srv_sid, 1,
                                                 b"\x16\x03\x01\x00\x05hello").to_bytes(), server.now_ms())
            self.seeds += [reset, proof]

    def quiesce(self):
        self.server.close_all("fuzz: memory is measured")
        self.loop.run_until_complete(self.asyncio.sleep(0))

    def feed(self, data):
        addr = ("127.0.0.1", 40000 + self.rng.below(8))
        self.server.datagram(addr, data)
        if self.rng.below(64) == 0:
            self.loop.run_until_complete(self.asyncio.sleep(0))


TARGETS = {
    "packet.opcode_key_id": t_opcode,
    "packet.parse_control": t_parse_control,
    "packet.parse_tlvs": t_tlvs,
    "streambuf.StreamDeframer": Deframer,
    "serialframe.FrameDecoder": SerialFrames,
    "seriallink.Link.receive": SerialLink,
    "keymethod2.read (from client)": t_km2_client,
    "keymethod2.read (from server)": t_km2_server,
    "keymethod2.parse_peer_info": t_peer_info,
    "push.PushReply.add": t_push_reply,
    "tlswrap.TlsAuth.unwrap": lambda ctx: TlsAuthUnwrap(ctx, False),
    "tlswrap.TlsAuth.unwrap (re-signed)": lambda ctx: TlsAuthUnwrap(ctx, True),
    "tlscrypt.TlsCrypt.unwrap": lambda ctx: TlsCryptUnwrap(ctx, False),
    "tlscrypt.TlsCrypt.unwrap (re-sealed)": lambda ctx: TlsCryptUnwrap(ctx, True),
    "tlscrypt_server.TlsCryptV2Server.unwrap": TlsCryptV2Server,
    "tlscrypt_server.unwrap_client_key": t_v2_client_key,
    "datachannel.decrypt AES-256-GCM": lambda ctx: DataDecrypt(ctx, "AES-256-GCM"),
    "datachannel.decrypt CHACHA20-POLY1305": lambda ctx: DataDecrypt(ctx, "CHACHA20-POLY1305"),
    "datachannel.decrypt AES-256-CBC": lambda ctx: DataDecrypt(ctx, "AES-256-CBC", "SHA256"),
    "datachannel.decrypt AES-256-GCM (re-sealed)": lambda ctx: DataDecrypt(ctx, "AES-256-GCM", reseal=True),
    "datachannel.decrypt AES-256-CBC (re-sealed)": lambda ctx: DataDecrypt(ctx, "AES-256-CBC", "SHA256", True),
    "cookie.reply/verify": Cookie,
    "certinfo.CertInfo": t_certinfo,
    "x509verify.Cert": t_x509_cert,
    "x509verify.verify_chain": X509Chain,
    "tls_mbedtls records": t_tls_records,
    "TLS engine, server": lambda ctx: TlsEngine(ctx, True),
    "TLS engine, client": lambda ctx: TlsEngine(ctx, False),
    "Session.receive": lambda ctx: SessionPair(ctx, False),
    "Session.receive (tls-auth)": lambda ctx: SessionPair(ctx, True),
    "serve datagram handler": ServeDatagrams,
}


def memory():
    """Bytes in use: RSS on CPython, the GC heap in use on MicroPython."""
    gc.collect()
    if MICROPYTHON:
        return gc.mem_alloc()
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource
    return pages * resource.getpagesize()


def run(name, n, seed, pki_dir, crash_dir=None):
    """Fuzz target ``name`` with ``n`` inputs; the summary dict."""
    rng = Rng(seed)
    cache = {}
    pki = Pki(pki_dir)

    def flights():
        if "f" not in cache:
            cache["f"] = _record_flights(pki)
        return cache["f"]
    ctx = {"rng": Rng(seed ^ 0x5A5A), "pki": pki, "pki_dir": pki_dir, "flights": flights}
    out = {"target": name, "runtime": "micropython" if MICROPYTHON else "cpython", "inputs": 0,
           "remote_errors": 0, "other": {}}
    try:
        target = TARGETS[name](ctx)
    except SkipTarget as exc:
        out["skipped"] = str(exc)
        return out
    except Exception as exc:  # noqa: BLE001 - the harness is broken for this target: say so, go on
        _note(out, exc, b"", None, name)
        out["other"]["setup: " + type(exc).__name__] = out["other"].pop(type(exc).__name__)
        return out
    # memory after a warm-up, and at 40 %, 70 % and the end: growth that goes on is a leak,
    # a step early on is caches and allocator arenas filling
    marks = (min(max(n // 10, 1), 2000), n * 4 // 10, n * 7 // 10)
    out["mem"] = [memory()]
    t0 = time.time()
    for i in range(n):
        if i in marks:
            if i == marks[0]:
                out["mem"] = []
            target.quiesce()
            out["mem"].append(memory())
        corpus = target.corpus()
        r = rng.below(32)
        if r == 0:
            data = rng.blob(rng.below(target.max_len // 4 + 1))
        elif r == 1:
            data = corpus[rng.below(len(corpus))]
        else:
            data = mutate(rng, corpus[rng.below(len(corpus))], corpus, target.max_len)
        try:
            target.feed(data)
        except RemoteProtocolError as exc:
            if target.strict:
                _note(out, exc, data, crash_dir, name)
            else:
                out["remote_errors"] += 1
        except Exception as exc:  # noqa: BLE001 - the finding itself
            _note(out, exc, data, crash_dir, name)
        out["inputs"] += 1
    out["seconds"] = round(time.time() - t0, 1)
    target.quiesce()
    out["mem"].append(memory())
    return out


def _note(out, exc, data, crash_dir, name):
    kind = type(exc).__name__
    rec = out["other"].get(kind)
    if rec is None:
        rec = out["other"][kind] = {"count": 0, "message": str(exc)[:200], "input": data[:400].hex()}
        if crash_dir:
            safe = "".join([ch if ch.isalpha() or ch.isdigit() else "_" for ch in name])
            with open("%s/%s-%s-%s.bin" % (crash_dir, safe, out["runtime"], kind), "wb") as f:
                f.write(data)
    rec["count"] += 1


def main(argv):
    """TARGET (or ALL: every target, one JSON line each) INPUTS SEED PKI_DIR [CRASH_DIR]."""
    import json
    name, n, seed, pki_dir = argv[0], int(argv[1]), int(argv[2]), argv[3]
    crash_dir = argv[4] if len(argv) > 4 else None
    for one in (list(TARGETS) if name == "ALL" else [name]):
        print(json.dumps(run(one, n, seed, pki_dir, crash_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
