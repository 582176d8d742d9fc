"""What a session is told by its config file or command line, and what it announces.

``SessionConfig`` carries the settings; it also writes the two texts a peer reads
in our key method 2 message: the options string and the peer-info (IV_ lines).
"""

from . import push as pu
from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

VERSION = "ovpnkx 0.1.0"
# the compression stubs a 2.6 client announces (comp.c), all of which ``ovpnkx.compress`` frames
STUBS_PEER_INFO = "IV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\n"


class SessionConfig:
    """What a session is told by its config file or command line."""

    def __init__(self, is_server: bool = False, p2mp: bool = True, ciphers: "list | None" = None,
                 auth: str = "SHA1", tls_auth: "Any" = None, ask_ekm: bool = False,
                 proto: str = "udp", username: "str | None" = None, password: "str | None" = None,
                 hand_window_ms: int = 60000, timeout_ms: int = 2000, ping_ms: int = 0,
                 ping_restart_ms: int = 0, tls_mtu: int = 1250, platform: str = "unknown",
                 push_options: "list | None" = None, peer_id: int = 0, compression: "Any" = None,
                 release_tls: bool = False) -> None:
        """``compression``: the configured ``compress.Framing`` (a stub) or None."""
        self.is_server = is_server
        self.p2mp = p2mp
        self.ciphers = [c.upper() for c in (ciphers or ["AES-256-GCM", "AES-128-GCM"])]
        self.auth = auth.upper()
        self.tls_auth = tls_auth
        self.ask_ekm = ask_ekm
        self.proto = proto
        self.username = username
        self.password = password
        self.hand_window_ms = hand_window_ms
        self.timeout_ms = timeout_ms
        self.ping_ms = ping_ms
        self.ping_restart_ms = ping_restart_ms
        self.tls_mtu = tls_mtu
        self.platform = platform
        self.push_options = push_options or []
        self.peer_id = peer_id
        self.compression = compression
        # free each key_state's TLS engine once its exchange is over and acked (a server's
        # idle sessions); later control messages on it are acked and dropped, so a server
        # with it does not offer cc-exit (the client says EXIT on the data channel instead)
        self.release_tls = release_tls

    def iv_proto(self) -> int:
        """The IV_PROTO bits we announce (TLS_KEY_EXPORT only where we can export;
        CC_EXIT_NOTIFY as 2.6 does: an exit notification may come as an EXIT message)."""
        bits = pu.IV_PROTO_DATA_V2 | pu.IV_PROTO_CC_EXIT_NOTIFY
        bits |= pu.IV_PROTO_REQUEST_PUSH if self.p2mp else pu.IV_PROTO_NCP_P2P
        return bits | (pu.IV_PROTO_TLS_KEY_EXPORT if self.ask_ekm else 0)

    def options_string(self) -> str:
        """The options string of key method 2 (a mismatch is only a warning in 2.6)."""
        proto = "UDPv4" if self.proto == "udp" else ("TCPv4_SERVER" if self.is_server else "TCPv4_CLIENT")
        # ",comp-lzo" says a compression context is active (any framing), as 2.6 writes it;
        # the v1 framings' byte counts in link-mtu (1542), the v2 stub's does not
        comp = self.compression
        link_mtu = 1541 + (1 if comp is not None and comp.kind != "stub-v2" else 0)
        return ("V4,dev-type tun,link-mtu %d,tun-mtu 1500,proto %s,%sauth %s,keysize 128,key-method 2,%s"
                % (link_mtu, proto, "comp-lzo," if comp is not None else "", self.auth,
                   "tls-server" if self.is_server else "tls-client"))

    def peer_info(self) -> str:
        """Our peer-info (IV_ lines). A client announces the compression stubs it can
        frame (IV_LZO_STUB, IV_COMP_STUB, IV_COMP_STUBv2) as a 2.6 client does under
        its default ``allow-compression no``; never a real algorithm."""
        stubs = "" if self.is_server else STUBS_PEER_INFO
        return "IV_VER=2.6.14\nIV_PLAT=%s\nIV_PROTO=%d\nIV_CIPHERS=%s\n%sIV_GUI_VER=%s\n" % (
            self.platform, self.iv_proto(), ":".join(self.ciphers), stubs, VERSION.replace(" ", "_"))
