"""What a parsed OpenVPN config holds (``ClientConfig``), without the parser.

A board keeps its config for the whole run (reconnects use it again) but parses it
once, at boot: the parser (``ovpnkx.config.parse_config`` and ``ovpnkx.options``)
leaves the heap after that, and this class is what stays.
"""

from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

CIPHERS = ("AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305", "AES-256-CBC", "AES-128-CBC")


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

    # every config's (set by ovpnkx.options.config_defaults, then by the directives)
    name: str
    server: bool
    p2mp: bool  # set by client/pull (server: by server/mode server)
    tls_client: bool
    tls_server: bool
    local: str
    remotes: list  # (host, port, proto)
    port: int
    proto: str
    ca: "str | None"
    cert: "str | None"
    key: "str | None"
    extra_certs: "str | None"  # appended to cert once parsed
    tls_auth: "str | None"
    key_direction: "int | None"
    tls_crypt: "str | None"
    tls_crypt_v2: "str | None"
    auth: str
    data_ciphers: list
    optional_ciphers: list  # openvpn 2.6's ?CHACHA20-POLY1305
    cipher: "str | None"
    remote_cert_tls: "str | None"
    remote_cert_ku: "Any"  # None, certinfo.KU_REQUIRED or [int]
    remote_cert_eku: "str | None"
    verify_x509_name: "tuple | None"  # (name, "subject"|"name"|"name-prefix")
    peer_fingerprints: list  # SHA-256 digests
    tls_version_min: "str | None"
    tls_version_min_or_highest: bool
    tls_version_max: "str | None"
    tls_cipher: "str | None"
    tls_ciphersuites: "str | None"
    verb: int
    hand_window: int
    tls_timeout: int
    ping: int
    ping_restart: int
    username: "str | None"
    password: "str | None"
    comp_lzo: "str | None"
    compress: "str | None"
    allow_compression: str  # openvpn 2.6's default: stubs only, never compress
    comp_noadapt: bool
    pull_filters: list  # (accept|ignore, text): on options ovpnkx does not apply
    remote_random: bool
    connect_retry: tuple
    connect_retry_max: int
    server_poll_timeout: int
    explicit_exit_notify: int
    reneg_sec: int
    reneg_sec_min: "int | None"
    reneg_bytes: int
    reneg_pkts: int
    tran_window: int
    replay_window: tuple
    host_only: list  # host-only directives met, in order
    warnings: list  # "file:line: …" for softened unknown directives
    notes: list  # "file:line: …" for what the runtime check adjusted
    lines: dict  # directive -> line of its last use
    ignore_unknown: list
    forward_compatible: bool

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
    server_directive: "Any"  # its method: the parser hands a server's own directives to it

    def __init__(self, name: str, server: bool = False) -> None:
        # the defaults are the parser's (ovpnkx.options.config_defaults), loaded with it: a
        # board keeps the parsed values, not the code that set them
        from .options import config_defaults

        config_defaults(self, name, server)

    @property
    def remote(self) -> tuple:
        """The first remote as (host, port, proto)."""
        return self.remotes[0]

    def where(self, directive: str) -> str:
        """``file:line`` of ``directive``'s last use (just the file when absent)."""
        line = self.lines.get(directive)
        return "%s:%d" % (self.name, line) if line else self.name
