"""A parsed server config (``ovpnkx serve``): a client config plus what only a server reads.

Host-only (``tools/flash.py`` HOST_ONLY): a board is a client, so these defaults and the
attributes they make, and the parsing of the directives only a server config has
(``server_directive``), stay out of the config object and the code a board holds.
``options.parse(..., server=True)`` makes one.
"""

from ._compat import is_decimal
from .clientconfig import ClientConfig
from .options import _args, _number


class ServerConfig(ClientConfig):
    """``server_network`` / ``server_netmask`` / ``server_nopool``, ``topology``,
    ``max_clients``, ``duplicate_cn``, ``connect_freq_initial`` (n, s), ``push`` (its
    lines), ``dh``, ``verify_client_cert``, ``tls_crypt_v2_mode``."""

    def __init__(self, name: str) -> None:
        ClientConfig.__init__(self, name, True)
        self.push = []  # type: list
        self.dh = None  # type: str | None  # "none" or PEM
        self.tls_crypt_v2_mode = None  # type: str | None  # force-cookie / allow-noncookie
        self.verify_client_cert = "require"
        self.server_network = None  # type: str | None
        self.server_netmask = None  # type: str | None
        self.server_nopool = False  # server ... nopool: no ifconfig pool
        self.topology = "net30"
        self.max_clients = 1024
        self.duplicate_cn = False
        self.connect_freq_initial = (100, 10)

    @property
    def tls_crypt_v2_force_cookie(self) -> bool:
        """Serve tls-crypt-v2 clients only through the stateless cookie flow."""
        return self.tls_crypt_v2_mode == "force-cookie"

    def server_directive(self, words: list) -> None:
        """Parse one of a server's own directives (``options`` hands them over; ValueError
        says what is wrong), and tls-crypt-v2's force-cookie or allow-noncookie."""
        d = words[0]
        if d == "tls-crypt-v2":
            if words[2] not in ("force-cookie", "allow-noncookie"):
                raise ValueError("tls-crypt-v2 takes a key file and force-cookie or allow-noncookie")
            self.tls_crypt_v2_mode = words[2]
        elif d == "server":
            _args(words, 2, 3)
            net, mask = _ipv4(words[1], "server network"), _ipv4(words[2], "server netmask")
            if not _contiguous(mask) or net & ~mask & 0xFFFFFFFF:
                raise ValueError("server %s %s: not a network and its netmask" % (words[1], words[2]))
            if len(words) > 3 and words[3] != "nopool":
                raise ValueError("server takes NETWORK NETMASK [nopool]")
            host_bits = 32 - bin(mask).count("1")
            if not 3 <= host_bits <= 16:  # openvpn: /16 at most (IFCONFIG_POOL_MAX), /29 at least for tun
                raise ValueError("server %s %s: the pool needs a subnet between /16 and /29" % (words[1], words[2]))
            self.server_network, self.server_netmask = words[1], words[2]
            self.server_nopool = len(words) > 3
            self.p2mp = self.tls_server = True
        elif d == "push":
            if len(words) != 2:
                raise ValueError('push takes one quoted option, e.g. push "ping 10"')
            self.push.append(words[1])
        elif d == "topology":
            _args(words, 1, 1)
            if words[1] not in ("net30", "p2p", "subnet"):
                raise ValueError("topology takes net30, p2p or subnet")
            self.topology = words[1]
        elif d == "connect-freq-initial":
            _args(words, 2, 2)
            self.connect_freq_initial = (_number(words, 1, 1, 1 << 30), _number(words, 2, 1, 86400))
        elif d == "verify-client-cert":
            _args(words, 1, 1)
            if words[1] not in ("none", "optional", "require"):
                raise ValueError("verify-client-cert takes none, optional or require")
            if words[1] != "require":
                raise ValueError("verify-client-cert %s: refused: ovpnkx serve always requires a client certificate"
                                 % words[1])


def _ipv4(text: str, what: str) -> int:
    parts = text.split(".")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(0 <= v <= 255 for v in values) or not all(is_decimal(p) for p in parts):
        raise ValueError("%s %r is not an IPv4 address" % (what, text))
    return values[0] << 24 | values[1] << 16 | values[2] << 8 | values[3]


def _contiguous(mask: int) -> bool:
    inverted = ~mask & 0xFFFFFFFF
    return inverted & (inverted + 1) == 0
