"""The OpenVPN data channel: P_DATA_V1/V2 packets, keepalive ping and OCC exit.

Layouts (OpenVPN 2.6 crypto.c, ssl.c; all integers big-endian):

- header: P_DATA_V1 = one byte ``0x30 | key_id``; P_DATA_V2 = four bytes
  ``(0x48 | key_id) << 24 | peer_id``.
- AEAD (AES-GCM, ChaCha20-Poly1305): ``hdr | packet-id(4) | tag(16) | ciphertext``;
  nonce = packet-id || implicit IV (the first 8 bytes of the direction's ``.hmac``);
  AAD = hdr || packet-id for V2, packet-id alone for V1.
- CBC + HMAC: ``hdr | HMAC | IV(16) | CBC(PKCS#7(packet-id(4) || payload))``; the
  HMAC covers IV || ciphertext, not the header (openvpn_encrypt_v1 starts the HMAC
  right after its own slot).

Replay protection is packet_id.c's (``ovpnkx.tlswrap.PacketIdRec``) with ``--replay-window
64 15``: packet-id 0 is never valid, a new highest id is accepted, an older one
only if it is less than 64 behind the highest, not seen before, and no newer id
arrived more than 15 s ago (the time backtrack; ``decrypt`` takes the time). The
window changes only after a packet has been authenticated.

CBC + HMAC is in ``ovpnkx.datacbc``, loaded for a CBC cipher only (its IVs: see there).
"""

from ._compat import TYPE_CHECKING, const
from .errors import LocalProtocolError, RemoteProtocolError
from .tlswrap import DEFAULT_SEQ_BACKTRACK, DEFAULT_TIME_BACKTRACK, PacketIdRec

if TYPE_CHECKING:
    from typing import Any, Optional

P_DATA_V1 = const(6)
P_DATA_V2 = const(9)

# OpenVPN cipher name -> (key length, kind)
CIPHERS = {
    "AES-128-GCM": (16, "aead"),
    "AES-256-GCM": (32, "aead"),
    "CHACHA20-POLY1305": (32, "aead"),
    "AES-128-CBC": (16, "cbc"),
    "AES-256-CBC": (32, "cbc"),
}

PING_STRING = b"\x2a\x18\x7b\xf3\x64\x1e\xb4\xcb\x07\xed\x2d\x0a\x98\x1f\xc7\x48"
OCC_STRING = b"\x28\x7f\x34\x6b\xd4\xef\x7a\x81\x2d\x56\xb8\xd3\xaf\xc5\x45\x9c"
OCC_EXIT = 6

REPLAY_WINDOW = DEFAULT_SEQ_BACKTRACK  # --replay-window default
PACKET_ID_MAX = 0xFFFFFFFF
PACKET_ID_WRAP_TRIGGER = 0xFF000000  # OpenVPN renegotiates from here on

_TAG = const(16)
_IMPLICIT_IV = const(8)

_AEAD_ERR = "AEAD Decrypt error: "


def is_ping(payload: bytes) -> bool:
    """True when a decrypted payload is OpenVPN's keepalive ping."""
    return bytes(payload) == PING_STRING


def occ_exit_message() -> bytes:
    """The OCC EXIT payload (magic + opcode 6) that tells the peer we leave."""
    return OCC_STRING + bytes((OCC_EXIT,))


def is_occ_exit(payload: bytes) -> bool:
    """True when a decrypted payload is an OCC EXIT message."""
    return len(payload) > 16 and bytes(payload[:16]) == OCC_STRING and payload[16] == OCC_EXIT


def _key_bytes(key: "Any", attr: str, n: int) -> bytes:
    value = getattr(key, attr, None)
    if value is None or len(value) < n:
        raise LocalProtocolError("data channel key needs %d bytes of .%s" % (n, attr))
    return bytes(value[:n])


class DataChannel:
    """Encrypts and decrypts data-channel packets of one key_state (one key_id).

    ``crypto`` is a backend (``MicroPythonCrypto`` or ``HostCrypto``);
    ``encrypt_key``/``decrypt_key`` are objects with ``.cipher`` and ``.hmac``
    (64 bytes each, one direction of key2). With ``peer_id`` we send P_DATA_V2,
    else P_DATA_V1; both are accepted on receive. ``auth`` is used for CBC only.

    Counters: ``packets_out``, ``bytes_out``, ``packets_in``, ``bytes_in``
    (payload bytes), and ``n_packets``, ``n_bytes``: packets and their bytes
    both ways, as OpenVPN's key_state counts them for --reneg-pkts and
    --reneg-bytes (sent: the whole packet; received: after the opcode/peer-id
    header; here only authenticated ones, so that forged packets cannot force
    a renegotiation). ``replay_window``/``replay_time`` are --replay-window's.
    """

    def __init__(self, crypto: "Any", cipher: str, auth: str, encrypt_key: "Any",
                 decrypt_key: "Any", key_id: int, peer_id: "Optional[int]" = None,
                 replay_window: int = DEFAULT_SEQ_BACKTRACK, replay_time: int = DEFAULT_TIME_BACKTRACK) -> None:
        if cipher not in CIPHERS:
            raise LocalProtocolError("unknown data channel cipher %s" % cipher)
        if not crypto.supports(cipher):
            raise LocalProtocolError("cipher %s is not available in backend %s" % (cipher, crypto.name))
        if not 0 <= key_id <= 7:
            raise LocalProtocolError("key_id must be 0..7")
        if peer_id is not None and not 0 <= peer_id <= 0xFFFFFF:
            raise LocalProtocolError("peer_id must be 24 bits")
        key_len, kind = CIPHERS[cipher]
        self.cipher = cipher
        self.key_id = key_id
        self.peer_id = peer_id
        self._crypto = crypto
        self._aead = kind == "aead"
        self._cbc = None  # type: Any  # a CBC cipher's ovpnkx.datacbc.CbcHmac
        if peer_id is None:
            self._hdr = bytes((P_DATA_V1 << 3 | key_id,))
        else:
            self._hdr = bytes((P_DATA_V2 << 3 | key_id, peer_id >> 16, (peer_id >> 8) & 0xFF, peer_id & 0xFF))
        if self._aead:
            self.auth = None
            self._enc = crypto.aead(cipher, _key_bytes(encrypt_key, "cipher", key_len))
            self._dec = crypto.aead(cipher, _key_bytes(decrypt_key, "cipher", key_len))
            self._enc_iv = _key_bytes(encrypt_key, "hmac", _IMPLICIT_IV)
            self._dec_iv = _key_bytes(decrypt_key, "hmac", _IMPLICIT_IV)
        else:
            from .datacbc import CbcHmac

            self.auth = auth
            self._cbc = CbcHmac(self, crypto, auth, encrypt_key, decrypt_key, key_len)
        self._send_id = 0  # last packet-id sent
        self._rec = PacketIdRec(replay_window, replay_time)
        self._now_s = 0  # local seconds of the packet being decrypted
        self.packets_out = 0
        self.bytes_out = 0
        self.packets_in = 0
        self.bytes_in = 0
        self.n_packets = 0
        self.n_bytes = 0
        # no properties on this class: where a class has one, MicroPython looks every
        # instance attribute store up in the class first (2-3x slower stores, measured)

    def close_to_wrapping(self) -> bool:
        """True once the send packet-id passed OpenVPN's wrap trigger: renegotiate."""
        return self._send_id >= PACKET_ID_WRAP_TRIGGER

    # -- sending ---------------------------------------------------------------

    def encrypt(self, payload: bytes) -> bytes:
        """The whole data packet (header included) carrying ``payload``."""
        if not payload:
            raise LocalProtocolError("empty data channel payload")
        if self._send_id >= PACKET_ID_MAX:
            raise LocalProtocolError("packet-id would wrap; renegotiate")
        pid = (self._send_id + 1).to_bytes(4, "big")
        if self._aead:
            aad = self._hdr + pid if len(self._hdr) == 4 else pid
            sealed = self._enc.seal(pid + self._enc_iv, payload, aad)
            n = len(sealed) - _TAG
            out = b"".join((self._hdr, pid, sealed[n:], sealed[:n]))
        else:
            out = self._cbc.seal(pid, payload)
        self._send_id += 1
        self.packets_out += 1
        self.bytes_out += len(payload)
        self.n_packets += 1
        self.n_bytes += len(out)
        return out

    # -- receiving -------------------------------------------------------------

    def decrypt(self, packet: bytes, now_ms: int = 0) -> bytes:
        """The payload of a data packet; RemoteProtocolError if it is refused.

        ``now_ms`` is the local time (for the replay window's time backtrack).
        A refused packet leaves the replay window and counters as they were.
        """
        # the time goes to the replay window through self: one more local or a longer
        # call here and MicroPython puts this call's frame on the heap (3-4x slower, measured)
        self._now_s = now_ms // 1000
        packet = bytes(packet)
        if not packet:
            raise RemoteProtocolError("short packet")
        op = packet[0] >> 3
        if op == P_DATA_V1:
            hlen = 1
        elif op == P_DATA_V2:
            hlen = 4
            if len(packet) < 4:
                raise RemoteProtocolError("short packet")
        else:
            raise RemoteProtocolError("not a data packet (opcode %d)" % op)
        if packet[0] & 7 != self.key_id:
            raise RemoteProtocolError("data packet for key_id %d, expected %d" % (packet[0] & 7, self.key_id))
        if self._aead:
            payload, pid = self._open_aead(packet, hlen)
        else:
            payload, pid = self._cbc.open(packet, hlen)
        self._replay_add(pid)
        self.packets_in += 1
        self.bytes_in += len(payload)
        self.n_packets += 1
        self.n_bytes += len(packet) - hlen
        return payload

    def _open_aead(self, packet: bytes, hlen: int) -> tuple:
        body = len(packet) - hlen
        if body < 4:
            raise RemoteProtocolError(_AEAD_ERR + "error reading packet-id (short packet)")
        if body < 4 + _TAG:
            raise RemoteProtocolError(_AEAD_ERR + "missing tag (short packet)")
        if body < 4 + _TAG + 1:
            raise RemoteProtocolError(_AEAD_ERR + "missing payload (short packet)")
        pid_bytes = packet[hlen:hlen + 4]
        pid = int.from_bytes(pid_bytes, "big")
        # a known replay is refused before spending time on decryption
        self._replay_test(pid, _AEAD_ERR)
        aad = packet[:hlen + 4] if hlen == 4 else pid_bytes
        tag_end = hlen + 4 + _TAG
        try:
            payload = self._dec.open(pid_bytes + self._dec_iv, packet[tag_end:] + packet[hlen + 4:tag_end], aad)
        except RemoteProtocolError:
            raise RemoteProtocolError(_AEAD_ERR + "cipher final failed (bad tag)")
        return payload, pid

    # -- replay window (packet_id_test / packet_id_add) ------------------------

    def _replay_test(self, pid: int, prefix: str) -> None:
        why = self._rec.refusal(pid, 0, self._now_s)
        if why is not None:
            raise RemoteProtocolError(prefix + "bad packet ID (may be a replay): [ #%d ] %s" % (pid, why))

    def _replay_add(self, pid: int) -> None:
        self._rec.add(pid, 0, self._now_s)
