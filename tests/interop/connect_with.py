"""Our client with config attributes set from the command line, on either runtime.

Usage: (micropython|python) connect_with.py CONFIG PINGS TIMEOUT_S [NAME=VALUE ...]

Each NAME=VALUE sets ``cfg.NAME`` on the parsed config before the client runs
(VALUE: an integer, or integers joined by ``:`` for a tuple), as a config file
with that directive would. It exists for directives the config reader may not
know yet (reneg-sec), to show that the runner passes them on. JSON lines out.
"""

import sys

from ovpnkx._compat import MICROPYTHON
from ovpnkx.config import parse_config
from ovpnkx_device.emitters import json_emitter
from ovpnkx_device.runner import run_client


def _value(text):
    parts = [int(p) for p in text.split(":")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def main(argv):
    path, pings, timeout_s = argv[0], int(argv[1]), int(argv[2])
    with open(path) as f:
        cfg = parse_config(f.read(), path)
    for item in argv[3:]:
        name, _, value = item.partition("=")
        setattr(cfg, name, _value(value))
    ca, cert, key = str(cfg.ca).encode(), str(cfg.cert).encode(), str(cfg.key).encode()
    if MICROPYTHON:
        from ovpnkx.crypto_mp import MicroPythonCrypto
        from ovpnkx.tls_mbedtls import MbedTlsEngine as Engine
        from ovpnkx_device.entropy_select import board_entropy

        crypto, entropy, ekm = MicroPythonCrypto(), board_entropy("host", None), False
    else:
        from ovpnkx.entropy import HostEntropy
        from ovpnkx_host.crypto_host import HostCrypto
        from ovpnkx_host.tls_openssl import OpenSslEngine as Engine

        crypto, entropy, ekm = HostCrypto(), HostEntropy(), True
    return run_client(cfg, entropy, crypto, lambda: Engine(False, ca, cert, key, cfg.remote_cert_tls),
                      ask_ekm=ekm, platform=sys.platform, pings=pings, timeout_s=timeout_s, emit=json_emitter)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
