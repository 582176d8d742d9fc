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
engine for each key_state. Packets that fail tls-auth, parsing or decryption are
dropped and counted (an attacker on the path cannot end a session that way);
errors of the authenticated peer (TLS, key method 2, AUTH_FAILED) and the
hand-window and ping-restart deadlines end the session with a reason.
"""

from . import datachannel as dcmod
from . import keystate as ks
from . import packet as pk
from . import push as pu
from ._compat import TYPE_CHECKING
from .control import CONTROL_HEADER_MAX, KeyStateChannel
from .digest import hash_digest
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .health import EntropyError
from .keymethod2 import KeyMethod2Message, KeySource, parse_peer_info, write_key_method2
from .prf import EKM_LABEL, KEY2_LEN, key2_split, openvpn_key_expansion
from .tlswrap import TlsPlain

if TYPE_CHECKING:
    from typing import Any

VERSION = "ovpnkx 0.1.0"
PUSH_REQUEST_INTERVAL_MS = 5000


class SessionConfig:
    """What a session is told by its config file or command line."""

    def __init__(self, is_server: bool = False, p2mp: bool = True, ciphers: "list | None" = None,
                 auth: str = "SHA1", tls_auth: "Any" = None, ask_ekm: bool = False,
                 proto: str = "udp", username: "str | None" = None, password: "str | None" = None,
                 hand_window_ms: int = 60000, timeout_ms: int = 2000, ping_ms: int = 0,
                 ping_restart_ms: int = 0, tls_mtu: int = 1250, platform: str = "unknown",
                 push_options: "list | None" = None, peer_id: int = 0) -> None:
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

    def iv_proto(self) -> int:
        """The IV_PROTO bits we announce (TLS_KEY_EXPORT only where we can export)."""
        bits = pu.IV_PROTO_DATA_V2 | (pu.IV_PROTO_REQUEST_PUSH if self.p2mp else pu.IV_PROTO_NCP_P2P)
        return bits | (pu.IV_PROTO_TLS_KEY_EXPORT if self.ask_ekm else 0)

    def options_string(self) -> str:
        """The options string of key method 2 (a mismatch is only a warning in 2.6)."""
        proto = "UDPv4" if self.proto == "udp" else ("TCPv4_SERVER" if self.is_server else "TCPv4_CLIENT")
        return ("V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto %s,auth %s,keysize 128,key-method 2,%s"
                % (proto, self.auth, "tls-server" if self.is_server else "tls-client"))

    def peer_info(self) -> str:
        """Our peer-info (IV_ lines). No IV_LZO/IV_COMP stubs: no compression framing."""
        return "IV_VER=2.6.14\nIV_PLAT=%s\nIV_PROTO=%d\nIV_CIPHERS=%s\nIV_GUI_VER=%s\n" % (
            self.platform, self.iv_proto(), ":".join(self.ciphers), VERSION.replace(" ", "_"))


class Event:
    """Something that happened in a session; ``kind`` names it, fields vary.

    kinds: state (key_id, state), keys (key_id, cipher, method, fingerprint,
    peer_id), ping, data (payload), message (text), dropped (reason),
    decrypt_error (reason), closed (reason, error).
    """

    def __init__(self, kind: str, at_ms: int, **fields: object) -> None:
        self.kind = kind
        self.at_ms = at_ms
        self.fields = fields

    def __getattr__(self, name: str) -> object:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name)

    def to_dict(self) -> dict:
        """A JSON-friendly dict (payload bytes as their length only)."""
        d = {"event": self.kind, "at_ms": self.at_ms}
        for k, v in self.fields.items():
            d[k] = len(v) if isinstance(v, (bytes, bytearray)) else v
        return d

    def __repr__(self) -> str:
        return "Event(%r)" % (self.to_dict(),)


class Session:
    """One OpenVPN peer: its key_states, data channels, negotiation and timers."""

    def __init__(self, config: SessionConfig, entropy: "Any", crypto: "Any",
                 tls_factory: "Any", now_ms: int, cookie: "tuple | None" = None) -> None:
        """``cookie`` = (our session_id, the client's session_id): a server session
        whose resets were exchanged statelessly (``ovpnkx.cookie.CookieResponder``)."""
        self.config = config
        self.entropy = entropy
        self.crypto = crypto
        self.tls_factory = tls_factory
        self.is_server = config.is_server
        self.wrap = config.tls_auth if config.tls_auth is not None else TlsPlain()
        self.session_id = cookie[0] if cookie else entropy.random_bytes(pk.SID_SIZE)
        self.remote_session_id = cookie[1] if cookie else None  # type: bytes | None
        self.channels = {}  # type: dict  # key_id -> KeyStateChannel
        self.key_sources = {}  # type: dict  # key_id -> our KeySource
        self.data = {}  # type: dict  # key_id -> DataChannel
        self.primary = None  # type: int | None
        self.latest_key_id = 0  # the newest key_state's key_id (0, then 1..7 wrapping to 1)
        self._negotiated = False  # key_state 0's cipher/derivation decided (or being pushed)
        self.peer_info = {}  # type: dict
        self.cipher = None  # type: str | None
        self.tls_ekm = False
        self.peer_id = None  # type: int | None
        self.push = pu.PushReply()
        self.push_reply_text = None  # type: str | None
        self._push_sent = False
        self.closed = False
        self.close_reason = None  # type: str | None
        self.close_error = False
        self.last_drop = None  # type: str | None
        self.stats = {"pings_received": 0, "pings_sent": 0, "decrypt_errors": 0, "dropped": 0,
                      "bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0}
        self._events = []  # type: list
        self._states = {}  # type: dict
        self._outgoing = []  # type: list
        self._last_rx_ms = now_ms
        self._next_ping_ms = None  # type: int | None
        self._next_push_request_ms = None  # type: int | None
        self._now = now_ms
        # a server session that never sees a reset (a silent TCP peer) ends by the hand-window too
        self._open_deadline_ms = now_ms + config.hand_window_ms
        if not self.is_server:
            self._new_key_state(0, pk.P_CONTROL_HARD_RESET_CLIENT_V2, now_ms)
        elif cookie:
            self._new_key_state(0, -1, now_ms)

    # -- public API --------------------------------------------------------
    def events(self) -> list:
        """Events since the last call, oldest first."""
        out, self._events = self._events, []
        return out

    @property
    def data_ready(self) -> bool:
        """True once data-channel keys exist."""
        return self.primary is not None

    def receive(self, data: bytes, now_ms: int) -> None:
        """Process one packet from the peer (a datagram, or one deframed stream packet)."""
        self._now = now_ms
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
            packet = pk.parse_control(self.wrap.unwrap(data, now_ms))
        except RemoteProtocolError as exc:
            self._drop(str(exc), now_ms)
            return
        try:
            channel = self._accept_control(packet, now_ms)
        except EntropyError as exc:  # no key source for a new key_state: nothing may be sent
            self._fail(str(exc), now_ms)
            return
        if channel is None:
            return
        self._last_rx_ms = now_ms
        try:
            channel.receive(packet, now_ms)
            self._progress(channel, now_ms)
        except ProtocolError as exc:
            self._fail(str(exc), now_ms)

    def packets_to_send(self, now_ms: int) -> list:
        """Wire packets due now (already tls-auth wrapped; not stream-framed)."""
        self._now = now_ms
        if not self.closed:
            self._check_timers(now_ms)
        out, self._outgoing = self._outgoing, []
        for channel in list(self.channels.values()):
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
        candidates = [self._next_ping_ms, self._next_push_request_ms]
        if not self.channels:
            candidates.append(self._open_deadline_ms)
        if self.primary is not None and self._ping_restart_ms():
            candidates.append(self._last_rx_ms + self._ping_restart_ms())
        for channel in self.channels.values():
            candidates.append(channel.get_timer())
        times = [t for t in candidates if t is not None]  # type: list
        return min(times) if times else None

    def send_data(self, payload: bytes) -> None:
        """Encrypt ``payload`` with the primary key for the next ``packets_to_send``."""
        if self.primary is None:
            raise LocalProtocolError("no data-channel keys yet")
        self._outgoing.append(self.data[self.primary].encrypt(payload))

    def send_ping(self) -> None:
        """Send one keepalive ping now."""
        self.send_data(dcmod.PING_STRING)
        self.stats["pings_sent"] += 1

    def renegotiate(self, now_ms: int) -> None:
        """Start a new key_state (P_CONTROL_SOFT_RESET_V1, as OpenVPN's reneg-sec does).

        A fresh TLS handshake and key method 2 exchange under the same session
        ids; the current key keeps working as lame duck until the new one is ready.
        """
        if self.closed or self.primary is None:
            raise LocalProtocolError("renegotiation needs an open session with data keys")
        if not self.channels[self.latest_key_id].keys_generated:
            raise LocalProtocolError("a renegotiation is already running")
        try:
            self._new_key_state(ks.next_key_id(self.latest_key_id), pk.P_CONTROL_SOFT_RESET_V1, now_ms)
        except EntropyError as exc:
            self._fail(str(exc), now_ms)

    def close(self, now_ms: int, reason: str = "closed by us") -> None:
        """End the session; tell the peer with OCC EXIT when data keys exist."""
        if self.closed:
            return
        if self.primary is not None:
            try:
                self.send_data(dcmod.occ_exit_message())
            except ProtocolError:
                pass
        self._close(reason, False, now_ms)

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
            if op != expected or packet.key_id != 0:
                self._drop("expected %s first, got %s" % (pk.OPCODE_NAMES[expected],
                                                         pk.OPCODE_NAMES.get(op, op)), now_ms)
                return None
            self.remote_session_id = packet.session_id
        elif packet.session_id != self.remote_session_id:
            self._drop("packet from another session", now_ms)
            return None
        channel = self.channels.get(packet.key_id)
        if channel is None:
            if self.is_server and op == pk.P_CONTROL_HARD_RESET_CLIENT_V2 and packet.key_id == 0:
                channel = self._new_key_state(0, pk.P_CONTROL_HARD_RESET_SERVER_V2, now_ms)
            elif op == pk.P_CONTROL_SOFT_RESET_V1 and self.primary is not None \
                    and packet.key_id == ks.next_key_id(self.latest_key_id):
                channel = self._new_key_state(packet.key_id, pk.P_CONTROL_SOFT_RESET_V1, now_ms)
            else:
                self._drop("packet for unknown key_id %d" % packet.key_id, now_ms)
                return None
        return channel

    def _receive_data(self, key_id: int, data: bytes, now_ms: int) -> None:
        channel = self.data.get(key_id)
        if channel is None:
            self._drop("data packet for key_id %d without keys" % key_id, now_ms)
            return
        try:
            payload = channel.decrypt(data)
        except RemoteProtocolError as exc:
            self.stats["decrypt_errors"] += 1
            self._event("decrypt_error", now_ms, reason=str(exc))
            return
        self._last_rx_ms = now_ms
        if dcmod.is_ping(payload):
            self.stats["pings_received"] += 1
            self._event("ping", now_ms, count=self.stats["pings_received"])
        elif dcmod.is_occ_exit(payload):
            self._close("peer sent OCC EXIT", False, now_ms)
        else:
            self._event("data", now_ms, payload=payload)

    # -- key_states ------------------------------------------------------------
    def _new_key_state(self, key_id: int, reset_opcode: int, now_ms: int) -> KeyStateChannel:
        cfg = self.config
        # entropy first: a failed source (EntropyError) leaves no key_state behind
        reseed = getattr(self.entropy, "reseed", None)
        if reseed is not None:
            reseed()  # fresh noise for every key_state's key source
        key_source = KeySource.generate(self.entropy, not self.is_server)
        payload_max = cfg.tls_mtu - CONTROL_HEADER_MAX - self.wrap.overhead
        channel = KeyStateChannel(key_id, self.is_server, self.tls_factory(), now_ms,
                                  cfg.hand_window_ms, cfg.timeout_ms, payload_max,
                                  1 if reset_opcode < 0 else 0)
        self.channels[key_id] = channel
        self.latest_key_id = key_id
        self.key_sources[key_id] = key_source
        self._states.pop(key_id, None)  # a key_id reused after the wrap starts a fresh history
        if reset_opcode < 0:
            channel.skip_resets()  # resets already exchanged statelessly
        else:
            channel.queue_reset(reset_opcode)
        self._note_state(channel, now_ms)
        return channel

    def _progress(self, channel: KeyStateChannel, now_ms: int) -> None:
        """Advance the key method 2 exchange and negotiation after any input."""
        if channel.handshake_done and not channel.sent_km2 and (not self.is_server or channel.peer_km2 is not None):
            channel.write_key_method2(self._our_key_method2(channel.key_id))
        self._note_state(channel, now_ms)
        if not channel.keys_generated and channel.sent_km2 and channel.peer_km2 is not None:
            self._negotiate(channel, now_ms)
        for text in channel.pop_messages():
            self._on_message(channel, text, now_ms)
        self._note_state(channel, now_ms)

    def _our_key_method2(self, key_id: int) -> bytes:
        cfg = self.config
        msg = KeyMethod2Message(self.key_sources[key_id], cfg.options_string(),
                                cfg.username, cfg.password, cfg.peer_info())
        return write_key_method2(msg, not self.is_server)

    def _negotiate(self, channel: KeyStateChannel, now_ms: int) -> None:
        """Decide cipher and key derivation once both key method 2 messages are known."""
        if channel.key_id != 0:
            # renegotiation keeps the negotiated cipher and derivation
            self._generate_keys(channel, now_ms)
            return
        if self._negotiated:
            return  # waiting for PUSH_REQUEST (server) or PUSH_REPLY (client; the timer retries)
        self._negotiated = True
        peer = parse_peer_info(channel.peer_km2.peer_info)
        self.peer_info = peer
        peer_proto = pu.iv_proto(peer)
        cfg = self.config
        if self.is_server:
            client_ciphers = pu.iv_ciphers(peer)
            self.cipher = pu.choose_cipher(cfg.ciphers, client_ciphers)
            if self.cipher is None:
                raise RemoteProtocolError("no common data cipher: client offers %s, we allow %s"
                                          % (":".join(client_ciphers) or "none", ":".join(cfg.ciphers)))
            self.tls_ekm = cfg.ask_ekm and bool(peer_proto & pu.IV_PROTO_TLS_KEY_EXPORT)
            self.peer_id = cfg.peer_id if peer_proto & pu.IV_PROTO_DATA_V2 else None
            if peer_proto & pu.IV_PROTO_REQUEST_PUSH:
                self._send_push_reply(channel, now_ms)
        elif not cfg.p2mp:
            if not peer_proto & pu.IV_PROTO_NCP_P2P:
                self.cipher = cfg.ciphers[0]
            else:
                self.cipher = pu.choose_cipher(pu.iv_ciphers(peer), cfg.ciphers)
                if self.cipher is None:
                    raise RemoteProtocolError("no common data cipher with the p2p server")
            both = cfg.iv_proto() & peer_proto
            self.tls_ekm = bool(both & pu.IV_PROTO_TLS_KEY_EXPORT)
            self.peer_id = pu.P2P_PEER_ID if both & pu.IV_PROTO_DATA_V2 else None
            self._generate_keys(channel, now_ms)
        else:
            self._send_push_request(channel, now_ms)

    def _send_push_request(self, channel: KeyStateChannel, now_ms: int) -> None:
        channel.write_message(pu.PUSH_REQUEST)
        self._next_push_request_ms = now_ms + PUSH_REQUEST_INTERVAL_MS

    def _send_push_reply(self, channel: KeyStateChannel, now_ms: int) -> None:
        if self.push_reply_text is None:
            cfg = self.config
            ping_s = max(1, cfg.ping_ms // 1000) if cfg.ping_ms else 10
            restart_s = max(1, cfg.ping_restart_ms // 1000) if cfg.ping_restart_ms else 60
            options = list(cfg.push_options) + ["ping %d" % ping_s, "ping-restart %d" % restart_s]
            if self.peer_id is not None:
                options.append("peer-id %d" % self.peer_id)
            options.append("cipher %s" % self.cipher)
            cc_exit = pu.iv_proto(self.peer_info) & pu.IV_PROTO_CC_EXIT_NOTIFY
            if cc_exit:
                options.append("protocol-flags cc-exit" + (" tls-ekm" if self.tls_ekm else ""))
            elif self.tls_ekm:
                options.append("key-derivation tls-ekm")
            self.push_reply_text = pu.build_push_reply(options)
        channel.write_message(self.push_reply_text)
        self._push_sent = True
        if not channel.keys_generated:
            self._generate_keys(channel, now_ms)

    def _on_message(self, channel: KeyStateChannel, text: str, now_ms: int) -> None:
        self._event("message", now_ms, text=text)
        if text.startswith(pu.PUSH_REPLY) and not self.is_server:
            if self.primary is not None:
                return  # a repeated reply; keys already derived
            if self.push.add(text):
                self._next_push_request_ms = None
                p = self.push
                self.cipher = p.cipher or self.config.ciphers[0]
                if self.cipher not in self.config.ciphers:
                    raise RemoteProtocolError("server pushed cipher %s, which we do not allow" % self.cipher)
                if p.tls_ekm and not self.config.ask_ekm:
                    raise RemoteProtocolError("server pushed tls-ekm, which we did not ask for")
                self.tls_ekm = p.tls_ekm
                self.peer_id = p.peer_id
                self._generate_keys(channel, now_ms)
        elif text.startswith(pu.PUSH_REQUEST) and self.is_server:
            # once: the reply travels over the reliable TLS channel and cannot get lost
            # (a client that asked for REQUEST_PUSH may still send PUSH_REQUEST)
            if self.cipher is not None and not self._push_sent:
                self._send_push_reply(channel, now_ms)
        elif text.startswith("AUTH_FAILED"):
            detail = text[len("AUTH_FAILED"):].lstrip(",")
            creds = "our username/password" if self.config.username is not None else "us (we sent no username/password)"
            self._close("auth failed: the server refused %s%s" % (creds, ": " + detail if detail else ""),
                        True, now_ms)
        elif text.startswith("RESTART") or text.startswith("HALT"):
            self._close("peer asked us to stop: " + text, True, now_ms)
        elif text.startswith("EXIT"):
            self._close("peer exited", False, now_ms)

    def _generate_keys(self, channel: KeyStateChannel, now_ms: int) -> None:
        if self.tls_ekm:
            key2 = channel.tls.export_keying_material(EKM_LABEL, KEY2_LEN)
            method = "tls-ekm"
        else:
            ours, theirs = self.key_sources[channel.key_id], channel.peer_km2.key_source
            client, server = (theirs, ours) if self.is_server else (ours, theirs)
            remote = self.remote_session_id or b""  # set by the peer's reset, before any key
            client_sid, server_sid = (remote, self.session_id) if self.is_server else (self.session_id, remote)
            key2 = openvpn_key_expansion(client.pre_master, client.random1, client.random2,
                                         server.random1, server.random2, client_sid, server_sid)
            method = "prf"
        encrypt, decrypt = key2_split(key2, self.is_server)
        cipher = self.cipher or self.config.ciphers[0]
        self.data[channel.key_id] = dcmod.DataChannel(self.crypto, cipher, self.config.auth,
                                                      encrypt, decrypt, channel.key_id, self.peer_id)
        # keep the new key and one lame duck (the previous primary), retire the rest
        for old in [k for k in self.channels if k != channel.key_id and k != self.primary]:
            del self.channels[old]
            self.data.pop(old, None)
        self.primary = channel.key_id
        channel.keys_generated = True
        channel.state.handle(ks.EV_KEYS_GENERATED)
        self._note_state(channel, now_ms)
        self._event("keys", now_ms, key_id=channel.key_id, cipher=self.cipher, method=method,
                    fingerprint=hash_digest("SHA256", b"ovpnkx key2 fingerprint" + key2)[:8].hex(),
                    peer_id=self.peer_id)
        ping = self._ping_ms()
        if ping and self._next_ping_ms is None:
            self._next_ping_ms = now_ms + ping
        self._last_rx_ms = now_ms

    # -- timers ----------------------------------------------------------------
    def _ping_ms(self) -> int:
        if self.push.ping is not None:
            return self.push.ping * 1000
        return self.config.ping_ms

    def _ping_restart_ms(self) -> int:
        if self.push.ping_restart is not None:
            return self.push.ping_restart * 1000
        return self.config.ping_restart_ms

    def _check_timers(self, now_ms: int) -> None:
        if not self.channels and now_ms >= self._open_deadline_ms:
            self._fail(self._hand_window_reason(None), now_ms)
            return
        for channel in self.channels.values():
            if not channel.keys_generated and channel.state.state != ks.S_ERROR \
                    and now_ms >= channel.hand_deadline_ms:
                self._fail(self._hand_window_reason(channel), now_ms)
                return
        restart = self._ping_restart_ms()
        if self.primary is not None and restart and now_ms - self._last_rx_ms >= restart:
            self._fail("ping-restart: nothing from the peer for %d s" % (restart // 1000), now_ms)
            return
        if self._next_push_request_ms is not None and now_ms >= self._next_push_request_ms:
            self._send_push_request(self.channels[0], now_ms)
        if self._next_ping_ms is not None and now_ms >= self._next_ping_ms and self.primary is not None:
            self.send_ping()
            self._next_ping_ms = now_ms + self._ping_ms()

    def _hand_window_reason(self, channel: "KeyStateChannel | None") -> str:
        """Why the hand-window passed, with the likely cause where the state tells it."""
        why = "TLS key negotiation failed to occur within %d seconds" % (self.config.hand_window_ms // 1000)
        if channel is None or channel.state.state <= ks.S_PRE_START:
            hints = ["no answer from the peer"]
            if self.config.tls_auth is not None and self.remote_session_id is None:
                # OpenVPN drops packets that fail tls-auth without a word
                hints.append("nothing authenticated ever arrived: check the tls-auth key and key-direction")
        elif channel.peer_km2 is None:
            # TLS started, then silence: OpenVPN ends a handshake it refuses without an alert
            hints = ["the peer went silent during the TLS handshake; it probably refused our certificate"
                     " as expired, revoked or not signed by its CA, and its log says which"]
        elif not self.is_server and self.config.p2mp:
            hints = ["no PUSH_REPLY from the server"]
        else:
            hints = []
        if self.last_drop:
            hints.append("last dropped packet: %s" % self.last_drop)
        return why + (" (%s)" % "; ".join(hints) if hints else "")

    # -- bookkeeping --------------------------------------------------------------
    def _note_state(self, channel: KeyStateChannel, now_ms: int) -> None:
        """One event per key_state transition since the last call (several may happen at once)."""
        history = channel.state.history
        seen = self._states.get(channel.key_id, 1)  # S_INITIAL is history[0]
        for state in history[seen:]:
            self._event("state", now_ms, key_id=channel.key_id, state=ks.STATE_NAMES[state])
        self._states[channel.key_id] = len(history)

    def _drop(self, reason: str, now_ms: int) -> None:
        self.stats["dropped"] += 1
        self.last_drop = reason
        self._event("dropped", now_ms, reason=reason)

    def _fail(self, reason: str, now_ms: int) -> None:
        for channel in self.channels.values():
            if channel.state.state != ks.S_ERROR:
                channel.state.handle(ks.EV_ERROR)
                self._note_state(channel, now_ms)
        self._close(reason, True, now_ms)

    def _close(self, reason: str, error: bool, now_ms: int) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.close_error = error
        self._next_ping_ms = self._next_push_request_ms = None
        self._event("closed", now_ms, reason=reason, error=error)

    def _event(self, kind: str, now_ms: int, **fields: object) -> None:
        self._events.append(Event(kind, now_ms, **fields))
