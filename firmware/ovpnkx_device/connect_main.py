"""`ovpnkx connect --runtime micropython`: the client on the MicroPython unix port.

Usage: micropython -m ovpnkx_device.connect_main CONFIG [PINGS] [TIMEOUT_S] [json] [ENTROPY] [fingerprint]

The config is read and parsed here, on the device side, as a board would; the
unix port's network stands in for Wi-Fi. ENTROPY is ``host`` (os.urandom) or
``sim`` / ``sim:FAULT``: the sim board's modelled TRNG through the full chain
(``boards/sim`` must be on MICROPYPATH), optionally with a ``SimTrng`` fault.
``fingerprint`` adds a fingerprint of key2 to the keys event (for agreement checks).

MicroPython has no ``signal`` module: SIGINT (Ctrl-C) arrives as KeyboardInterrupt,
and SIGTERM would kill the process at once. So ``ovpnkx connect`` turns either
into SIGINT for this process, after writing the signal's name as a line on its
stdin; the client then tells the server it leaves and exits 0.
"""

import sys

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.capability import micropython as runtime_caps
from ovpnkx.config import ConfigError, engine_args, engine_options, parse_config
from ovpnkx.crypto_mp import MicroPythonCrypto
from ovpnkx.errors import LocalProtocolError
from ovpnkx.tls_mbedtls import MbedTlsEngine

from .entropy_select import board_entropy, describe
from .emitters import json_emitter, text_emitter
from .runner import Stop, run_client

if TYPE_CHECKING:
    from typing import Any


def _reader(base: str) -> "Any":
    def read_file(path: str) -> str:
        if not path.startswith("/"):
            path = base + "/" + path
        with open(path) as f:
            return f.read()
    return read_file


def _signal_name() -> "str | None":
    """The signal's name that ``ovpnkx connect`` wrote on our stdin, if any."""
    import select

    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    if not poller.poll(0):
        return None
    line = sys.stdin.readline().strip()
    return line if line in ("SIGINT", "SIGTERM") else None


def main(argv: list) -> int:
    """Entry point; returns the exit status."""
    path = argv[0]
    pings = int(argv[1]) if len(argv) > 1 else 0
    timeout_s = int(argv[2]) if len(argv) > 2 else 0
    emit = json_emitter if len(argv) > 3 and argv[3] == "json" else text_emitter
    base = path.rsplit("/", 1)[0] if "/" in path else "."
    try:
        with open(path) as f:
            cfg = parse_config(f.read(), path, _reader(base), caps=runtime_caps())
    except (ConfigError, OSError) as exc:
        emit({"event": "result", "at_ms": 0, "ok": False, "reason": str(exc)})
        return 2

    context = []  # type: list  # one mbedTLS context for all key_states, as openvpn's SSL_CTX

    def tls_factory() -> object:
        options = engine_options(cfg)
        options["context"] = context
        return MbedTlsEngine(False, *engine_args(cfg), **options)

    source, _, fault = (argv[4] if len(argv) > 4 else "host").partition(":")
    try:
        entropy = board_entropy(source, fault or None)
    except LocalProtocolError as exc:  # a fault the model does not know
        emit({"event": "result", "at_ms": 0, "ok": False, "reason": str(exc)})
        return 2
    emit({"event": "entropy", "at_ms": 0, "source": source, "fault": fault or None,
          "state": entropy.state, "detail": describe(entropy)})
    return run_client(cfg, entropy, MicroPythonCrypto(), tls_factory, ask_ekm=False,
                      platform="micropython-unix", pings=pings, timeout_s=timeout_s, emit=emit,
                      stop=Stop(_signal_name), key_fingerprint=len(argv) > 5 and argv[5] == "fingerprint")


if __name__ == "__main__":
    try:
        status = main(sys.argv[1:])
    except KeyboardInterrupt:  # stopped before the client ran: nothing to tell anyone
        status = 0
    sys.exit(status)
