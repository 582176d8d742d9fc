"""Client and server configs: what a parsed config holds, and the entry point of the parser.

``parse_config`` reads OpenVPN config text under the directive policy
(``ovpnkx.directives``, applied by ``ovpnkx.options``, the counterpart of OpenVPN's
options.c) and, given a capability description (``ovpnkx.capability``), checks it
against what the runtime can do. On MicroPython the parser, the table and the check are
unloaded again once the config is read: a board loads code into its heap, and they are
needed once, at boot. A broken config raises ``ConfigError`` naming the file, the line
and the reason. File access is injected (``read_file(path) -> str``): the core opens
nothing.
"""

from ._compat import MICROPYTHON, TYPE_CHECKING
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Any

AUTHS = ("SHA1", "SHA256", "SHA384", "SHA512")
CIPHERS = ("AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305", "AES-256-CBC", "AES-128-CBC")
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")

class ConfigError(LocalProtocolError):
    """A config that cannot be used; the message says file, line and why."""


class ClientConfig:
    """A parsed client config: PEM texts, not paths (a server's: ``serverconfig.ServerConfig``,
    whose ``server`` is True).

    Defaults are OpenVPN 2.6's. Attributes read by other parts: ``tls_crypt`` (static
    key text), ``tls_crypt_v2`` (client key text; on a server the server key text),
    ``comp_lzo`` (None | "no"; "yes"/"adaptive" are refused), ``compress`` (None, ""
    for plain ``compress``, "stub" or "stub-v2"; real algorithms are refused),
    ``allow_compression`` ("no" | "asym" | "yes"), ``remotes`` [(host, port, proto)],
    ``remote_random``, ``connect_retry`` (first_s, max_s), ``connect_retry_max`` (0:
    unlimited), ``server_poll_timeout`` (s), ``explicit_exit_notify`` (0: off),
    ``reneg_sec`` (the max; ``reneg_sec_min`` is the min or None when not given),
    ``reneg_bytes`` / ``reneg_pkts`` (0: off), ``tran_window``, ``replay_window``
    (packets, seconds).
    """

    # a server's only (set by serverconfig.ServerConfig; declared for the type checker:
    # bare annotations make no attribute, so a client config has none of them)
    push: list
    dh: "str | None"
    tls_crypt_v2_mode: "str | None"
    verify_client_cert: str
    server_network: "str | None"
    server_netmask: "str | None"
    server_nopool: bool
    topology: str
    max_clients: int
    duplicate_cn: bool
    connect_freq_initial: tuple

    def __init__(self, name: str, server: bool = False) -> None:
        self.name = name
        self.server = server
        self.p2mp = False  # set by client/pull (server: by server/mode server)
        self.tls_client = False
        self.tls_server = False
        self.local = "127.0.0.1"
        self.remotes = []  # type: list  # (host, port, proto)
        self.port = 1194
        self.proto = "udp"
        self.ca = None  # type: str | None
        self.cert = None  # type: str | None
        self.key = None  # type: str | None
        self.extra_certs = None  # type: str | None  # appended to cert once parsed
        self.tls_auth = None  # type: str | None
        self.key_direction = None  # type: int | None
        self.tls_crypt = None  # type: str | None
        self.tls_crypt_v2 = None  # type: str | None
        self.auth = "SHA1"
        self.data_ciphers = list(CIPHERS[:3])
        self.optional_ciphers = ["CHACHA20-POLY1305"]  # openvpn 2.6's ?CHACHA20-POLY1305
        self.cipher = None  # type: str | None
        self.remote_cert_tls = None  # type: str | None
        self.remote_cert_ku = None  # type: Any  # None, certinfo.KU_REQUIRED or [int]
        self.remote_cert_eku = None  # type: str | None
        self.verify_x509_name = None  # type: tuple | None  # (name, "subject"|"name"|"name-prefix")
        self.peer_fingerprints = []  # type: list  # SHA-256 digests
        self.tls_version_min = None  # type: str | None
        self.tls_version_min_or_highest = False
        self.tls_version_max = None  # type: str | None
        self.tls_cipher = None  # type: str | None
        self.tls_ciphersuites = None  # type: str | None
        self.verb = 1
        self.hand_window = 60
        self.tls_timeout = 2
        self.ping = 0
        self.ping_restart = 0
        self.username = None  # type: str | None
        self.password = None  # type: str | None
        self.comp_lzo = None  # type: str | None
        self.compress = None  # type: str | None
        self.allow_compression = "no"  # openvpn 2.6's default: stubs only, never compress
        self.comp_noadapt = False
        self.pull_filters = []  # type: list  # (accept|ignore, text): on options ovpnkx does not apply
        self.remote_random = False
        self.connect_retry = (1, 300)
        self.connect_retry_max = 0
        self.server_poll_timeout = 120
        self.explicit_exit_notify = 0
        self.reneg_sec = 3600
        self.reneg_sec_min = None  # type: int | None
        self.reneg_bytes = 0
        self.reneg_pkts = 0
        self.tran_window = 3600
        self.replay_window = (64, 15)
        self.host_only = []  # type: list  # host-only directives met, in order
        self.warnings = []  # type: list  # "file:line: …" for softened unknown directives
        self.notes = []  # type: list  # "file:line: …" for what the runtime check adjusted
        self.lines = {}  # type: dict  # directive -> line of its last use
        self.ignore_unknown = []  # type: list
        self.forward_compatible = False

    @property
    def remote(self) -> tuple:
        """The first remote as (host, port, proto)."""
        return self.remotes[0]

    def where(self, directive: str) -> str:
        """``file:line`` of ``directive``'s last use (just the file when absent)."""
        line = self.lines.get(directive)
        return "%s:%d" % (self.name, line) if line else self.name



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

