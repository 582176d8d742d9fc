"""Control-channel protection: cost per control packet, CPython vs MicroPython; RAM on MicroPython.

    .venv/bin/python bench/run.py --only tlscrypt      (a section of `make bench`)
    .venv/bin/python bench/bench_tlscrypt.py

Wraps and unwraps control packets of 100 bytes (an ack, a short control message)
and 1250 bytes (a full ``tls-mtu`` packet of TLS records) with no protection,
tls-auth (SHA1, SHA256), tls-crypt and tls-crypt-v2, and times the tls-crypt-v2
server's first packet (the wrapped client key unwrapped with the server key, then
the packet). CPython uses OpenSSL's AES-CTR; the "portable" column runs
``ovpnkx.ctr`` (CTR over ECB, what stock MicroPython firmware runs) on CPython. The
same file runs under MicroPython (started here with MICROPYPATH=firmware), where it
prints its results as JSON; with ``--ram`` it reports the heap that importing the
modules and holding the wrappers takes. A benchmark, not a test: nothing is asserted.
"""

import gc
import json
import sys

from _clock import now as _now, us as _us


def _seconds(t0, t1):
    return _us(t0, t1) / 1e6


MP = sys.implementation.name == "micropython"
SIZES = (100, 1250)
KEY = bytes((i * 37 + 11) & 0xFF for i in range(256))
SERVER_KEY = bytes((i * 53 + 7) & 0xFF for i in range(128))
KC = bytes((i * 91 + 3) & 0xFF for i in range(256))

if not MP:
    import os
    import subprocess

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(ROOT, "firmware"))


def _plain(opcode, size):
    """A plain control packet of ``size`` bytes (op|key_id, session_id, the rest)."""
    return bytes([opcode << 3]) + b"\x01" * 8 + bytes(size - 9)


def _pairs(crypto):
    """name -> (make a sender, make a receiver, opcode of the packets)."""
    from ovpnkx.tlscrypt import TlsCrypt
    from ovpnkx.tlscrypt_server import TlsCryptV2Server, TlsCryptV2ServerKey
    from ovpnkx.tlswrap import TlsAuth, TlsPlain

    sk = TlsCryptV2ServerKey(SERVER_KEY, crypto)
    wkc = sk.wrap_client_key(KC, b"\x01" + bytes(8))

    def v2_server():
        server = TlsCryptV2Server(sk)
        server.unwrap(TlsCrypt(KC, False, crypto, wkc=wkc).wrap(_plain(10, 14), 0), 0)  # learn Kc
        return server

    return [
        ("none", TlsPlain, TlsPlain, 4),
        ("tls-auth SHA1", lambda: TlsAuth(KEY, 1), lambda: TlsAuth(KEY, 0), 4),
        ("tls-auth SHA256", lambda: TlsAuth(KEY, 1, "SHA256"), lambda: TlsAuth(KEY, 0, "SHA256"), 4),
        ("tls-crypt", lambda: TlsCrypt(KEY, False, crypto), lambda: TlsCrypt(KEY, True, crypto), 4),
        ("tls-crypt-v2", lambda: TlsCrypt(KC, False, crypto, wkc=wkc), v2_server, 4),
        # every packet a fresh server wrapper: WKc unwrapped with the server key, then the packet
        ("v2 first packet", lambda: TlsCrypt(KC, False, crypto, wkc=wkc), lambda: TlsCryptV2Server(sk), 10),
    ]


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _measure(make_send, make_recv, opcode, size, budget_s, fresh_receiver):
    """(µs per wrap, µs per unwrap): medians over rounds of 64 packets (at least 3 rounds)."""
    plain = _plain(opcode, size)
    wraps, unwraps = [], []
    spent = 0.0
    while spent < budget_s or len(wraps) < 3:
        if MP:
            gc.collect()  # a board's heap is small: start each round clean
        send = make_send()
        recv = None if fresh_receiver else make_recv()
        t0 = _now()
        wires = [send.wrap(plain, 1000) for _ in range(64)]
        t1 = _now()
        if fresh_receiver:
            for w in wires:
                make_recv().unwrap(w, 1000)
        else:
            for w in wires:
                recv.unwrap(w, 1000)
        t2 = _now()
        wraps.append(1e6 * _seconds(t0, t1) / 64)
        unwraps.append(1e6 * _seconds(t1, t2) / 64)
        spent += _seconds(t0, t2)
    return _median(wraps), _median(unwraps)


def measure_all(label, crypto, budget_s):
    out = {}
    for name, make_send, make_recv, opcode in _pairs(crypto):
        for size in SIZES:
            out["%s|%s|%d" % (label, name, size)] = _measure(make_send, make_recv, opcode, size, budget_s,
                                                             name == "v2 first packet")
    return out


def _mp_ram():
    """Heap bytes: importing tlscrypt and ctr on top of what every session imports, the
    wrappers, and what one 1250-byte packet each way allocates."""
    from ovpnkx import session  # noqa: F401  (a session imports tlswrap, packet, digest anyway)
    from ovpnkx.crypto_mp import MicroPythonCrypto
    gc.collect()
    before = gc.mem_alloc()
    from ovpnkx import ctr, tlscrypt  # noqa: F401  (what a client, a board, loads)
    gc.collect()
    after_import = gc.mem_alloc()
    from ovpnkx import tlscrypt_server
    gc.collect()
    after_server_import = gc.mem_alloc()
    crypto = MicroPythonCrypto()
    sk = tlscrypt_server.TlsCryptV2ServerKey(SERVER_KEY, crypto)
    wkc = sk.wrap_client_key(KC, b"\x01" + bytes(8))
    gc.collect()
    t0 = gc.mem_alloc()
    client = tlscrypt.TlsCrypt(KC, False, crypto, wkc=wkc)
    gc.collect()
    t1 = gc.mem_alloc()
    server = tlscrypt_server.TlsCryptV2Server(sk)
    server.unwrap(client.wrap(_plain(10, 14), 0), 0)
    gc.collect()
    t2 = gc.mem_alloc()
    # what one 1250-byte packet each way allocates (temporary big ints, key stream: garbage
    # the collector frees; the most alive at once is a few times the packet)
    plain = _plain(4, 1250)
    gc.collect()
    gc.disable()
    free0 = gc.mem_free()
    server.unwrap(client.wrap(plain, 1000), 1000)
    allocated = free0 - gc.mem_free()
    gc.enable()
    return {"import": after_import - before, "server_import": after_server_import - after_import, "client": t1 - t0, "server": t2 - t1, "allocated": allocated,
            "native_ctr": crypto.ctr_native}


def _mp_main():
    if "--ram" in sys.argv:
        print(json.dumps(_mp_ram()))
        return
    from ovpnkx.crypto_mp import MicroPythonCrypto

    budget = float(sys.argv[1]) if len(sys.argv) > 1 else BUDGET_S
    crypto = MicroPythonCrypto()
    res = measure_all("micropython", crypto, budget)
    print(json.dumps({"native_ctr": crypto.ctr_native, "results": res}))


TITLE = "Control-channel protection: µs per control packet (tls-auth, tls-crypt, tls-crypt-v2); RAM"
BUDGET_S = 0.4  # seconds of wrap+unwrap per (runtime, protection, size); --quick: QUICK_BUDGET_S
QUICK_BUDGET_S = 0.05


class _PortableCtrHost:
    """Host crypto whose AES-CTR is ovpnkx.ctr over OpenSSL's ECB (the MicroPython code path)."""

    def __init__(self, host):
        self._host = host

    def ctr_encryptor(self, key):
        from ovpnkx.ctr import ctr_crypt

        ecb = self._host.ecb_encryptor(key)
        return lambda iv, data: ctr_crypt(ecb, iv, data)


def _micropython(args):
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    proc = subprocess.run([mp, os.path.abspath(__file__)] + args, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware")))
    if proc.returncode:
        raise RuntimeError("MicroPython run failed:\n" + proc.stderr + proc.stdout)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args):
    """bench/run.py section: the table as text (``args.quick``: shorter measurements)."""
    return _host_table(QUICK_BUDGET_S if getattr(args, "quick", False) else BUDGET_S)


def _host_table(budget_s):
    from ovpnkx_host.crypto_host import HostCrypto

    host = HostCrypto()
    res = measure_all("cpython", host, budget_s)
    res.update(measure_all("portable", _PortableCtrHost(host), budget_s))
    mp_out = _micropython([str(budget_s)])
    res.update(mp_out["results"])
    ram = _micropython(["--ram"])
    lines = ["µs per control packet (medians over rounds of 64); MPy/auth: wrap+unwrap on MicroPython against"
             " tls-auth SHA1's; MicroPython AES-CTR: %s"
             % ("cryptolib's CTR" if mp_out["native_ctr"] else "ovpnkx.ctr over cryptolib's ECB (no CTR in this firmware)")]
    head = "%-17s %5s | %9s %9s | %9s %9s | %9s %9s | %8s %8s" % (
        "protection", "bytes", "CPy wrap", "unwrap", "portable", "unwrap", "MPy wrap", "unwrap",
        "MPy/auth", "MPy/CPy")
    lines += [head, "-" * len(head)]
    names = [p[0] for p in _pairs(host)]

    def cell(key, i):
        return "%9.1f" % res[key][i] if key in res else "%9s" % "-"

    for name in names:
        for size in SIZES:
            k = "|%s|%d" % (name, size)
            mpk, base = "micropython" + k, "micropython|tls-auth SHA1|%d" % size
            extra = "%7.1fx" % ((res[mpk][0] + res[mpk][1]) / (res[base][0] + res[base][1]))
            ratio = "%7.0fx" % ((res[mpk][0] + res[mpk][1]) / (res["cpython" + k][0] + res["cpython" + k][1]))
            lines.append("%-17s %5d | %s %s | %s %s | %s %s | %s %s" % (
                name, size, cell("cpython" + k, 0), cell("cpython" + k, 1), cell("portable" + k, 0),
                cell("portable" + k, 1), cell(mpk, 0), cell(mpk, 1), extra, ratio))
    lines.append("")
    lines.append("MicroPython heap (bytes, unix port): importing tlscrypt+ctr (a client) on top of a session's"
                 " modules %d, tlscrypt_server (a server) %d more; a tls-crypt-v2 client wrapper %d;"
                 " a keyed server wrapper %d; allocated (garbage) by one 1250-byte packet wrapped and unwrapped %d"
                 % (ram["import"], ram["server_import"], ram["client"], ram["server"], ram["allocated"]))
    return "\n".join(lines)


if __name__ == "__main__":
    if MP:
        _mp_main()
    else:
        print(_host_table(BUDGET_S))
