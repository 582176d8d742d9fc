#!/usr/bin/env python3
"""Capture known-answer vectors for the PRF key expansion from the real openvpn 2.6.

Usage: .venv/bin/python tools/capture_kat.py [--out tests/data/kat_openvpn.json]

For each scenario it makes a fresh test PKI, starts an openvpn p2p ``--tls-server``
and an openvpn ``--tls-client --pull`` on 127.0.0.1 (``--dev null``, verb 9 on both),
waits until both sides have completed and each has decrypted the other's keepalive
ping, stops both and reads from the two logs:

- the key source (``Client pre_master/random1/random2``, ``Server random1/random2``),
- both session ids (the sid fields of the P_CONTROL_HARD_RESET_CLIENT/SERVER_V2 dumps),
- the key2 prefixes printed by ``key2_print`` (``Master Encrypt`` = keys[0],
  ``Master Decrypt`` = keys[1]) and each side's Outgoing/Incoming Data Channel keys,
- for AEAD ciphers the implicit IVs (``ENCRYPT IV`` / ``DECRYPT IV`` lines),
- both options strings, both peer-info strings and both key method 2 plaintext
  lengths (first ``tls_write_plaintext`` of each side).

Why ``--pull`` on the client: a p2p 2.6 pair negotiates tls-ekm (both announce
IV_PROTO bits 32 and 8), which derives the keys with the TLS exporter and prints
no key source. A client with ``--pull`` does not announce IV_PROTO_NCP_P2P (32), so
the p2p server skips P2P NCP and derives the keys with the TLS 1.0 PRF; the log says
``P2P mode NCP negotiation result: TLS_export=0``, which this tool checks.

It also records TLS 1.0 PRF vectors: two from OpenSSL's test suite
(evpkdf_tls11_prf.txt, NIST) and several odd-length-secret vectors computed by
``openssl kdf ... TLS1-PRF`` (OpenSSL's own implementation).

Every openvpn started here runs under ``timeout`` and is terminated, then killed.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, "host"))

from ovpnkx_host.pki import make_pki  # noqa: E402
from ovpnkx_host.process import stop_process  # noqa: E402

OPENVPN = shutil.which("openvpn") or "/usr/sbin/openvpn"
# a decrypted keepalive ping (CBC plaintext starts with the 4-byte packet-id)
PING_DECRYPTED = re.compile(r"DECRYPT TO: (?:[0-9a-f]{8} )?2a187bf3 641eb4cb 07ed2d0a 981fc748")

SCENARIOS = [
    ("aes-256-gcm", ["--data-ciphers", "AES-256-GCM"]),
    ("aes-128-gcm", ["--data-ciphers", "AES-128-GCM"]),
    ("chacha20-poly1305", ["--data-ciphers", "CHACHA20-POLY1305"]),
    ("aes-256-cbc-sha512", ["--data-ciphers", "AES-256-CBC", "--auth", "SHA512"]),
    ("aes-128-cbc-sha1", ["--data-ciphers", "AES-128-CBC", "--auth", "SHA1"]),
]

# OpenSSL test/recipes/30-test_evp_data/evpkdf_tls11_prf.txt ("from NIST test vectors")
OPENSSL_TLS11_PRF = [
    {
        "name": "openssl-evpkdf_tls11_prf-1 (master secret)",
        "secret": "bded7fa5c1699c010be23dd06ada3a48349f21e5f86263d512c0c5cc379f0e780ec55d9844b2f1db02a96453513568d0",
        "seed": (b"master secret".hex()
                 + "e5acaf549cd25c22d964c0d930fa4b5261d2507fad84c33715b7b9a864020693"
                 + "135e4d557fdf3aa6406d82975d5c606a9734c9334b42136e96990fbd5358cdb2"),
        "output": "2f6962dfbc744c4b2138bb6b3d33054c5ecc14f24851d9896395a44ab3964efc2090c5bf51a0891209f46c1e1e998f62",
    },
    {
        "name": "openssl-evpkdf_tls11_prf-2 (key expansion)",
        "secret": "2f6962dfbc744c4b2138bb6b3d33054c5ecc14f24851d9896395a44ab3964efc2090c5bf51a0891209f46c1e1e998f62",
        "seed": (b"key expansion".hex()
                 + "67267e650eb32444119d222a368c191af3082888dc35afe8368e638c828874be"
                 + "d58a7b1cd4fedaa232159df652ce188f9d997e061b9bf48e83b62990440931f6"),
        "output": ("3088825988e77fce68d19f756e18e43eb7fe672433504feaf99b3c503d9091b164f166db301d70c9"
                   "fc0870b4a94563907bee1a61fb786cb717576890bcc51cb9ead97e01d0a2fea99c953377b195205f"
                   "f07b369589178796edc963fd80fdbe518a2fc1c35c18ae8d"),
    },
]

# (secret length, output length): odd secrets (shared middle byte), outputs that
# are not a multiple of 16 or 20, and OpenVPN's own sizes.
OPENSSL_KDF_CASES = [(1, 16), (3, 37), (47, 48), (49, 100), (21, 256), (48, 256)]


def openssl_tls1_prf(secret: bytes, seed: bytes, n: int) -> bytes:
    """TLS 1.0 PRF computed by the ``openssl kdf`` command (OpenSSL's implementation)."""
    out = subprocess.run(
        ["openssl", "kdf", "-keylen", str(n), "-kdfopt", "digest:MD5-SHA1",
         "-kdfopt", "hexsecret:" + secret.hex(), "-kdfopt", "hexseed:" + seed.hex(), "TLS1-PRF"],
        check=True, capture_output=True, text=True, timeout=30).stdout
    return bytes.fromhex(out.strip().replace(":", ""))


def prf_vectors() -> list:
    vectors = [dict(v, source="OpenSSL test/recipes/30-test_evp_data/evpkdf_tls11_prf.txt")
               for v in OPENSSL_TLS11_PRF]
    for v in OPENSSL_TLS11_PRF:  # the openssl command must reproduce the published ones
        got = openssl_tls1_prf(bytes.fromhex(v["secret"]), bytes.fromhex(v["seed"]),
                               len(v["output"]) // 2)
        if got.hex() != v["output"]:
            raise SystemExit("openssl kdf does not reproduce %s" % v["name"])
    for slen, n in OPENSSL_KDF_CASES:
        secret = os.urandom(slen)
        seed = b"OpenVPN key expansion" + os.urandom(slen % 7 + 20)
        vectors.append({
            "name": "openssl-kdf secret %d bytes, %d out" % (slen, n),
            "secret": secret.hex(), "seed": seed.hex(),
            "output": openssl_tls1_prf(secret, seed, n).hex(),
            "source": "openssl kdf -kdfopt digest:MD5-SHA1 TLS1-PRF (%s)" % openssl_version(),
        })
    return vectors


def openssl_version() -> str:
    return subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _stop(proc: subprocess.Popen) -> None:
    stop_process(proc, 5)


def run_pair(workdir: str, extra: list, timeout_s: float = 30.0) -> tuple:
    """Start server and client, wait for both pings to decrypt, stop both; return the logs."""
    pki = make_pki(os.path.join(workdir, "pki"))
    port = free_udp_port()
    common = ["--dev", "null", "--ifconfig-noexec", "--route-noexec", "--proto", "udp4",
              "--ca", pki.ca, "--keepalive", "2", "10", "--verb", "9"] + extra
    server = [OPENVPN, "--local", "127.0.0.1", "--port", str(port), "--tls-server",
              "--cert", pki.server_cert, "--key", pki.server_key, "--dh", "none"] + common
    client = [OPENVPN, "--remote", "127.0.0.1", str(port), "--nobind", "--tls-client", "--pull",
              "--cert", pki.client_cert, "--key", pki.client_key] + common
    logs = (os.path.join(workdir, "server.log"), os.path.join(workdir, "client.log"))
    limit = ["timeout", "--kill-after=5", str(int(timeout_s) + 10)]
    procs = []
    try:
        with open(logs[0], "w") as slog:
            procs.append(subprocess.Popen(limit + server, stdout=slog, stderr=subprocess.STDOUT))
        time.sleep(0.5)
        with open(logs[1], "w") as clog:
            procs.append(subprocess.Popen(limit + client, stdout=clog, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            texts = [open(p).read() for p in logs]
            if all("Initialization Sequence Completed" in t and PING_DECRYPTED.search(t) for t in texts):
                break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("openvpn pair did not complete within %ss (logs in %s)" % (timeout_s, workdir))
    finally:
        for p in reversed(procs):
            _stop(p)
    return tuple(open(p).read() for p in logs)


def _hex_after(text: str, label: str) -> str:
    m = re.search(re.escape(label) + r":((?: [0-9a-f]+)*) *$", text, re.M)
    if not m:
        raise SystemExit("log line %r not found" % label)
    return m.group(1).replace(" ", "")


def _key_line(text: str, prefix: str, part: str) -> tuple:
    m = re.search(r"^.*? %s \(%s, ([^,]+), (\d+) bits\):((?: [0-9a-f]+)*) *$" % (prefix, part), text, re.M)
    if not m:
        raise SystemExit("log line %s (%s) not found" % (prefix, part))
    return m.group(1), int(m.group(2)) // 8, m.group(3).replace(" ", "")


def _sid(text: str, opcode: str) -> str:
    m = re.search(r": %s kid=0 sid=([0-9a-f]{8}) ([0-9a-f]{8})" % opcode, text)
    if not m:
        raise SystemExit("no %s packet dump" % opcode)
    return m.group(1) + m.group(2)


def _first_int(text: str, pattern: str) -> int:
    for m in re.finditer(pattern, text):
        if int(m.group(1)) > 0:
            return int(m.group(1))
    raise SystemExit("pattern %r not found" % pattern)


def _options(text: str) -> str:
    m = re.search(r"Local Options String \(VER=V4\): '([^']*)'", text)
    if not m:
        raise SystemExit("no Local Options String")
    return m.group(1)


def _peer_info(text: str) -> str:
    lines = re.findall(r"^\S+ \S+ us=\d+ peer info: (.*)$", text, re.M)
    return "".join(line + "\n" for line in lines)


def _implicit_iv(text: str, direction: str) -> object:
    m = re.search(r"%s IV: ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8})$" % direction, text, re.M)
    return (m.group(2) + m.group(3)) if m else None


def parse(name: str, server_log: str, client_log: str) -> dict:
    if "TLS_export=0" not in server_log:
        raise SystemExit("%s: the server did not use the PRF (no 'TLS_export=0')" % name)
    vec: dict = {"name": name}
    for who, log in (("server", server_log), ("client", client_log)):
        for field in ("pre_master", "random1", "random2"):
            vec.setdefault("client_" + field, _hex_after(log, "Client " + field))
            if vec["client_" + field] != _hex_after(log, "Client " + field):
                raise SystemExit("%s: the two logs disagree on client %s" % (name, field))
        for field in ("random1", "random2"):
            vec.setdefault("server_" + field, _hex_after(log, "Server " + field))
            if vec["server_" + field] != _hex_after(log, "Server " + field):
                raise SystemExit("%s: the two logs disagree on server %s" % (name, field))
    vec["client_session_id"] = _sid(server_log, "P_CONTROL_HARD_RESET_CLIENT_V2")
    vec["server_session_id"] = _sid(server_log, "P_CONTROL_HARD_RESET_SERVER_V2")
    if (_sid(client_log, "P_CONTROL_HARD_RESET_CLIENT_V2") != vec["client_session_id"]
            or _sid(client_log, "P_CONTROL_HARD_RESET_SERVER_V2") != vec["server_session_id"]):
        raise SystemExit("%s: the two logs disagree on the session ids" % name)
    cipher, klen, keys0_cipher = _key_line(server_log, "Master Encrypt", "cipher")
    auth, hlen, keys0_hmac = _key_line(server_log, "Master Encrypt", "hmac")
    _, _, keys1_cipher = _key_line(server_log, "Master Decrypt", "cipher")
    _, _, keys1_hmac = _key_line(server_log, "Master Decrypt", "hmac")
    if (_key_line(client_log, "Master Encrypt", "cipher")[2] != keys0_cipher
            or _key_line(client_log, "Master Decrypt", "hmac")[2] != keys1_hmac):
        raise SystemExit("%s: the two logs disagree on key2" % name)
    vec.update(cipher=cipher, cipher_key_len=klen, auth=auth, hmac_key_len=hlen,
               keys0_cipher=keys0_cipher, keys0_hmac=keys0_hmac,
               keys1_cipher=keys1_cipher, keys1_hmac=keys1_hmac)
    for who, log in (("server", server_log), ("client", client_log)):
        for way in ("Outgoing", "Incoming"):
            key = "%s_%s_" % (who, way.lower())
            vec[key + "cipher_key"] = _hex_after(log, "%s Data Channel: CIPHER KEY" % way)
            vec[key + "hmac_key"] = (_hex_after(log, "%s Data Channel: HMAC KEY" % way)
                                     if hlen else "")
        # AEAD: "ENCRYPT IV: <packet-id> <implicit IV 8 bytes>"
        vec[who + "_outgoing_implicit_iv"] = _implicit_iv(log, "ENCRYPT")
        vec[who + "_incoming_implicit_iv"] = _implicit_iv(log, "DECRYPT")
    vec["server_options"] = _options(server_log)
    vec["client_options"] = _options(client_log)
    vec["server_peer_info"] = _peer_info(client_log)  # each side logs what the other sent
    vec["client_peer_info"] = _peer_info(server_log)
    vec["server_km2_len"] = _first_int(server_log, r"BIO write tls_write_plaintext (\d+) bytes")
    vec["client_km2_len"] = _first_int(client_log, r"BIO write tls_write_plaintext (\d+) bytes")
    if (_first_int(client_log, r"BIO read tls_read_plaintext (\d+) bytes") != vec["server_km2_len"]
            or _first_int(server_log, r"BIO read tls_read_plaintext (\d+) bytes") != vec["client_km2_len"]):
        raise SystemExit("%s: key method 2 lengths differ between the logs" % name)
    return vec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(_ROOT, "tests", "data", "kat_openvpn.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory with the logs")
    args = ap.parse_args()
    version = subprocess.run([OPENVPN, "--version"], capture_output=True, text=True).stdout.splitlines()
    work = tempfile.mkdtemp(prefix="ovpnkx-kat-")
    vectors = []
    try:
        for name, extra in SCENARIOS:
            d = os.path.join(work, name)
            os.makedirs(d)
            server_log, client_log = run_pair(d, extra)
            vectors.append(parse(name, server_log, client_log))
            print("captured", name, file=sys.stderr)
    finally:
        if args.keep:
            print("logs kept in", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    data = {
        "about": "Known answers for ovpnkx.prf; see tests/data/KAT_NOTE.md for how they were captured.",
        "openvpn_version": version[0] if version else "",
        "openssl_version": openssl_version(),
        "tls1_prf": prf_vectors(),
        "openvpn": vectors,
    }
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print("wrote %s: %d tls1_prf, %d openvpn vectors" % (args.out, len(data["tls1_prf"]), len(vectors)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
