"""What a board's heap holds while its TLS handshake runs (issue 11): the session's
code, and not the code that is needed only after it (key method 2, the PRF, push) nor
the noise side of the parked TRNG chain (driver, health tests, the reading and
conditioning of ``ovpnkx.seeding``), nor the CBC+HMAC data channel in a GCM session, nor
any server-role code (a board is a client). Run on the MicroPython unix port, with the
firmware's modules as the device app imports them."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

SCRIPT = r"""
import sys
sys.path[:0] = [%(firmware)r, %(board)r]
LATER = ("ovpnkx.keymethod2", "ovpnkx.prf", "ovpnkx.push")
NOISE = ("noise", "ovpnkx.noise", "ovpnkx.health", "ovpnkx.health_cutoff", "ovpnkx.health_portable",
         "ovpnkx.hostentropy", "ovpnkx.seeding")  # health_cutoff: never on a board (host-only)

def loaded(names):
    return [n for n in names if n in sys.modules]

# what run_once imports for a serial session, up to its TLS handshake
import ovpnkx.clientconfig, ovpnkx.crypto_mp, ovpnkx.tls_mbedtls
import ovpnkx_device.runner, ovpnkx_device.serial
print("handshake-code", loaded(LATER + NOISE + ("ovpnkx.wrapconfig",)))
# what a serial client never runs: the server role (host-only modules, tools/flash.py
# HOST_ONLY), host-only conveniences and TCP's framing; the names are what used to sit in
# the client's resident modules (the cookie flow, PUSH_REPLY, the TLV writer, the diagram,
# KeyState's unused hand-window, a server config's attributes)
print("not-needed", loaded(%(host_only)r + ("ovpnkx.streambuf",)))
from ovpnkx import clientconfig, control, keystate, negotiation, packet, tlswrap
NOT_NEEDED = ((negotiation.Negotiation, "send_push_reply"), (control.KeyStateChannel, "skip_resets"),
              (tlswrap.TlsAuth, "continue_sending_after"), (packet, "encode_tlvs"), (keystate, "dot"),
              (packet, "StreamDeframer"), (keystate.KeyState, "check_timeout"),
              (clientconfig.ClientConfig, "tls_crypt_v2_force_cookie"),
              (clientconfig.ClientConfig("c.ovpn"), "max_clients"))
print("not-needed-code", [getattr(c, "__name__", "") + "." + a for c, a in NOT_NEEDED if hasattr(c, a)])

# the board's TRNG chain, reseeded ahead and parked as run_once does
from ovpnkx_device.app import BoardNoise
from ovpnkx_device.entropy_select import board_entropy
entropy = board_entropy()
del board_entropy
sys.modules.pop("ovpnkx_device.entropy_select")
entropy.reseed_ahead()


DRIVERS = ("ovpnkx.noise_esp32", "ovpnkx.noise_rp2040", "ovpnkx.noise_rp2350", "ovpnkx.noise_sim")


class Probe(BoardNoise):
    seen = []  # what is loaded when the noise side comes back for a reseed
    drivers = []  # and which chips' drivers with it

    def load(self):
        self.seen.append(loaded(NOISE))
        try:
            return BoardNoise.load(self)
        finally:
            self.drivers.append(loaded(DRIVERS))


entropy.park(Probe())
print("parked", loaded(NOISE), entropy.state)
entropy.reseed()  # the first key_state: taken from the reseed ahead
a = entropy.random_bytes(32)
print("first-key-state", loaded(NOISE), len(a))
entropy.reseed()  # a renegotiation: the noise side comes back for it, and goes again
b = entropy.random_bytes(32)
print("renegotiation", loaded(NOISE), entropy.reseed_count, a != b, entropy.state)
print("reseed-code", Probe.seen)
print("reseed-drivers", Probe.drivers, loaded(DRIVERS))

# the data channel: CBC+HMAC only where the cipher is CBC
from ovpnkx.datachannel import DataChannel


class Key:
    cipher = bytes(range(64))
    hmac = bytes(range(64, 128))


DATA = ("ovpnkx.datacbc", "ovpnkx.ghash_full", "ovpnkx._gcm_viper")
gcm = DataChannel(ovpnkx.crypto_mp.MicroPythonCrypto(True), "AES-256-GCM", "SHA1", Key, Key, 0)  # compact_gcm
print("gcm-data", loaded(DATA), len(gcm.decrypt(gcm.encrypt(b"x"))))
full = DataChannel(ovpnkx.crypto_mp.MicroPythonCrypto(False), "AES-128-GCM", "SHA1", Key, Key, 0)
print("full-gcm-data", loaded(DATA), len(full.decrypt(full.encrypt(b"x"))))
sys.modules.pop("ovpnkx._gcm_viper")
sys.modules.pop("ovpnkx.ghash_full")
cbc = DataChannel(ovpnkx.crypto_mp.MicroPythonCrypto(), "AES-256-CBC", "SHA256", Key, Key, 0)
print("cbc-data", loaded(DATA), len(cbc.decrypt(cbc.encrypt(b"x"))))
"""


def _run() -> dict:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        from flash import HOST_ONLY
    finally:
        sys.path.pop(0)
    host_only = tuple(m[:-3].replace("/", ".") for m in HOST_ONLY)
    code = SCRIPT % {"firmware": os.path.join(ROOT, "firmware"), "board": os.path.join(ROOT, "boards", "sim"),
                     "host_only": host_only}
    proc = subprocess.run([MICROPYTHON, "-X", "heapsize=2M", "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in proc.stdout.splitlines()}


def test_the_handshake_code_and_the_parked_trng_leave_the_rest_out():
    out = _run()
    assert out["handshake-code"] == "[]"  # nothing of LATER or NOISE
    assert out["parked"] == "[] ok"
    assert out["first-key-state"] == "[] 32"
    assert out["renegotiation"] == "[] 2 True ok"
    # the reading and conditioning of the noise come with the noise side, and go with it
    assert out["reseed-code"] == "[['ovpnkx.health', 'ovpnkx.seeding']]"
    # the board's own driver only (the sim's: its model), and it goes again after the reseed
    assert out["reseed-drivers"] == "[['ovpnkx.noise_sim']] []"


def test_the_serial_client_loads_no_server_host_only_or_tcp_code():
    out = _run()
    assert out["not-needed"] == "[]"
    assert out["not-needed-code"] == "[]"


def test_a_session_holds_the_data_channel_code_of_its_cipher_only():
    out = _run()
    assert out["gcm-data"] == "[] 1"  # compact GHASH: no full-table GHASH, native or not
    assert out["full-gcm-data"] == "['ovpnkx.ghash_full', 'ovpnkx._gcm_viper'] 1"  # the unix port has viper
    assert out["cbc-data"] == "['ovpnkx.datacbc'] 1"
