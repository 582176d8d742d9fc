"""What a session is told by its config file or command line, and what it announces.

``SessionConfig`` carries the settings; it also gives the two texts a peer reads in
our key method 2 message, the options string and the peer-info (IV_ lines), which
``keymethod2`` writes.
"""

from .errors import LocalProtocolError
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
                 cipher: "str | None" = None, dev_type: str = "tun", compression: "Any" = None,
                 release_tls: bool = False, release_superseded_tls: str = "") -> None:
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
        # a 64-bit hash of key2 in the keys event: for agreement checks (make run, HIL) only,
        # since it lets anyone who reads the log test a guessed key offline
        self.key_fingerprint = key_fingerprint
        # key lifetime (ssl.c should_trigger_renegotiation): reneg-sec "max [min]" (an int is
        # max; min defaults to max on a client, 90 % of it on a server, as openvpn 2.6),
        # reneg-bytes and reneg-pkts (0: off), transition-window for the lame duck key
        pair = isinstance(reneg_sec, (tuple, list))
        hi = reneg_sec[0] if pair else reneg_sec
        lo = reneg_sec[-1] if pair else (hi * 9 // 10 if is_server else hi)
        if pair and len(reneg_sec) != 2 or min(hi, lo, reneg_bytes, reneg_pkts, tran_window_ms) < 0 or lo > hi or \
                replay_window and not 32 <= replay_window <= 65536 or not 1 <= replay_time_s <= 600:
            raise LocalProtocolError("key lifetime: reneg_sec (max, min <= max), reneg_bytes, reneg_pkts and"
                                     " tran_window_ms >= 0; replay window 0 or 32..65536 packets, 1..600 s")
        self.reneg_sec_max = hi
        self.reneg_sec_min = lo
        self.reneg_bytes = reneg_bytes
        self.reneg_pkts = reneg_pkts
        self.tran_window_ms = tran_window_ms
        self.replay_window = replay_window
        self.replay_time_s = replay_time_s
        self.cipher = cipher.upper() if cipher else None  # --cipher (options string only)
        self.dev_type = dev_type  # what the options string announces (a board has no tun)
        self.compression = compression
        # free each key_state's TLS engine once its exchange is over and acked (a server's
        # idle sessions); later control messages on it are acked and dropped, so a server
        # with it does not offer cc-exit (the client says EXIT on the data channel instead)
        self.release_tls = release_tls
        # free the current key's TLS engine in a renegotiation (a board: two TLS sessions do
        # not fit its heap): "tls_start" when the new handshake starts, right before the new
        # engine (where mbedTLS is in the GC heap, rp2: the new one takes the freed place;
        # Session._freeing_tls_of), "soft_reset" at once, before the new key_state's reseed
        # (where mbedTLS is not, the ESP32: the reseed's noise side has the room then), ""
        # never. Nothing is lost with an OpenVPN peer: from its soft reset on, it sends control
        # messages on the new key_state only (ssl.c tls_send_payload: the primary, queued until
        # it is active); the old key's data channel works on.
        if release_superseded_tls not in ("", "tls_start", "soft_reset"):
            raise LocalProtocolError("release_superseded_tls must be '', 'tls_start' or 'soft_reset', not %r"
                                     % (release_superseded_tls,))
        self.release_superseded_tls = release_superseded_tls
        self._options = None  # type: str | None

    # what our key method 2 message announces: written by ``keymethod2``'s code, which a board
    # loads after the TLS handshake (its heap peaks during it)
    def iv_proto(self) -> int:
        """The IV_PROTO bits we announce (``keymethod2.announced_iv_proto``)."""
        from .keymethod2 import announced_iv_proto

        return announced_iv_proto(self)

    def options_string(self) -> str:
        """The options string of key method 2, as openvpn 2.6 writes it for this config."""
        if self._options is None:
            from .keymethod2 import announced_options

            self._options = announced_options(self)  # kept: a renegotiation sends it again
        return self._options

    def peer_info(self) -> str:
        """Our peer-info (IV_ lines, ``keymethod2.announced_peer_info``)."""
        from .keymethod2 import announced_peer_info

        return announced_peer_info(self)
