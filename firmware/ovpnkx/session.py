"""One OpenVPN peer session, sans-IO: the layers composed.

Drive it like aioquic's QuicConnection::

    s = Session(config, entropy, crypto, tls_factory, now_ms)
    s.receive(datagram, now_ms)          # every packet from the peer
    for p in s.packets_to_send(now_ms):  # send these (frame them on a stream)
        ...
    s.get_timer()                        # call packets_to_send again by then
    for ev in s.events(): ...            # what happened (states, keys, pings, close)

``entropy`` gives every random byte (session id, key source), ``crypto`` is the
data-channel backend of this runtime and ``tls_factory()`` makes a fresh TLS
engine for each key_state. ``config.tls_auth`` is the control-packet wrapper
(tls-auth, tls-crypt or tls-crypt-v2; None: none). Packets that fail the wrapper,
parsing or decryption are dropped and counted (an attacker on the path cannot end a session that way);
errors of the authenticated peer (TLS, key method 2, AUTH_FAILED) and the
hand-window and ping-restart deadlines end the session with a reason.

The parts live in their own modules: ``multi`` (the key_states by key_id: open,
primary, lame duck, data dispatch), ``negotiation`` (push and NCP policy; a
server's in the host-only ``negotiation_server``),
``timers`` (keepalive, ping-restart, hand-window), ``events`` (what is reported,
in which words) and ``sessionconfig`` (what we announce).
"""

from . import keystate as ks
from . import packet as pk
from ._compat import TYPE_CHECKING, collect, unload
from .control import KeyStateChannel
from .digest import hash_digest
from .errors import EntropyError, LocalProtocolError, ProtocolError, RemoteProtocolError, message
from .events import Event, EventLog, auth_failed_reason, sanitize_control_message
from .multi import TlsMulti
from .sessionconfig import VERSION, SessionConfig
from .timers import Timers
from .tlswrap import TlsPlain

if TYPE_CHECKING:
    from typing import Any

    from .negotiation import Negotiation

__all__ = ("Session", "SessionConfig", "Event", "VERSION")


def _dc() -> "Any":
    """``ovpnkx.datachannel``, loaded with the first data key: on a board its code stays off
    the heap during the TLS handshake, where the peak is."""
    from . import datachannel

    return datachannel


class Session:
    """One OpenVPN peer: its key_states, data channels, negotiation and timers."""

    def __init__(self, config: SessionConfig, entropy: "Any", crypto: "Any",
                 tls_factory: "Any", now_ms: int, cookie: "tuple | None" = None,
                 wrap: "Any" = None, peer_id: "int | None" = None, push_hook: "Any" = None) -> None:
        """``cookie`` = (our session_id, the client's session_id): a server session
        whose resets were exchanged statelessly (``ovpnkx.cookie.CookieResponder``).

        A server shares one ``config`` among its sessions and gives each what is
        its own: ``wrap`` (its tls-auth state, instead of ``config.tls_auth``),
        ``peer_id`` (instead of ``config.peer_id``) and ``push_hook(session)``,
        which returns options to add to this client's PUSH_REPLY (its ifconfig)
        when the server sends it, after the client's certificate was verified.
        """
        self.config = config
        self.entropy = entropy
        self.crypto = crypto
        self.is_server = config.is_server
        if wrap is None:
            wrap = config.tls_auth if config.tls_auth is not None else TlsPlain()
        self.wrap = wrap
        self.session_id = cookie[0] if cookie else entropy.random_bytes(pk.SID_SIZE)
        self.remote_session_id = cookie[1] if cookie else None  # type: bytes | None
        self.multi = TlsMulti(self.is_server, entropy, tls_factory, config.hand_window_ms, config.timeout_ms,
                              TlsMulti.payload_limit(config.tls_mtu, self.wrap.overhead), config.tls_mtu)
        self.negotiation = None  # type: Negotiation | None
        if self.is_server:  # host-only: a board (a client) never loads the server's push code
            from .negotiation_server import ServerNegotiation

            self.negotiation = ServerNegotiation(config, peer_id, push_hook and (lambda: push_hook(self)))
        # a client's is made after its TLS handshake (``negotiated``): on a board its code is
        # off the heap until then, where the heap peaks
        self.timers = Timers(now_ms, config.hand_window_ms)
        self.log = EventLog()
        self.closed = False
        self.close_reason = None  # type: str | None
        self.close_error = False
        self.close_fatal = False  # retrying cannot help (AUTH_FAILED, HALT, entropy, a config mismatch)
        self.last_drop = None  # type: str | None
        self.wrap_failures = 0  # packets the tls-auth/tls-crypt wrapper refused
        # for failure hints, the caller's transport: its name and kind ("udp", "tcp",
        # "serial") and any of the counters bytes_in, refused, decoder.errors
        self.link = None  # type: Any
        self.link_where = ("", "")
        self._burst = False
        self._reneg_ms = -1  # this session's effective reneg-sec in ms (drawn at the first keys)
        self.stats = {"pings_received": 0, "pings_sent": 0, "decrypt_errors": 0, "dropped": 0,
                      "bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0}
        self._outgoing = []  # type: list
        if not self.is_server:
            # a tls-crypt-v2 client's reset carries its wrapped key: P_CONTROL_HARD_RESET_CLIENT_V3
            v3 = getattr(self.wrap, "wkc", None) is not None
            self._open_key_state(0, pk.P_CONTROL_HARD_RESET_CLIENT_V3 if v3 else pk.P_CONTROL_HARD_RESET_CLIENT_V2,
                                 now_ms)
        elif cookie:
            self._open_key_state(0, -1, now_ms)

    # -- what the parts know, for callers ------------------------------------
    @property
    def channels(self) -> dict:
        """key_id -> KeyStateChannel of the live key_states."""
        return self.multi.channels

    @property
    def key_sources(self) -> dict:
        """key_id -> our KeySource (secret: never print it)."""
        return self.multi.key_sources

    @property
    def primary(self) -> "int | None":
        """key_id of the key that encrypts, or None."""
        return self.multi.primary

    @property
    def cipher(self) -> "str | None":
        """The negotiated data cipher."""
        return self.negotiation.cipher if self.negotiation else None

    @property
    def tls_ekm(self) -> bool:
        """True when data keys come from the RFC 5705 exporter."""
        return bool(self.negotiation and self.negotiation.tls_ekm)

    @property
    def peer_id(self) -> "int | None":
        """Our P_DATA_V2 peer-id, or None for P_DATA_V1."""
        return self.negotiation.peer_id if self.negotiation else None

    @property
    def peer_info(self) -> dict:
        """The peer's IV_ variables (key_state 0)."""
        return self.negotiation.peer_info if self.negotiation else {}

    @property
    def push_reply_text(self) -> "str | None":
        """The PUSH_REPLY a server sent (None on a client)."""
        return getattr(self.negotiation, "push_reply_text", None)

    def negotiated(self) -> "Negotiation":
        """The session's push and NCP policy (``ovpnkx.negotiation``), a client's made when
        first needed: after its TLS handshake."""
        neg = self.negotiation
        if neg is None:
            from .negotiation import Negotiation

            neg = self.negotiation = Negotiation(self.config)
        return neg

    # -- public API --------------------------------------------------------
    def events(self) -> list:
        """Events since the last call, oldest first."""
        return self.log.drain()

    @property
    def data_ready(self) -> bool:
        """True once data-channel keys exist."""
        return self.multi.primary is not None

    def receive(self, data: bytes, now_ms: int) -> None:
        """Process one packet from the peer (a datagram, or one deframed stream packet)."""
        if self.closed:
            return
        self.stats["bytes_in"] += len(data)
        self.stats["packets_in"] += 1
        try:
            opcode, key_id = pk.opcode_key_id(data)
        except RemoteProtocolError as exc:
            self._drop(str(exc), now_ms)
            return
        if opcode in (pk.P_DATA_V1, pk.P_DATA_V2):
            self._receive_data(key_id, data, now_ms)
            return
        try:
            plain = self.wrap.unwrap(data, now_ms)
        except RemoteProtocolError as exc:
            if self.wrap.overhead:
                self.wrap_failures += 1
            self._drop(str(exc), now_ms)
            return
        try:
            packet = pk.parse_control(plain)
        except RemoteProtocolError as exc:
            self._drop(str(exc), now_ms)
            return
        # the payload is a copy: not two of each TLS record in a board's heap while TLS reads it
        del plain
        try:
            channel = self._accept_control(packet, now_ms)
        except EntropyError as exc:  # no key source for a new key_state: nothing may be sent
            self._fail(str(exc), now_ms, fatal=True)
            return
        if channel is None:
            return
        self.timers.heard(now_ms)
        try:
            if packet.message_id == 0 and pk.is_hard_reset_method2(packet.opcode) and not channel.peer_reset_seen:
                self._early_negotiation(channel, packet)
            channel.receive(packet, now_ms)
            self._progress(channel, now_ms)
        except ProtocolError as exc:
            from .hints import tls_error_reason  # loaded only when a session fails

            self._fail(tls_error_reason(str(exc)), now_ms)

    def packets_to_send(self, now_ms: int) -> list:
        """Wire packets due now (already tls-auth wrapped; not stream-framed)."""
        if not self.closed:
            self._check_timers(now_ms)
        out, self._outgoing = self._outgoing, []
        for channel in list(self.multi.channels.values()):
            if self.closed:
                break
            try:
                due = channel.packets_to_send(now_ms)
                self._progress(channel, now_ms)
            except ProtocolError as exc:
                self._fail(str(exc), now_ms)
                break
            for opcode, message_id, payload, acks in due:
                p = pk.ControlPacket(opcode, channel.key_id, self.session_id, acks,
                                     self.remote_session_id if acks else None, message_id, payload)
                out.append(self.wrap.wrap(p.to_bytes(), now_ms))
        out.extend(self._outgoing)
        self._outgoing = []
        for p in out:
            self.stats["bytes_out"] += len(p)
        self.stats["packets_out"] += len(out)
        return out

    def get_timer(self) -> "int | None":
        """The next time (ms) at which ``packets_to_send`` has work, or None."""
        if self.closed:
            return None
        t = self.timers
        candidates = [t.next_ping_ms, self.negotiation.next_push_request_ms if self.negotiation else None]
        if not self.multi.channels:
            candidates.append(t.open_deadline_ms)
        if self.multi.primary is not None:
            candidates.append(t.ping_restart_at())
            candidates.append(self._reneg_at())
        for key_id, must_die in self.multi.must_die_ms.items():
            if key_id != self.multi.primary:  # the primary outlives its window until its successor is ready
                candidates.append(must_die)
        for channel in self.multi.channels.values():
            candidates.append(channel.get_timer())
        times = [c for c in candidates if c is not None]  # type: list
        return min(times) if times else None

    def send_data(self, payload: bytes) -> None:
        """Encrypt ``payload`` with the primary key for the next ``packets_to_send``
        (framed for the negotiated compression stub, as openvpn frames every payload)."""
        framing = self.negotiated().framing
        self._outgoing.append(self.multi.encrypt(framing.compress(payload) if framing else payload))

    def send_ping(self) -> None:
        """Send one keepalive ping now."""
        self.send_data(_dc().PING_STRING)
        self.stats["pings_sent"] += 1

    def renegotiate(self, now_ms: int) -> None:
        """Start a new key_state (P_CONTROL_SOFT_RESET_V1, as OpenVPN's reneg-sec does).

        A fresh TLS handshake and key method 2 exchange under the same session
        ids; the current key keeps working as lame duck until the new one is ready.
        """
        multi = self.multi
        if self.closed or multi.primary is None:
            raise LocalProtocolError("renegotiation needs an open session with data keys")
        if not multi.channels[multi.latest_key_id].keys_generated:
            raise LocalProtocolError("a renegotiation is already running")
        try:
            self._open_key_state(ks.next_key_id(multi.latest_key_id), pk.P_CONTROL_SOFT_RESET_V1, now_ms)
        except EntropyError as exc:
            self._fail(str(exc), now_ms, fatal=True)
            return

    def close(self, now_ms: int, reason: str = "closed by us", error: bool = False, notify: bool = True) -> None:
        """End the session; with ``notify``, tell the peer with OCC EXIT when data keys exist.

        ``error`` marks the end as a failure (e.g. a server poll timeout of the caller).
        """
        if self.closed:
            return
        if notify and self.multi.primary is not None:
            try:
                self.send_data(_dc().occ_exit_message())
            except ProtocolError:
                pass
        self._close(reason, error, now_ms)

    # -- incoming ------------------------------------------------------------
    def _accept_control(self, packet: "pk.ControlPacket", now_ms: int) -> "KeyStateChannel | None":
        """Session-id and key_id checks; returns the channel or None (dropped)."""
        op = packet.opcode
        if packet.acks and packet.remote_session_id != self.session_id:
            # checked first: a dropped packet must not set remote_session_id
            self._drop("acks for a session id that is not ours", now_ms)
            return None
        if self.remote_session_id is None:
            expected = pk.P_CONTROL_HARD_RESET_CLIENT_V2 if self.is_server else pk.P_CONTROL_HARD_RESET_SERVER_V2
            if (op != expected and not (self.is_server and op == pk.P_CONTROL_HARD_RESET_CLIENT_V3)) \
                    or packet.key_id != 0:
                self._drop("expected %s first, got %s" % (pk.OPCODE_NAMES[expected],
                                                         pk.OPCODE_NAMES.get(op, op)), now_ms)
                return None
            self.remote_session_id = packet.session_id
            # ssl.c's burst, once per session: the peer is up, so resend what waits for it now
            # instead of waiting out a backoff that grew while it was away
            first = self.multi.channels.get(0)
            if first is not None and not self._burst:
                self._burst = True
                first.reliable.schedule_now(now_ms)
        elif packet.session_id != self.remote_session_id:
            self._drop("packet from another session", now_ms)
            return None
        multi = self.multi
        channel = multi.channels.get(packet.key_id)
        if channel is None:
            if self.is_server and packet.key_id == 0 and (op == pk.P_CONTROL_HARD_RESET_CLIENT_V2
                                                          or op == pk.P_CONTROL_HARD_RESET_CLIENT_V3):
                channel = self._open_key_state(0, pk.P_CONTROL_HARD_RESET_SERVER_V2, now_ms)
            elif op == pk.P_CONTROL_SOFT_RESET_V1 and multi.primary is not None \
                    and packet.key_id == ks.next_key_id(multi.latest_key_id):
                channel = self._open_key_state(packet.key_id, pk.P_CONTROL_SOFT_RESET_V1, now_ms)
            else:
                self._drop("packet for unknown key_id %d" % packet.key_id, now_ms)
                return None
        return channel

    def _early_negotiation(self, channel: KeyStateChannel, packet: "pk.ControlPacket") -> None:
        """The TLVs of the peer's hard reset (ssl.c parse_early_negotiation_tlvs).

        A 2.6 server's stateless reply to a tls-crypt-v2 client asks it to resend
        its wrapped key with its next packet (EARLY_NEG_FLAG_RESEND_WKC).
        """
        try:
            tlvs = pk.parse_tlvs(packet.payload)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError("TLS Error: Early negotiation malformed packet: %s" % exc)
        wkc = getattr(self.wrap, "wkc", None)
        for t, v in tlvs:
            if t == pk.TLV_TYPE_EARLY_NEG_FLAGS and (v[0] << 8 | v[1]) & pk.EARLY_NEG_FLAG_RESEND_WKC \
                    and wkc is not None and not self.is_server:
                channel.wkc_len = len(wkc)

    def _receive_data(self, key_id: int, data: bytes, now_ms: int) -> None:
        if key_id not in self.multi.data:
            self._drop("data packet for key_id %d without keys" % key_id, now_ms)
            return
        from .session_keyed import receive_data  # code for a session with keys: not in the handshake's heap

        receive_data(self, key_id, data, now_ms)

    # -- key_states ------------------------------------------------------------
    def _open_key_state(self, key_id: int, reset_opcode: int, now_ms: int) -> KeyStateChannel:
        multi = self.multi
        soft = reset_opcode == pk.P_CONTROL_SOFT_RESET_V1 and multi.primary is not None
        superseded = None
        if soft:
            # key_state_soft_reset: the lame duck goes before the new key_state comes (at most two)
            for old in [k for k in multi.channels if k != multi.primary]:
                multi.retire(old)
                self.log.add("retired", now_ms, key_id=old, reason="renegotiation started")
            release = self.config.release_superseded_tls
            if release == "soft_reset":  # before multi.open, whose new key_state reseeds
                self._freeing_tls_of(multi.channels[multi.primary])()
            elif release:
                superseded = multi.channels[multi.primary]
        channel = multi.open(key_id, reset_opcode, now_ms)
        if superseded is not None:
            channel.before_tls_start = self._freeing_tls_of(superseded)
        if soft:
            # the current key has transition-window left as lame duck
            multi.must_die_ms[multi.primary] = now_ms + self.config.tran_window_ms
        self.log.forget(key_id)  # a key_id reused after the wrap starts a fresh history
        self.log.note_state(channel, now_ms)
        return channel

    def _freeing_tls_of(self, current: KeyStateChannel) -> "Any":
        """What a board does when a renegotiation's handshake starts: free ``current``'s TLS
        engine and collect, so that the new session's buffers, allocated right after, take
        the freed place. mbedTLS's 16 KB input buffer needs that much heap in one piece, and
        the old session's input and output buffers (allocated together) are such a piece;
        freed earlier, at the soft reset, other allocations would take part of it first.
        From the soft reset on openvpn sends control messages on the new key_state only
        (ssl.c tls_send_payload), so the current engine is not needed after it."""
        multi = self.multi

        def free() -> None:
            multi.release_tls(current)
            collect()

        return free

    def _progress(self, channel: KeyStateChannel, now_ms: int) -> None:
        """Advance the key method 2 exchange and negotiation after any input."""
        if channel.handshake_done and not channel.sent_km2 and (not self.is_server or channel.peer_km2 is not None):
            channel.write_key_method2(self._our_key_method2(channel.key_id))
        self.log.note_state(channel, now_ms)
        if not channel.keys_generated and channel.sent_km2 and channel.peer_km2 is not None:
            if self.negotiated().both_key_method2(channel, now_ms):
                self._generate_keys(channel, now_ms)
        for text in channel.pop_messages():
            self._on_message(channel, text, now_ms)
        self.log.note_state(channel, now_ms)
        if self.config.release_tls and channel.keys_generated and channel.reliable.all_acked():
            # the exchange is over and the peer has all of it: a server with many idle sessions
            # frees the TLS engine; a late control packet on this key_state is acked and dropped
            self.multi.release_tls(channel)

    def _our_key_method2(self, key_id: int) -> bytes:
        from .keymethod2 import KeyMethod2Message, write_key_method2  # after the TLS handshake: a board's heap

        cfg = self.config
        msg = KeyMethod2Message(self.multi.key_sources[key_id], cfg.options_string(),
                                cfg.username, cfg.password, cfg.peer_info())
        return write_key_method2(msg, not self.is_server)

    def _on_message(self, channel: KeyStateChannel, text: str, now_ms: int) -> None:
        self.log.add("message", now_ms, text=sanitize_control_message(text))
        neg = self.negotiated()
        generate = neg.on_push_message(channel, text, now_ms, self.multi.primary is not None)
        for warning in neg.warnings:
            self.log.add("warning", now_ms, reason=warning)
        neg.warnings = []
        if generate:
            self._generate_keys(channel, now_ms)
        elif text.startswith("AUTH_FAILED"):
            self._close(auth_failed_reason(text, self.config.username is not None), True, now_ms, fatal=True)
        elif text.startswith("HALT"):
            self._close("peer asked us to stop: " + sanitize_control_message(text), True, now_ms, fatal=True)
        elif text.startswith("RESTART"):
            self._close("peer asked us to restart: " + sanitize_control_message(text), True, now_ms)
        elif text.startswith("EXIT"):
            self._close("peer exited", False, now_ms)

    def _generate_keys(self, channel: KeyStateChannel, now_ms: int) -> None:
        from .prf import session_key2  # loaded when keys are due, as is its derivation's code

        neg = self.negotiated()
        key2, method, encrypt, decrypt = session_key2(self, channel)
        del session_key2
        # the PRF, the key method 2 wire code and push (nothing of it is kept) leave a board's
        # heap before the data channel's code comes in; a renegotiation loads them again
        unload("prf")
        unload("keymethod2")
        unload("push")
        collect()  # their place whole again before the data channel's code and keys take theirs
        cfg = self.config
        cipher = neg.cipher or cfg.ciphers[0]
        self.multi.install(channel.key_id, _dc().DataChannel(self.crypto, cipher, cfg.auth, encrypt, decrypt,
                                                            channel.key_id, neg.peer_id, cfg.replay_window,
                                                            cfg.replay_time_s), now_ms)
        channel.keys_generated = True
        channel.state.handle(ks.EV_KEYS_GENERATED)
        self.log.note_state(channel, now_ms)
        fields = {"key_id": channel.key_id, "cipher": neg.cipher, "method": method, "peer_id": neg.peer_id}
        if self.config.key_fingerprint:
            # 64 bits of a hash of key2 are an offline check of a guessed key: only where asked for
            fields["fingerprint"] = hash_digest("SHA256", b"ovpnkx key2 fingerprint" + key2)[:8].hex()
        self.log.add("keys", now_ms, **fields)
        self.timers.keepalive(neg.ping_ms(), neg.ping_restart_ms(), now_ms)
        if self._reneg_ms < 0:
            # this session's reneg-sec: uniform in (min, max] as openvpn 2.6 draws it (0: off);
            # the entropy gives the jitter, no key material
            hi, lo = self.config.reneg_sec_max, self.config.reneg_sec_min
            jitter = int.from_bytes(self.entropy.random_bytes(4), "big") % (hi - lo) if hi > lo else 0
            self._reneg_ms = (hi - jitter) * 1000

    def _reneg_at(self) -> "int | None":
        """When the primary key reaches reneg-sec, or None (off, or a renegotiation is running)."""
        multi = self.multi
        latest = multi.latest
        if self._reneg_ms <= 0 or multi.primary is None or latest is None or not latest.keys_generated:
            return None
        return multi.established_ms[multi.primary] + self._reneg_ms

    # -- timers ----------------------------------------------------------------
    def _check_timers(self, now_ms: int) -> None:
        multi = self.multi
        if not multi.channels and now_ms >= self.timers.open_deadline_ms:
            self._fail(self._hand_window_reason(None), now_ms)
            return
        for channel in multi.channels.values():
            if not channel.keys_generated and channel.state.state != ks.S_ERROR \
                    and now_ms >= channel.hand_deadline_ms:
                self._fail(self._hand_window_reason(channel), now_ms)
                return
        restart_at = self.timers.ping_restart_at()
        if multi.primary is not None and restart_at is not None and now_ms >= restart_at:
            self._fail(message("ping-restart: nothing from the peer for %d s" % (self.timers.ping_restart_ms // 1000)),
                       now_ms)
            return
        for key_id, must_die in list(multi.must_die_ms.items()):
            if now_ms >= must_die and key_id != multi.primary:  # never without a key that encrypts
                multi.retire(key_id)
                self.log.add("retired", now_ms, key_id=key_id, reason="transition-window ended")
        why = None
        if multi.primary is not None:
            from .session_keyed import reneg_due  # code for a session with keys: not in the handshake's heap

            why = reneg_due(self, now_ms)
        if why is not None:
            self.log.add("renegotiate", now_ms, key_id=multi.primary, reason=why)
            self.renegotiate(now_ms)
            if self.closed:
                return
        neg = self.negotiation
        if neg is not None and neg.next_push_request_ms is not None and now_ms >= neg.next_push_request_ms:
            neg.send_push_request(multi.channels[0], now_ms)
        if multi.primary is not None and self.timers.ping_due(now_ms):
            self.send_ping()

    def _hand_window_reason(self, channel: "KeyStateChannel | None") -> str:
        cfg = self.config
        wrap = getattr(self.wrap, "name", None) if cfg.tls_auth is not None else None
        from .hints import hand_window_reason, link_counters  # loaded only when a session fails

        link = link_counters(self.link, self.link_where)

        return hand_window_reason(cfg.hand_window_ms, channel, self.is_server, cfg.p2mp, wrap,
                                  self.remote_session_id is not None, self.last_drop,
                                  self.stats["packets_in"], self.wrap_failures, link)

    # -- bookkeeping --------------------------------------------------------------
    def _drop(self, reason: str, now_ms: int) -> None:
        self.stats["dropped"] += 1
        self.last_drop = reason
        self.log.add("dropped", now_ms, reason=reason)

    def _fail(self, reason: str, now_ms: int, fatal: bool = False) -> None:
        for channel in self.multi.channels.values():
            if channel.state.state != ks.S_ERROR:
                channel.state.handle(ks.EV_ERROR)
                self.log.note_state(channel, now_ms)
        self._close(reason, True, now_ms, fatal)

    def _close(self, reason: str, error: bool, now_ms: int, fatal: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.close_error = error
        self.close_fatal = fatal
        self.timers.stop()
        if self.negotiation is not None:
            self.negotiation.next_push_request_ms = None
        for channel in self.multi.channels.values():  # no TLS after the end: free it now (a board's heap)
            if channel.tls_started and hasattr(channel.tls, "close"):
                channel.tls.close()
        self.log.add("closed", now_ms, reason=reason, error=error)
