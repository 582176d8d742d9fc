"""MicroPython side of the MbedTlsEngine tests (run by tests/host/test_tls_*.py).

    micropython mp_tls_peer.py pair CA CERT KEY CA CERT KEY [CLIENT_RCT [SERVER_RCT]]
        client (first triple) and server (second triple) engines in this one process;
        prints one JSON object: outcome, reasons, records, timings and heap use.
    micropython mp_tls_peer.py again CA CERT KEY CA CERT KEY OTHER_CA
        client handshakes one after another, as a session's renegotiations make them, its
        engines sharing one context (the same chain, then at a date past its validity, then
        another session with another CA, then the first session again); prints one JSON
        object: per handshake, the client's x509verify and tlscontext imports and the outcome.
    micropython mp_tls_peer.py policy CA CERT KEY CA CERT KEY
        a session's engines whose checks of the server's certificate are made when it comes
        (``peer`` a function): refused with remote-cert-tls client, then passed with server;
        prints one JSON object: per handshake, the function's calls and the outcome.
    micropython mp_tls_peer.py client|server CA CERT KEY [RCT]
        one engine whose TLS bytes travel as hex lines over stdin/stdout:
        in  "TLS <hex>" (peer bytes) | "APP <hex>" (write a record) | "QUIT"
        out "TLS <hex>" | "APP <hex>" (a record read) | "DONE <subject>|<cipher>"
            | "ERR <reason>" | "STAT <json>" | "READY" (input line handled)
"""

import binascii
import gc
import json
import sys
import time

import micropython

from ovpnkx.errors import LocalProtocolError, RemoteProtocolError
from ovpnkx.tls_mbedtls import MbedTlsEngine


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def arg_rct(i):
    if len(sys.argv) > i and sys.argv[i] != "-":
        return sys.argv[i]
    return None


def rev(b):
    return bytes(reversed(b))


def pump(a, b):
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.pending_ciphertext()
            if data:
                dst.feed(data)
                moved = True
        if not moved:
            return
    raise AssertionError("TLS did not settle")


def pair():
    a = sys.argv[2:8]
    res = {}
    import ovpnkx.x509verify as xv  # the client imports it when it checks the chain: spy on what is loaded then

    real_verify = xv.verify_chain

    def verify_spy(*args):
        res["certinfo_during_chain_check"] = "ovpnkx.certinfo" in sys.modules
        res["reader_during_chain_check"] = "ovpnkx.x509cert" in sys.modules
        res["der_during_chain_check"] = "ovpnkx.der" in sys.modules
        res["chain_check_took_parsed"] = all(isinstance(c, list) for c in args[0] + args[1])
        return real_verify(*args)

    xv.verify_chain = verify_spy
    sys.modules.pop("ovpnkx.certinfo", None)  # loaded by x509verify before; only the engines load it now
    gc.collect()
    base = micropython.mem_current()
    t0 = time.ticks_ms()
    client = MbedTlsEngine(False, rd(a[0]), rd(a[1]), rd(a[2]), arg_rct(8))
    server = MbedTlsEngine(True, rd(a[3]), rd(a[4]), rd(a[5]), arg_rct(9))
    client.start()
    server.start()
    try:
        pump(client, server)
    except RemoteProtocolError as exc:
        res["error"] = str(exc)
        # let the other side read the alert, if any
        for src, dst, key in ((client, server, "server_error"), (server, client, "client_error")):
            data = src.pending_ciphertext()
            if data:
                try:
                    dst.feed(data)
                except RemoteProtocolError as exc2:
                    res[key] = str(exc2)
    res["ms"] = time.ticks_diff(time.ticks_ms(), t0)
    res["heap_peak"] = micropython.mem_peak() - base
    res["complete"] = [client.handshake_complete, server.handshake_complete]
    if "error" in res:
        print(json.dumps(res))
        return
    res["subjects"] = [client.peer_subject, server.peer_subject]
    res["handshake_code_left"] = [m for m in ("ovpnkx.tlscontext", "ovpnkx.servercheck", "ovpnkx.x509verify",
                                              "ovpnkx.x509cert") if m in sys.modules]
    res["cipher"] = client.cipher_name
    gc.collect()
    res["heap_after"] = micropython.mem_current() - base
    msgs = [b"PUSH_REQUEST\x00", b"a", bytes(range(256)) * 16, b"\x00\x00\x00\x00\x02" + bytes(200)]
    for m in msgs:
        client.write(m)
    server.feed(client.pending_ciphertext())
    got = [server.read() for _ in msgs]
    res["c2s_ok"] = got == msgs and server.read() == b""
    for m in msgs:
        server.write(rev(m))
    data = server.pending_ciphertext()
    for i in range(len(data)):  # byte by byte
        client.feed(data[i:i + 1])
    res["s2c_ok"] = [client.read() for _ in msgs] == [rev(m) for m in msgs] and client.read() == b""
    errs = []
    for call in (lambda: client.write(bytes(client.max_record + 1)),
                 lambda: client.write(b""),
                 lambda: client.export_keying_material(b"EXPORTER-OpenVPN-datakeys", 256),
                 lambda: client.start()):
        try:
            call()
            errs.append(None)
        except LocalProtocolError as exc:
            errs.append(str(exc))
    res["local_errors"] = errs
    try:
        server.feed(b"\x17\x03\x03\x00\x20" + bytes(32))
        res["garbage"] = None
    except RemoteProtocolError as exc:
        res["garbage"] = str(exc)
    print(json.dumps(res))


def out(engine):
    data = engine.pending_ciphertext()
    if data:
        print("TLS", binascii.hexlify(data).decode())


def peer(is_server):
    a = sys.argv[2:5]
    spent = 0
    gc.collect()
    base = micropython.mem_current()
    t0 = time.ticks_ms()
    engine = MbedTlsEngine(is_server, rd(a[0]), rd(a[1]), rd(a[2]), arg_rct(5))
    engine.start()
    spent += time.ticks_diff(time.ticks_ms(), t0)
    out(engine)
    print("READY")
    done = False
    while True:
        line = sys.stdin.readline()
        if not line or line.startswith("QUIT"):
            break
        kind, _, payload = line.strip().partition(" ")
        data = binascii.unhexlify(payload)
        t0 = time.ticks_ms()
        try:
            if kind == "TLS":
                engine.feed(data)
            else:
                engine.write(data)
        except (RemoteProtocolError, LocalProtocolError) as exc:
            out(engine)
            print("ERR", str(exc).replace("\n", " "))
            print("READY")
            continue
        if not done:
            spent += time.ticks_diff(time.ticks_ms(), t0)
        while True:
            rec = engine.read()
            if not rec:
                break
            print("APP", binascii.hexlify(rec).decode())
        if engine.handshake_complete and not done:
            done = True
            print("DONE %s|%s" % (engine.peer_subject, engine.cipher_name))
            print("STAT", json.dumps({"handshake_cpu_ms": spent,
                                      "heap_peak": micropython.mem_peak() - base}))
        out(engine)
        print("READY")


def _shake(client, server):
    """A handshake between two fresh engines; the error that ended it, or None. The server
    is closed after it."""
    client.start()
    server.start()
    try:
        pump(client, server)
    except RemoteProtocolError as exc:
        return str(exc)
    finally:
        server.close()
    return None


def again():
    import builtins

    a = sys.argv[2:9]
    imports = []
    real_import = builtins.__import__

    def spy(name, *args):
        if name.rpartition(".")[2] in ("x509verify", "tlscontext"):
            imports.append(name.rpartition(".")[2])
        return real_import(name, *args)

    builtins.__import__ = spy
    future = 7258118400  # 2200-01-01: past every certificate's validity
    runs = []
    session, other = [], []  # two sessions' shared contexts: our CA's, another CA's
    for ca, now, context in ((a[0], None, session), (a[0], None, session), (a[0], future, session),
                             (a[6], None, other), (a[0], None, session)):
        del imports[:]
        client = MbedTlsEngine(False, rd(ca), rd(a[1]), rd(a[2]), "server",
                               now=None if now is None else (lambda t=now: t), context=context)
        error = _shake(client, MbedTlsEngine(True, rd(a[3]), rd(a[4]), rd(a[5]), "client"))
        runs.append([imports.count("x509verify"), imports.count("tlscontext") - 1, client.handshake_complete,
                     error, client.peer_subject])
        client.close()
    builtins.__import__ = real_import
    print(json.dumps({"runs": runs}))


def policy():
    from ovpnkx.certinfo import PeerPolicy

    a = sys.argv[2:8]
    runs = []
    context = []
    for role in (None, "client", "server", "server"):
        calls = []

        def make(role=role):
            calls.append(role)
            return PeerPolicy.remote_cert_tls(role)

        if role is None:  # the session's first engine: its context, and the config's checks given
            client = MbedTlsEngine(False, rd(a[0]), rd(a[1]), rd(a[2]), "client", context=context)
        else:
            client = MbedTlsEngine(False, None, b"", b"", peer=make, context=context)
        error = _shake(client, MbedTlsEngine(True, rd(a[3]), rd(a[4]), rd(a[5]), "client"))
        runs.append([len(calls), client.handshake_complete, error])
        client.close()
    print(json.dumps({"runs": runs}))


if sys.argv[1] == "pair":
    pair()
elif sys.argv[1] == "again":
    again()
elif sys.argv[1] == "policy":
    policy()
else:
    peer(sys.argv[1] == "server")
