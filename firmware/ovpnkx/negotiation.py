"""Push and NCP policy of one session: which cipher, which key derivation, which peer-id.

Decided once, for key_state 0, after both key method 2 messages are known
(renegotiations keep the result); ``push`` and the peer-info parser load only then,
which keeps them out of a board's heap during its TLS handshake:

- p2mp server: the first of our ciphers the client offers; tls-ekm when we may
  and the client asks; P_DATA_V2 with our peer-id when the client can; then
  PUSH_REPLY (at once with IV_PROTO's REQUEST_PUSH, else on PUSH_REQUEST).
- p2mp client: PUSH_REQUEST (retried by the session's timer) until PUSH_REPLY.
- p2p: NCP from both peer-infos (``push.choose_cipher``), no push.

``Negotiation`` keeps the outcome; the session asks it what to do and generates
keys when it says so.
"""

from ._compat import TYPE_CHECKING, unload
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any

PUSH_REQUEST_INTERVAL_MS = 5000


class Negotiation:
    """The negotiated data-channel parameters and the push exchange that sets them."""

    def __init__(self, config: "Any", peer_id: "int | None" = None) -> None:
        self.config = config
        self.is_server = config.is_server
        self.own_peer_id = config.peer_id if peer_id is None else peer_id  # server: ours to give
        self.push_hook = None  # type: Any  # server: () -> this client's extra push options
        self.decided = False  # key_state 0's cipher/derivation decided (or being pushed)
        self.peer_info = {}  # type: dict
        self.cipher = None  # type: str | None
        self.tls_ekm = False
        self.peer_id = None  # type: int | None
        self.push = None  # type: Any  # push.PushReply while a PUSH_REPLY's parts come in
        self.push_options = []  # type: list  # the options of the whole PUSH_REPLY, once in
        self.pushed_ping = None  # type: int | None  # pushed ping / ping-restart (s), or None
        self.pushed_ping_restart = None  # type: int | None
        self.push_reply_text = None  # type: str | None
        self.push_sent = False
        self.next_push_request_ms = None  # type: int | None
        self.framing = config.compression  # compress.Framing or None: configured, then pushed
        self.cc_exit = False  # exit notification as an EXIT control message (protocol-flags cc-exit)
        self.warnings = []  # type: list  # for the session to report

    def both_key_method2(self, channel: "Any", now_ms: int) -> bool:
        """Both key method 2 messages of ``channel`` are known; True: generate keys now."""
        if channel.key_id != 0:
            return True  # renegotiation keeps the negotiated cipher and derivation
        if self.decided:
            return False  # waiting for PUSH_REQUEST (server) or PUSH_REPLY (client; the timer retries)
        self.decided = True
        from . import push as pu
        from .keymethod2 import iv_proto, parse_peer_info

        peer = parse_peer_info(channel.peer_km2.peer_info)
        self.peer_info = peer
        peer_proto = iv_proto(peer)
        cfg = self.config
        if self.is_server:
            client_ciphers = pu.iv_ciphers(peer)
            self.cipher = pu.choose_cipher(cfg.ciphers, client_ciphers)
            if self.cipher is None:
                raise RemoteProtocolError("no common data cipher: client offers %s, we allow %s"
                                          % (":".join(client_ciphers) or "none", ":".join(cfg.ciphers)))
            self.tls_ekm = cfg.ask_ekm and bool(peer_proto & pu.IV_PROTO_TLS_KEY_EXPORT)
            self.peer_id = self.own_peer_id if peer_proto & pu.IV_PROTO_DATA_V2 else None
            if peer_proto & pu.IV_PROTO_REQUEST_PUSH:
                return self.send_push_reply(channel, now_ms)
            return False
        if not cfg.p2mp:
            if not peer_proto & pu.IV_PROTO_NCP_P2P:
                self.cipher = cfg.ciphers[0]
            else:
                self.cipher = pu.choose_cipher(pu.iv_ciphers(peer), cfg.ciphers)
                if self.cipher is None:
                    raise RemoteProtocolError("no common data cipher with the p2p server")
            both = cfg.iv_proto() & peer_proto
            self.tls_ekm = bool(both & pu.IV_PROTO_TLS_KEY_EXPORT)
            self.cc_exit = bool(both & pu.IV_PROTO_CC_EXIT_NOTIFY)
            self.peer_id = pu.P2P_PEER_ID if both & pu.IV_PROTO_DATA_V2 else None
            return True
        self.send_push_request(channel, now_ms)
        return False

    def send_push_request(self, channel: "Any", now_ms: int) -> None:
        """Client: ask for PUSH_REPLY (again at the next retry time)."""
        from .push import PUSH_REQUEST

        channel.write_message(PUSH_REQUEST)
        self.next_push_request_ms = now_ms + PUSH_REQUEST_INTERVAL_MS

    def send_push_reply(self, channel: "Any", now_ms: int) -> bool:
        """Server: send PUSH_REPLY; True when ``channel`` has no keys yet (generate them)."""
        if self.push_reply_text is None:
            from . import push as pu
            from .keymethod2 import iv_proto

            cfg = self.config
            options = list(cfg.push_options)
            # keepalive pushes its timers after the config's own push lines, as helper_keepalive
            if cfg.ping_ms:
                options.append("ping %d" % max(1, cfg.ping_ms // 1000))
            if cfg.ping_restart_ms:
                options.append("ping-restart %d" % max(1, cfg.ping_restart_ms // 1000))
            if self.push_hook is not None:
                options.extend(self.push_hook())
                self.push_hook = None  # used once (the reply is kept); the hook may refer to the session
            if self.peer_id is not None:
                options.append("peer-id %d" % self.peer_id)
            options.append("cipher %s" % self.cipher)
            # a released TLS engine could not read the client's EXIT: it says OCC EXIT instead
            cc_exit = iv_proto(self.peer_info) & pu.IV_PROTO_CC_EXIT_NOTIFY and not cfg.release_tls
            if cc_exit:
                options.append("protocol-flags cc-exit" + (" tls-ekm" if self.tls_ekm else ""))
            elif self.tls_ekm:
                options.append("key-derivation tls-ekm")
            self.push_reply_text = pu.build_push_reply(options)
        channel.write_message(self.push_reply_text)
        self.push_sent = True
        return not channel.keys_generated

    def on_push_message(self, channel: "Any", text: str, now_ms: int, have_keys: bool) -> bool:
        """PUSH_REPLY (client) or PUSH_REQUEST (server); True: generate keys now."""
        if text.startswith("PUSH_REPLY") and not self.is_server:  # push.PUSH_REPLY: push loads only for one
            if have_keys:
                return False  # a repeated reply; keys already derived
            from . import push as pu

            if self.push is None:
                self.push = pu.PushReply()
            if not self.push.add(text):
                return False  # push-continuation: more parts follow
            self.next_push_request_ms = None
            p, self.push = self.push, None  # keep what is read later, not push's code (a board's heap)
            unload("push")
            self.push_options = p.options
            self.pushed_ping, self.pushed_ping_restart = p.ping, p.ping_restart
            self.cipher = p.cipher or self.config.ciphers[0]
            if self.cipher not in self.config.ciphers:
                raise RemoteProtocolError("server pushed cipher %s, which we do not allow" % self.cipher)
            if p.tls_ekm and not self.config.ask_ekm:
                raise RemoteProtocolError("server pushed tls-ekm, which we did not ask for")
            self.tls_ekm = p.tls_ekm
            self.peer_id = p.peer_id
            self.cc_exit = p.cc_exit
            if [o for o in p.options if o.startswith("comp")]:  # comp-lzo, compress: loaded when pushed
                from .compress import from_push

                self.framing = from_push(p.options, self.framing)
            self.warnings.extend(p.warnings)
            return True
        if text.startswith("PUSH_REQUEST") and self.is_server:
            # once: the reply travels over the reliable TLS channel and cannot get lost
            # (a client that asked for REQUEST_PUSH may still send PUSH_REQUEST)
            if self.cipher is not None and not self.push_sent:
                return self.send_push_reply(channel, now_ms)
        return False

    def ping_ms(self) -> int:
        """Keepalive interval: pushed, else configured (0: none)."""
        if self.pushed_ping is not None:
            return self.pushed_ping * 1000
        return self.config.ping_ms

    def ping_restart_ms(self) -> int:
        """Ping-restart timeout: pushed, else configured (0: none)."""
        if self.pushed_ping_restart is not None:
            return self.pushed_ping_restart * 1000
        return self.config.ping_restart_ms
