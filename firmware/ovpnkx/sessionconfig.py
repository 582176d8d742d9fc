"""What a session is told by its config file or command line, and what it announces.

``SessionConfig`` carries the settings; it also writes the two texts a peer reads
in our key method 2 message: the options string and the peer-info (IV_ lines).
"""

from . import push as pu
from .errors import LocalProtocolError
from .keymethod2 import options_string, peer_info_string
from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

VERSION = "ovpnkx 0.1.0"


class SessionConfig:
    """What a session is told by its config file or command line."""

    def __init__(self, is_server: bool = False, p2mp: bool = True, ciphers: "list | None" = None,
                 auth: str = "SHA1", tls_auth: "Any" = None, ask_ekm: bool = False,
                 proto: str = "udp", username: "str | None" = None, password: "str | None" = None,
                 hand_window_ms: int = 60000, timeout_ms: int = 2000, ping_ms: int = 0,
                 ping_restart_ms: int = 0, tls_mtu: int = 1250, platform: str = "unknown",
                 push_options: "list | None" = None, peer_id: int = 0, key_fingerprint: bool = False,
                 reneg_sec: "Any" = 3600, reneg_bytes: int = 0, reneg_pkts: int = 0,
                 tran_window_ms: int = 3600000, replay_window: int = 64, replay_time_s: int = 15,
                 cipher: "str | None" = None, dev_type: str = "tun") -> None:
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
        # a 64-bit hash of key2 in the keys event: for agreement checks (make run, HIL) only,
        # since it lets anyone who reads the log test a guessed key offline
        self.key_fingerprint = key_fingerprint
        # key lifetime (ssl.c should_trigger_renegotiation): reneg-sec "max [min]" (an int is
        # max; min defaults to max on a client, 90 % of it on a server, as openvpn 2.6),
        # reneg-bytes and reneg-pkts (0: off), transition-window for the lame duck key
        if isinstance(reneg_sec, (tuple, list)):
            if len(reneg_sec) != 2:
                raise LocalProtocolError("reneg_sec takes max or (max, min)")
            hi, lo = reneg_sec[0], reneg_sec[1]
        else:
            hi = 3600 if reneg_sec is None else reneg_sec
            lo = hi * 9 // 10 if is_server else hi
        for name, value in (("reneg_sec", hi), ("reneg_sec min", lo), ("reneg_bytes", reneg_bytes),
                            ("reneg_pkts", reneg_pkts), ("tran_window_ms", tran_window_ms)):
            if not isinstance(value, int) or value < 0:
                raise LocalProtocolError("%s must be an integer >= 0, not %r" % (name, value))
        if lo > hi:
            raise LocalProtocolError("reneg_sec: min %d is above max %d" % (lo, hi))
        self.reneg_sec_max = hi
        self.reneg_sec_min = lo
        self.reneg_bytes = reneg_bytes
        self.reneg_pkts = reneg_pkts
        self.tran_window_ms = tran_window_ms
        if replay_window and not 32 <= replay_window <= 65536 or not 1 <= replay_time_s <= 600:
            raise LocalProtocolError("replay window must be 0 or 32..65536 packets, 1..600 s")
        self.replay_window = replay_window
        self.replay_time_s = replay_time_s
        self.cipher = cipher.upper() if cipher else None  # --cipher (options string only)
        self.dev_type = dev_type  # what the options string announces (a board has no tun)

    def iv_proto(self) -> int:
        """The IV_PROTO bits we announce (TLS_KEY_EXPORT only where we can export)."""
        bits = pu.IV_PROTO_DATA_V2 | (pu.IV_PROTO_REQUEST_PUSH if self.p2mp else pu.IV_PROTO_NCP_P2P)
        return bits | (pu.IV_PROTO_TLS_KEY_EXPORT if self.ask_ekm else 0)

    def options_string(self) -> str:
        """The options string of key method 2, as openvpn 2.6 writes it for this config."""
        proto = "UDPv4" if self.proto == "udp" else ("TCPv4_SERVER" if self.is_server else "TCPv4_CLIENT")
        wrap = self.tls_auth
        tls_auth = wrap is not None and wrap.__class__.__name__ == "TlsAuth"  # tls-crypt adds nothing here
        return options_string(not self.is_server, proto, self.p2mp, self.cipher, self.ciphers, self.auth,
                              getattr(wrap, "direction", None) if tls_auth else None, tls_auth, self.dev_type)

    def peer_info(self) -> str:
        """Our peer-info (IV_ lines). No IV_LZO/IV_COMP stubs: no compression framing."""
        return peer_info_string([("IV_VER", "2.6.14"), ("IV_PLAT", self.platform), ("IV_PROTO", self.iv_proto()),
                                 ("IV_CIPHERS", ":".join(self.ciphers)),
                                 ("IV_GUI_VER", VERSION.replace(" ", "_"))])


def key_lifetime_options(cfg: "Any") -> dict:
    """SessionConfig keywords from a parsed config's reneg-sec, reneg-bytes, reneg-pkts,
    tran-window and replay-window, where the config has them (absent: the defaults).

    ``cfg.reneg_sec`` is ``max`` or ``(max, min)``; ``cfg.replay_window`` is ``n`` or
    ``(n, t)``; ``cfg.tran_window`` is in seconds.
    """
    out = {}  # type: dict
    reneg = getattr(cfg, "reneg_sec", None)
    if isinstance(reneg, (tuple, list)) and len(reneg) == 2 and reneg[1] is None:
        reneg = reneg[0]
    if reneg is not None:
        out["reneg_sec"] = tuple(reneg) if isinstance(reneg, list) else reneg
    for name in ("reneg_bytes", "reneg_pkts"):
        value = getattr(cfg, name, None)
        if value is not None:
            out[name] = value
    tran = getattr(cfg, "tran_window", None)
    if tran is not None:
        out["tran_window_ms"] = tran * 1000
    replay = getattr(cfg, "replay_window", None)
    if isinstance(replay, (tuple, list)):
        out["replay_window"] = replay[0]
        if len(replay) > 1 and replay[1] is not None:
            out["replay_time_s"] = replay[1]
    elif replay is not None:
        out["replay_window"] = replay
    return out
