"""A p2mp server's side of the negotiation: NCP from the client's peer-info, and PUSH_REPLY.

Host-only (``tools/flash.py`` HOST_ONLY): a board is a client, so the server's cipher
choice (ssl_ncp.c), its answer to PUSH_REQUEST and its PUSH_REPLY writer (push.c
process_incoming_push_request, send_push_reply) stay off its heap. ``Session`` loads
this module for the server role only.

- the first of our ciphers the client offers; tls-ekm when we may and the client asks;
  P_DATA_V2 with our peer-id when the client can;
- then PUSH_REPLY: at once with IV_PROTO's REQUEST_PUSH, else on PUSH_REQUEST.
"""

from ._compat import TYPE_CHECKING
from .errors import RemoteProtocolError
from .negotiation import Negotiation

if TYPE_CHECKING:
    from typing import Any


class ServerNegotiation(Negotiation):
    """A server session's negotiation; ``peer_id`` is ours to give (None: the config's),
    ``push_hook()`` returns options to add to this client's PUSH_REPLY (its ifconfig)."""

    def __init__(self, config: "Any", peer_id: "int | None" = None, push_hook: "Any" = None) -> None:
        Negotiation.__init__(self, config)
        self.own_peer_id = config.peer_id if peer_id is None else peer_id
        self.push_hook = push_hook
        self.push_reply_text = None  # type: str | None
        self.push_sent = False

    def decide(self, channel: "Any", peer: dict, peer_proto: int, now_ms: int) -> bool:
        """Choose from the client's peer-info; True: generate keys now (PUSH_REPLY went out)."""
        from . import push as pu

        cfg = self.config
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

    def send_push_reply(self, channel: "Any", now_ms: int) -> bool:
        """Send PUSH_REPLY; True when ``channel`` has no keys yet (generate them)."""
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
        """A client's PUSH_REQUEST; True: generate keys now."""
        # once: the reply travels over the reliable TLS channel and cannot get lost
        # (a client that asked for REQUEST_PUSH may still send PUSH_REQUEST)
        if text.startswith("PUSH_REQUEST") and self.cipher is not None and not self.push_sent:
            return self.send_push_reply(channel, now_ms)
        return False
