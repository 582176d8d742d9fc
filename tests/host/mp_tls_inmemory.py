# Run on a simulated board (mpremote run): one P-256 TLS handshake with both ends in
# this interpreter over in-memory pipes, the client verifying the chain (the script of
# ../shared/BOARDS.md's measurement). Prints JSON: cipher, GC heap taken, mbedTLS's charge.
import binascii
import gc
import io
import json

import machine
import tls

try:
    import _simtls  # the sim's charge for mbedTLS (rp2 boards only)
except ImportError:
    _simtls = None

machine.RTC().datetime(RTC_NOW)  # the test puts the host's date here: the certificates are fresh


def der(path):
    with open(path) as f:
        text = f.read()
    return binascii.a2b_base64("".join(ln for ln in text.splitlines() if ln and not ln.startswith("-----")))


class Pipe(io.IOBase):
    def __init__(self):
        self.buf = b""
        self.peer = None

    def readinto(self, b):
        n = min(len(b), len(self.buf))
        if not n:
            return None
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def write(self, d):
        self.peer.buf += bytes(d)
        return len(d)

    def ioctl(self, req, arg):
        return 0


gc.collect()
before = gc.mem_alloc()
sc = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
sc.load_cert_chain(der("pki/server.crt"), der("pki/server.key"))
cc = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
cc.load_verify_locations(der("pki/ca.crt"))
cc.verify_mode = tls.CERT_REQUIRED
a, b = Pipe(), Pipe()
a.peer, b.peer = b, a
c = cc.wrap_socket(a, server_side=False, do_handshake_on_connect=False, server_hostname="server")
s = sc.wrap_socket(b, server_side=True, do_handshake_on_connect=False)
for _ in range(20):
    for x in (c, s):
        x.read(16)
print(json.dumps({"cipher": c.cipher()[0], "alloc_delta": gc.mem_alloc() - before,
                  "charged": _simtls.charged() if _simtls else 0,
                  "blocks": sorted(len(b) for b in _simtls._big) if _simtls else []}))
