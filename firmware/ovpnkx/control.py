"""The control channel of one key_state: TLS records carried over ``reliable``.

OpenVPN runs one TLS session per key_state (ssl.c ``struct key_state``). Its
ciphertext travels in P_CONTROL_V1 packets, split to fit ``tls-mtu`` (the first
one as P_CONTROL_WKC_V1 when a tls-crypt-v2 client must resend its key); the first
plaintext record each way is the key method 2 message, later records are
NUL-terminated control messages (PUSH_REQUEST, PUSH_REPLY, AUTH_FAILED, EXIT…).

``KeyStateChannel`` owns the reliable layer, the TLS engine and the key_state
machine of one key_id. The session decides *what* to say (which reset, when to
write key method 2); this module moves the bytes and keeps the states honest.
"""

from . import keystate as ks
from ._compat import TYPE_CHECKING
from . import packet as pk
from .errors import LocalProtocolError, RemoteProtocolError
from .reliable import ReliableLayer, rx_payload_max

if TYPE_CHECKING:
    from typing import Any

# Worst-case control packet header without tls-auth: op(1) sid(8) ack count(1)
# 4 piggybacked acks(16) peer sid(8) msg packet-id(4).
CONTROL_HEADER_MAX = 38
TLS_MTU = 1250  # OpenVPN's default --tls-mtu


class KeyStateChannel:
    """Reliable TLS transport and key method 2 exchange for one key_id."""

    def __init__(self, key_id: int, is_server: bool, tls: "Any", now_ms: int,
                 hand_window_ms: int = 60000, timeout_ms: int = 2000,
                 payload_max: int = TLS_MTU - CONTROL_HEADER_MAX, initial_packet_id: int = 0,
                 tls_mtu: int = TLS_MTU) -> None:
        self.key_id = key_id
        self.is_server = is_server
        self.tls = tls
        # () -> None, called when the handshake starts, before the engine does (Session: a
        # board frees the superseded key's TLS session there, for this one to take its place)
        self.before_tls_start = None  # type: Any
        self.state = ks.KeyState(key_id, is_server)
        # until data keys exist (the p2mp client waits for PUSH_REPLY after S_ACTIVE)
        self.hand_deadline_ms = now_ms + hand_window_ms
        self.reliable = ReliableLayer(timeout_ms=timeout_ms, initial_packet_id=initial_packet_id,
                                      max_payload=rx_payload_max(tls_mtu))
        self.payload_max = payload_max
        self.reset_acked = False
        self.peer_reset_seen = False
        self.handshake_done = False
        self.sent_km2 = False
        self.keys_generated = False
        self.peer_km2 = None  # type: Any
        self.messages = []  # type: list  # control messages received, in order
        self.tls_started = False
        # TLS bytes the peer sent before our engine started (a client starts it when its
        # reset is acked); OpenVPN's BIO would hold them, so we do too, in order
        self._early_tls = []  # type: list
        self._reset_id = -1
        # tls-crypt-v2 client asked to resend its wrapped key (WKc, this many bytes):
        # the first control message after the reset goes as P_CONTROL_WKC_V1, shorter by it
        self.wkc_len = 0
        self._wkc_queued = False

    # -- what the session asks for -------------------------------------
    def queue_reset(self, opcode: int) -> None:
        """Queue our (hard or soft) reset as msg packet-id 0: INITIAL -> PRE_START."""
        self._reset_id = self.reliable.send(opcode, b"")
        self.state.handle(ks.EV_RESET_QUEUED)
        if self.is_server:
            self._start_tls()  # ready for the ClientHello, which may come with the ack of our reset

    def _start_tls(self) -> None:
        hook, self.before_tls_start = self.before_tls_start, None
        if hook is not None:
            hook()
        self.tls.start()
        self.tls_started = True
        early, self._early_tls = self._early_tls, []
        for payload in early:
            self.tls.feed(payload)

    def write_key_method2(self, message: bytes) -> None:
        """Send our key method 2 message as one TLS record."""
        if self.sent_km2:
            raise LocalProtocolError("key method 2 message already sent for key_id %d" % self.key_id)
        self.tls.write(message)
        self.sent_km2 = True
        self.state.handle(ks.EV_KEY_SENT)
        self._flush_tls()

    def write_message(self, text: str) -> None:
        """Send a NUL-terminated control message (one TLS record)."""
        if not self.handshake_done:
            raise LocalProtocolError("control message before the TLS handshake completed")
        self.tls.write(text.encode() + b"\x00")
        self._flush_tls()

    # -- what the peer sent ----------------------------------------------
    def receive(self, packet: "pk.ControlPacket", now_ms: int) -> None:
        """Take one parsed control packet of this key_id from the peer.

        Raises RemoteProtocolError when the peer's TLS or key method 2 data is
        wrong; the session then ends this key_state.
        """
        if packet.acks:
            self.reliable.process_acks(packet.acks, now_ms)
        if packet.opcode != pk.P_ACK_V1 and packet.message_id is not None:
            self.reliable.receive(packet.message_id, packet.opcode, packet.payload)
        for opcode, payload in self.reliable.deliver():
            if opcode == pk.P_CONTROL_V1 or opcode == pk.P_CONTROL_WKC_V1:  # the wrapper cut WKc off
                if not self.peer_reset_seen:
                    raise RemoteProtocolError("%s before the peer's reset" % pk.OPCODE_NAMES[opcode])
                if self.tls is None:
                    continue  # released (Session, release_tls): acked by the reliable layer, dropped
                if self.tls_started:
                    self.tls.feed(payload)
                else:
                    self._early_tls.append(payload)  # bounded by the receive window
            elif opcode in (pk.P_CONTROL_HARD_RESET_CLIENT_V2, pk.P_CONTROL_HARD_RESET_SERVER_V2,
                            pk.P_CONTROL_HARD_RESET_CLIENT_V3, pk.P_CONTROL_SOFT_RESET_V1):
                self.peer_reset_seen = True
            else:
                raise RemoteProtocolError("unexpected reliable opcode %d" % opcode)
        self._advance(now_ms)

    def _advance(self, now_ms: int) -> None:
        if self.tls is None:
            return  # released: the exchange is over
        if not self.reset_acked and self._reset_id >= 0 and self.reliable.is_acked(self._reset_id):
            self.reset_acked = True
            self.state.handle(ks.EV_RESET_ACKED)
            if not self.is_server:
                self._start_tls()
        if self.reset_acked and not self.handshake_done and self.tls.handshake_complete:
            self.handshake_done = True
        self._read_records()
        self._flush_tls()
        if (self.sent_km2 and self.peer_km2 is not None and self.state.state in (ks.S_SENT_KEY, ks.S_GOT_KEY)
                and self.reliable.all_acked()):
            self.state.handle(ks.EV_SEND_ACKED)

    def _read_records(self) -> None:
        while self.handshake_done:
            record = self.tls.read()
            if not record:
                return
            if self.peer_km2 is None:
                from .keymethod2 import read_key_method2  # loaded after the TLS handshake (a board's heap)

                self.peer_km2 = read_key_method2(record, self.is_server)  # the peer sent it
                self.state.handle(ks.EV_KEY_RECEIVED)
                continue
            end = record.find(b"\x00")
            text = record if end < 0 else record[:end]
            try:
                self.messages.append(text.decode())
            except UnicodeError:
                raise RemoteProtocolError("control message is not valid text")

    def _flush_tls(self) -> None:
        data = self.tls.pending_ciphertext()
        i = 0
        while i < len(data):
            opcode, step = pk.P_CONTROL_V1, self.payload_max
            if self.wkc_len and not self._wkc_queued:
                # as ssl.c write_outgoing_tls_ciphertext: room for WKc, but never less than 16 bytes
                opcode, step, self._wkc_queued = pk.P_CONTROL_WKC_V1, max(16, step - self.wkc_len), True
            self.reliable.send(opcode, data[i:i + step])
            i += step

    # -- what goes out ----------------------------------------------------
    def pop_messages(self) -> list:
        """Control messages received since the last call."""
        out, self.messages = self.messages, []
        return out

    def packets_to_send(self, now_ms: int) -> list:
        """(opcode, message_id, payload, acks) tuples due now."""
        self._advance(now_ms)
        return self.reliable.packets_to_send(now_ms)

    def get_timer(self) -> "int | None":
        """Earliest time (ms) this key_state needs ``packets_to_send`` or a deadline check."""
        t = self.reliable.get_timer()
        if self.state.state not in (ks.S_GENERATED_KEYS, ks.S_ERROR):
            d = self.hand_deadline_ms
            t = d if t is None or d < t else t
        return t
