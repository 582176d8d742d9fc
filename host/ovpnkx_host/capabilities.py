"""Capability descriptions built on the host (see ``ovpnkx.capability`` for the shape).

``cpython()``: the host runtime (``cryptography`` + pyOpenSSL). ``board(board, firmware)``:
what a board running its stock MicroPython firmware with this firmware tree can do,
read from its ``board.json`` (``stock_firmware.modules``, or ``firmware``/``modules`` and
``hashlib`` where the board description has them; otherwise the stock firmware's facts of /work/shared/BOARDS.md:
``tls``, ``cryptolib`` and ``hashlib`` md5/sha1/sha256) — so that ``make flash``
refuses a config before anything is written to the board.
"""

import os
import re

from ovpnkx.capability import tls_crypt_support
from ovpnkx.config import AUTHS, CIPHERS

from .crypto_host import HostCrypto

# the stock firmware of the boards (BOARDS.md): what a board.json without a module list gets
STOCK_MODULES = ("tls", "cryptolib", "hashlib")
STOCK_HASHLIB = ("md5", "sha1", "sha256")


def cpython() -> dict:
    """The CPython runtime of ``ovpnkx connect --runtime cpython`` and ``ovpnkx serve``."""
    crypto = HostCrypto()
    v1, v2 = tls_crypt_support()
    return {"runtime": "cpython", "tls": True, "ciphers": [c for c in CIPHERS if crypto.supports(c)],
            "digests": list(AUTHS), "tls_versions": ["1.0", "1.1", "1.2", "1.3"], "tls_cipher_syntax": "openssl",
            "tls_ciphers": None, "tls_ekm": True, "tls_crypt": v1, "tls_crypt_v2": v2, "cert_chain": True}


def _stock_firmware_info(board: dict) -> "tuple | None":
    """(module names, hashlib algorithms) from ``stock_firmware.modules`` in board.json, or None."""
    sf = board.get("stock_firmware")
    m = sf.get("modules") if isinstance(sf, dict) else None
    if not isinstance(m, dict):
        return None

    def value(name: str) -> object:
        v = m.get(name)
        return v.get("value") if isinstance(v, dict) else v

    modules = [name for name in ("tls", "network") if value(name)]
    modules += [name for name in ("hashlib", "cryptolib") if value(name)]
    hashes = value("hashlib")
    return modules, [str(x).lower() for x in hashes] if isinstance(hashes, list) else None


def _firmware_info(board: dict) -> tuple:
    """(module names or None, hashlib algorithms or None) from a board description."""
    stock = _stock_firmware_info(board)
    if stock is not None:
        return stock
    fw = board.get("firmware")
    modules = hashes = None
    for source in (fw if isinstance(fw, dict) else {}, board):
        m = source.get("modules")
        if modules is None and isinstance(m, (list, tuple, dict)):
            modules = [str(x) for x in m]
        h = source.get("hashlib")
        if hashes is None and isinstance(h, (list, tuple)):
            hashes = [str(x).lower() for x in h]
    if isinstance(fw, (list, tuple)) and modules is None:  # "firmware": ["tls", ...]
        modules = [str(x) for x in fw]
    if modules is not None and hashes is None:  # "hashlib.sha512" style entries
        dotted = [m.split(".", 1)[1].lower() for m in modules if m.startswith("hashlib.")]
        hashes = dotted or None
    return modules, hashes


def tree_tls_crypt(firmware_dir: str) -> tuple:
    """(tls-crypt, tls-crypt-v2) of the ``ovpnkx`` package under ``firmware_dir``, read from its source."""
    v1 = v2 = False
    pkg = os.path.join(firmware_dir, "ovpnkx")
    for name in ("tlscrypt.py", "tlswrap.py"):
        try:
            with open(os.path.join(pkg, name)) as f:
                text = f.read()
        except OSError:
            continue
        v1 = v1 or re.search(r"^class TlsCrypt\b", text, re.M) is not None
        v2 = v2 or re.search(r"^def parse_v2_client_key\b", text, re.M) is not None
    return v1, v2


def board(board: dict, firmware_dir: str) -> dict:
    """A board on its stock MicroPython firmware, running the firmware tree ``firmware_dir``."""
    modules, hashes = _firmware_info(board)
    have = set(modules if modules is not None else STOCK_MODULES)
    algos = set(hashes if hashes is not None else STOCK_HASHLIB)
    v1, v2 = tree_tls_crypt(firmware_dir)
    digests = [d for d in AUTHS if d in ("SHA384", "SHA512") or d.lower() in algos]  # ovpnkx.sha512 stands in
    return {"runtime": "board %s (stock MicroPython)" % board.get("name", "?"),
            "tls": "tls" in have or "ssl" in have,
            "ciphers": [c for c in CIPHERS if c.startswith("AES-")] if "cryptolib" in have else [],
            "digests": digests, "tls_versions": ["1.2"], "tls_cipher_syntax": "mbedtls", "tls_ciphers": None,
            "tls_ekm": False, "tls_crypt": v1, "tls_crypt_v2": v2, "cert_chain": False,
            "modules_from": "board.json" if modules is not None else "the stock firmware's facts (BOARDS.md)"}
