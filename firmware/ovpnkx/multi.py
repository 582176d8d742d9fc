"""The key_states of one session, by key_id (OpenVPN's ``tls_multi``).

A session holds at most two key_states, as OpenVPN's ``tls_session`` does: the
primary (whose keys encrypt) and the lame duck (the previous key, which still
decrypts) or, during a renegotiation, the one being negotiated (the session retires
the lame duck when a renegotiation starts: ssl.c's ``key_state_soft_reset``). This
module owns their lifecycle: opening a key_state (fresh key source, fresh TLS
engine), installing its data channel, retiring the rest, and choosing the data
channel for each incoming data packet.
"""

from ._compat import TYPE_CHECKING
from .control import CONTROL_HEADER_MAX, KeyStateChannel
from .errors import LocalProtocolError, RemoteProtocolError
from .keysource import KeySource

if TYPE_CHECKING:
    from typing import Any


class TlsMulti:
    """Key_states by key_id: channels, our key sources, data channels, primary."""

    def __init__(self, is_server: bool, entropy: "Any", tls_factory: "Any", hand_window_ms: int,
                 timeout_ms: int, payload_max: int, tls_mtu: int = 1250) -> None:
        self.is_server = is_server
        self.entropy = entropy
        self.tls_factory = tls_factory
        self.hand_window_ms = hand_window_ms
        self.timeout_ms = timeout_ms
        self.payload_max = payload_max
        self.tls_mtu = tls_mtu
        self.channels = {}  # type: dict  # key_id -> KeyStateChannel
        self.key_sources = {}  # type: dict  # key_id -> our KeySource
        self.data = {}  # type: dict  # key_id -> DataChannel
        self.primary = None  # type: int | None
        self.latest_key_id = 0  # the newest key_state's key_id (0, then 1..7 wrapping to 1)
        self.established_ms = {}  # type: dict  # key_id -> when its data keys were installed
        self.must_die_ms = {}  # type: dict  # key_id -> end of its transition window (lame duck)

    def open(self, key_id: int, reset_opcode: int, now_ms: int) -> KeyStateChannel:
        """A new key_state: queue ``reset_opcode`` (-1: resets already exchanged statelessly).

        Raises EntropyError before anything exists when the source has failed.
        """
        # entropy first: a failed source (EntropyError) leaves no key_state behind
        reseed = getattr(self.entropy, "reseed", None)
        if reseed is not None:
            reseed()  # fresh noise for every key_state's key source
        key_source = KeySource.generate(self.entropy, not self.is_server)
        channel = KeyStateChannel(key_id, self.is_server, self.tls_factory(), now_ms,
                                  self.hand_window_ms, self.timeout_ms, self.payload_max,
                                  1 if reset_opcode < 0 else 0, self.tls_mtu)
        self.channels[key_id] = channel
        self.latest_key_id = key_id
        self.key_sources[key_id] = key_source
        if reset_opcode < 0:  # resets already exchanged statelessly: a server's, host-only code
            from .cookie import session_skip_to_pre_start

            session_skip_to_pre_start(channel)
        else:
            channel.queue_reset(reset_opcode)
        return channel

    @property
    def latest(self) -> "KeyStateChannel | None":
        """The newest key_state (the one a renegotiation would follow)."""
        return self.channels.get(self.latest_key_id)

    def install(self, key_id: int, data_channel: "Any", now_ms: int) -> None:
        """Make ``key_id``'s data channel primary; keep the old primary as lame duck, retire the rest."""
        self.data[key_id] = data_channel
        self.established_ms[key_id] = now_ms
        for old in [k for k in self.channels if k != key_id and k != self.primary]:
            self.retire(old)
        self.primary = key_id

    def retire(self, key_id: int) -> None:
        """Forget ``key_id``'s key_state and data keys (its TLS engine is freed now)."""
        channel = self.channels.pop(key_id, None)
        if channel is not None:
            self.release_tls(channel)
        self.data.pop(key_id, None)
        self.key_sources.pop(key_id, None)
        self.established_ms.pop(key_id, None)
        self.must_die_ms.pop(key_id, None)

    @staticmethod
    def release_tls(channel: KeyStateChannel) -> None:
        """Free ``channel``'s TLS engine now, not when the GC finalises it (on rp2 mbedTLS's
        session sits in the GC heap); a control packet that still comes on it is acked and
        dropped (``KeyStateChannel.receive``)."""
        tls, channel.tls = channel.tls, None
        if tls is not None and channel.tls_started and hasattr(tls, "close"):
            tls.close()

    def lame_duck(self) -> "int | None":
        """key_id of the previous key that still decrypts, or None."""
        for k in self.data:
            if k != self.primary:
                return k
        return None

    def encrypt(self, payload: bytes) -> bytes:
        """One data packet with the primary key."""
        if self.primary is None:
            raise LocalProtocolError("no data-channel keys yet")
        return self.data[self.primary].encrypt(payload)

    def decrypt(self, key_id: int, packet: bytes, now_ms: int) -> bytes:
        """The plaintext of a data packet; RemoteProtocolError names why not."""
        channel = self.data.get(key_id)
        if channel is None:
            raise RemoteProtocolError("data packet for key_id %d without keys" % key_id)
        return channel.decrypt(packet, now_ms)

    @staticmethod
    def payload_limit(tls_mtu: int, wrap_overhead: int) -> int:
        """TLS bytes that fit one control packet of ``tls_mtu`` bytes."""
        return tls_mtu - CONTROL_HEADER_MAX - wrap_overhead
