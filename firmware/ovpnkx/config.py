"""Client and server configs: the entry point of the parser (what a parsed config holds:
``ovpnkx.clientconfig.ClientConfig``, re-exported here).

``parse_config`` reads OpenVPN config text under the directive policy
(``ovpnkx.directives``, applied by ``ovpnkx.options``, the counterpart of OpenVPN's
options.c) and, given a capability description (``ovpnkx.capability``), checks it
against what the runtime can do. On MicroPython the parser, the table and the check are
unloaded again once the config is read: a board loads code into its heap, and they are
needed once, at boot (the device app drops this module as well, and loads it again
only for ``engine_args``/``engine_options`` when a TLS session starts). A broken config
raises ``ConfigError`` naming the file, the line and the reason. File access is
injected (``read_file(path) -> str``): the core opens nothing.
"""

from ._compat import MICROPYTHON, TYPE_CHECKING
from .clientconfig import CIPHERS, ClientConfig
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Any

AUTHS = ("SHA1", "SHA256", "SHA384", "SHA512")
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")


class ConfigError(LocalProtocolError):
    """A config that cannot be used; the message says file, line and why."""


def parse_config(text: str, name: str = "<config>", read_file: "Any" = None,
                 server: bool = False, caps: "dict | None" = None) -> ClientConfig:
    """Parse config text. ``read_file(path) -> str`` loads referenced files.

    ``caps`` (``ovpnkx.capability``): also refuse what this runtime cannot do.
    """
    from . import options

    try:
        cfg = options.parse(text, name, read_file, server)
        if caps is not None:
            from .capability import check

            check(cfg, caps)
        return cfg
    finally:
        if MICROPYTHON:
            _unload(("options", "directives", "capability", "tlscrypt"))  # tlscrypt: probed by capability


def _unload(names: tuple) -> None:
    # drop modules needed once so that the GC can take their code back
    import sys

    pkg = sys.modules.get("ovpnkx")
    for n in names:
        sys.modules.pop("ovpnkx." + n, None)
        if pkg is not None and n in pkg.__dict__:
            delattr(pkg, n)


def engine_args(cfg: ClientConfig) -> tuple:
    """(ca, cert, key) as PEM bytes for a TLS engine; ca is None for a CA-less peer-fingerprint setup."""
    return (None if cfg.ca is None else cfg.ca.encode(), str(cfg.cert).encode(), str(cfg.key).encode())


def engine_options(cfg: ClientConfig) -> dict:
    """Keyword arguments of both TLS engines for this config (checks of the peer, TLS limits)."""
    from .certinfo import KU_REQUIRED, REMOTE_CERT_TLS, PeerPolicy

    why = ""
    role = cfg.remote_cert_tls
    if role and cfg.remote_cert_ku == KU_REQUIRED and cfg.remote_cert_eku == REMOTE_CERT_TLS[role]:
        why = "remote-cert-tls " + role  # not overridden by remote-cert-ku/-eku since
    where = {}
    for d in ("peer-fingerprint", "remote-cert-tls", "remote-cert-ku", "remote-cert-eku", "verify-x509-name"):
        if d in cfg.lines:
            where[d] = cfg.where(d)
    peer = PeerPolicy(cfg.peer_fingerprints, cfg.remote_cert_ku, cfg.remote_cert_eku, cfg.verify_x509_name, why,
                      where)
    return {"peer": peer, "tls_version_min": cfg.tls_version_min, "tls_version_max": cfg.tls_version_max,
            "tls_cipher": cfg.tls_cipher, "tls_ciphersuites": cfg.tls_ciphersuites}

