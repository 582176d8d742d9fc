"""A TLS client and server engine built from config files, in one process, on either runtime.

    python|micropython tls_pair_cfg.py CLIENT_CONF SERVER_CONF

Parses both configs as the commands do (``parse_config`` under the directive policy and
this runtime's capabilities, then ``engine_args`` / ``engine_options``), builds the runtime's engine for each
(pyOpenSSL on CPython, mbedTLS on MicroPython), runs the handshake in memory and prints
one JSON object: {"complete": [client, server], "error", "client_error",
"server_error", "subjects", "cipher"}.
"""

import json
import sys

from ovpnkx.config import engine_args, engine_options, parse_config
from ovpnkx.errors import RemoteProtocolError

if sys.implementation.name == "micropython":
    from ovpnkx.capability import micropython as caps
    from ovpnkx.tls_mbedtls import MbedTlsEngine as Engine
else:
    from ovpnkx_host.capabilities import cpython as caps  # type: ignore[assignment]
    from ovpnkx_host.tls_openssl import OpenSslEngine as Engine  # type: ignore[assignment]


def load(path, server):
    base = path.rsplit("/", 1)[0]

    def read_file(name):
        with open(name if name.startswith("/") else base + "/" + name) as f:
            return f.read()

    with open(path) as f:
        cfg = parse_config(f.read(), path.rsplit("/", 1)[-1], read_file, server=server, caps=caps())
    return Engine(server, *engine_args(cfg), **engine_options(cfg))


def main():
    client, server = load(sys.argv[1], False), load(sys.argv[2], True)
    client.start()
    server.start()
    res = {}
    try:
        for _ in range(20):
            moved = False
            for src, dst in ((client, server), (server, client)):
                data = src.pending_ciphertext()
                if data:
                    dst.feed(data)
                    moved = True
            if not moved:
                break
    except RemoteProtocolError as exc:
        res["error"] = str(exc)
        # the other side reads the alert, if any
        for src, dst, key in ((client, server, "server_error"), (server, client, "client_error")):
            data = src.pending_ciphertext()
            if data:
                try:
                    dst.feed(data)
                except RemoteProtocolError as exc2:
                    res[key] = str(exc2)
    res["complete"] = [client.handshake_complete, server.handshake_complete]
    res["subjects"] = [client.peer_subject, server.peer_subject]
    res["cipher"] = client.cipher_name
    print(json.dumps(res))


main()
