"""A parsed server config (``ovpnkx serve``): a client config plus what only a server reads.

Host-only (``tools/flash.py`` HOST_ONLY): a board is a client, so these defaults and the
attributes they make stay out of the config object and the code a board holds.
``options.parse(..., server=True)`` makes one.
"""

from .clientconfig import ClientConfig


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
