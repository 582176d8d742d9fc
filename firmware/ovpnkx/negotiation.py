"""Push and NCP policy of one session: which cipher, which key derivation, which peer-id.

Decided once, for key_state 0, after both key method 2 messages are known
(renegotiations keep the result); ``push`` and the peer-info parser load only then,
which keeps them out of a board's heap during its TLS handshake:

- p2mp client: PUSH_REQUEST (retried by the session's timer) until PUSH_REPLY.
- p2p: NCP from both peer-infos (``push.choose_cipher``), no push.
- p2mp server: ``negotiation_server.ServerNegotiation`` (a host-only module: a board
  is a client and never loads the server's cipher choice and PUSH_REPLY writer).

``Negotiation`` keeps the outcome; the session asks it what to do and generates
keys when it says so.
"""

from ._compat import TYPE_CHECKING, unload
from .errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from typing import Any

PUSH_REQUEST_INTERVAL_MS = 5000


class Negotiation:
    """A client's negotiated data-channel parameters and the push exchange that sets them
    (a server's: ``negotiation_server.ServerNegotiation``)."""

    def __init__(self, config: "Any") -> None:
        if config.is_server and self.__class__ is Negotiation:
            raise LocalProtocolError("a server negotiates with negotiation_server.ServerNegotiation")
        self.config = config
        self.decided = False  # key_state 0's cipher/derivation decided (or being pushed)
        self.peer_info = {}  # type: dict
        self.cipher = None  # type: str | None
        self.tls_ekm = False
        self.peer_id = None  # type: int | None
        self.push = None  # type: Any  # push.PushReply while a PUSH_REPLY's parts come in
        self.push_options = []  # type: list  # the options of the whole PUSH_REPLY, once in
        self.pushed_ping = None  # type: int | None  # pushed ping / ping-restart (s), or None
        self.pushed_ping_restart = None  # type: int | None
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
        from .keymethod2 import iv_proto, parse_peer_info

        peer = parse_peer_info(channel.peer_km2.peer_info)
        self.peer_info = peer
        return self.decide(channel, peer, iv_proto(peer), now_ms)

    def decide(self, channel: "Any", peer: dict, peer_proto: int, now_ms: int) -> bool:
        """A client's choice from the server's peer-info ``peer``; True: generate keys now."""
        from . import push as pu

        cfg = self.config
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

    def on_push_message(self, channel: "Any", text: str, now_ms: int, have_keys: bool) -> bool:
        """A client's PUSH_REPLY; True: generate keys now."""
        if text.startswith("PUSH_REPLY"):  # push.PUSH_REPLY: push loads only for one
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
