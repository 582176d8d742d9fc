"""tls-crypt-v2 on the server (OpenVPN's tls_crypt.c, server side): the server key,
unwrapping each client's wrapped key (WKc), and one client's wrapper.

Kept apart from ``tlscrypt`` (which a client needs) so that a board, always a
client, does not load it. The layout of WKc is in ``tlscrypt``'s docstring; the
server reads WKc's length from the last two bytes of a P_CONTROL_HARD_RESET_CLIENT_V3
or P_CONTROL_WKC_V1, unwraps it with its key, checks the tag and then unwraps the
packet itself with the client's key Kc.
"""

import struct

from . import packet as pk
from ._compat import TYPE_CHECKING
from .digest import Hmac, compare_digest
from .errors import LocalProtocolError, RemoteProtocolError
from .tlscrypt import (CLIENT_KEY_LEN, CLIENT_PEM, METADATA_MAX, OVERHEAD, SERVER_KEY_LEN, SERVER_PEM, WKC_MAX,
                       TlsCrypt, pem_decode)

if TYPE_CHECKING:
    from typing import Any

_TAG_LEN = 32


def parse_v2_server_key(text: "str | bytes") -> bytes:
    """The 128 bytes of an ``openvpn --genkey tls-crypt-v2-server`` key file."""
    key = pem_decode(text, SERVER_PEM, CLIENT_PEM, "tls-crypt-v2 server key")
    if len(key) != SERVER_KEY_LEN:
        raise LocalProtocolError("tls-crypt-v2 server key: %d bytes, expected %d" % (len(key), SERVER_KEY_LEN))
    return key


class TlsCryptV2ServerKey:
    """The server's tls-crypt-v2 key: wraps and unwraps client keys (WKc)."""

    def __init__(self, server_key: bytes, crypto: "Any") -> None:
        if len(server_key) != SERVER_KEY_LEN:
            raise LocalProtocolError("tls-crypt-v2 server key must be %d bytes" % SERVER_KEY_LEN)
        self._ctr = crypto.ctr_encryptor(server_key[:32])
        self._hmac = Hmac("SHA256", server_key[64:96])
        self.crypto = crypto

    def wrap_client_key(self, kc: bytes, metadata: bytes) -> bytes:
        """WKc for client key ``kc`` (256 bytes) and ``metadata`` (type byte first)."""
        if len(kc) != CLIENT_KEY_LEN:
            raise LocalProtocolError("tls-crypt-v2 client key must be %d bytes" % CLIENT_KEY_LEN)
        if not 1 <= len(metadata) <= METADATA_MAX:
            raise LocalProtocolError("tls-crypt-v2 metadata must be 1..%d bytes" % METADATA_MAX)
        net_len = struct.pack(">H", _TAG_LEN + CLIENT_KEY_LEN + len(metadata) + 2)
        tag = self._hmac.digest(net_len, kc, metadata)
        return tag + self._ctr(tag[:16], bytes(kc) + bytes(metadata)) + net_len

    def unwrap_client_key(self, wkc: bytes) -> tuple:
        """(Kc, metadata) from WKc; RemoteProtocolError names what is wrong."""
        why = "TLS Error: can not unwrap tls-crypt-v2 client key: "
        n = len(wkc)
        if n > WKC_MAX:
            raise RemoteProtocolError(why + "wrapped client key too big (%d bytes)" % n)
        if n < 2 or struct.unpack(">H", bytes(wkc[n - 2:]))[0] != n:
            raise RemoteProtocolError(why + "invalid length")
        if n < _TAG_LEN + 2:
            raise RemoteProtocolError(why + "failed to read tag")
        tag = bytes(wkc[:_TAG_LEN])
        plain = self._ctr(tag[:16], bytes(wkc[_TAG_LEN:n - 2]))
        if not compare_digest(tag, self._hmac.digest(wkc[n - 2:], plain)):
            raise RemoteProtocolError(why + "client key authentication error"
                                      " (a client key made for another server key?)")
        if len(plain) < CLIENT_KEY_LEN:
            raise RemoteProtocolError(why + "failed to read client key")
        return plain[:CLIENT_KEY_LEN], plain[CLIENT_KEY_LEN:]


def split_wkc(wire: bytes) -> int:
    """Where WKc starts in a V3 or WKC_V1 packet: its length is the last two bytes."""
    n = len(wire)
    if n < 4:
        raise RemoteProtocolError("TLS Error: can not read tls-crypt-v2 client key length")
    wkc_len = struct.unpack(">H", bytes(wire[n - 2:]))[0]
    if wkc_len > n - 1:
        raise RemoteProtocolError("TLS Error: can not locate tls-crypt-v2 client key")
    return n - wkc_len


class TlsCryptV2Server:
    """tls-crypt-v2 on the server, for one client: its key comes with its first packet.

    Until then only P_CONTROL_HARD_RESET_CLIENT_V3 and P_CONTROL_WKC_V1 can be
    read: their WKc is unwrapped with ``server_key`` (a ``TlsCryptV2ServerKey``)
    and, once the packet itself proves Kc, Kc keys this wrapper for good; later
    WKcs are cut off unread (a resent packet), as OpenVPN does. ``metadata`` is
    the client key's metadata (type byte first) once known.
    """

    overhead = OVERHEAD
    name = "tls-crypt-v2"

    def __init__(self, server_key: TlsCryptV2ServerKey, replay_window: int = 64, replay_time: int = 15) -> None:
        self._server_key = server_key
        self._replay = (replay_window, replay_time)
        self._inner = None  # type: TlsCrypt | None
        self._resume = None  # type: tuple | None  # (packet-id, time) to continue after
        self.metadata = None  # type: bytes | None

    @property
    def keyed(self) -> bool:
        """True once the client's key is known."""
        return self._inner is not None

    def unwrap(self, wire: bytes, now_ms: int) -> bytes:
        """Unwrap (learning the client key from a V3 or WKC_V1 first); see ``TlsCrypt.unwrap``."""
        op = wire[0] >> 3 if len(wire) else 0
        if op != pk.P_CONTROL_HARD_RESET_CLIENT_V3 and op != pk.P_CONTROL_WKC_V1:
            if self._inner is None:
                raise RemoteProtocolError("TLS Error: tls-crypt-v2: no client key yet (%s before the"
                                          " client's P_CONTROL_HARD_RESET_CLIENT_V3)"
                                          % pk.OPCODE_NAMES.get(op, "opcode %d" % op))
            return self._inner.unwrap_plain(wire, now_ms)
        cut = split_wkc(wire)
        if self._inner is not None:
            return self._inner.unwrap_plain(wire[:cut], now_ms)
        kc, metadata = self._server_key.unwrap_client_key(bytes(wire[cut:]))
        inner = TlsCrypt(kc, True, self._server_key.crypto, self._replay[0], self._replay[1])
        plain = inner.unwrap_plain(wire[:cut], now_ms)  # raises: this wrapper stays unkeyed
        if self._resume is not None:
            inner._send_id, inner._send_time = self._resume
        self._inner = inner
        self.metadata = metadata
        return plain

    def wrap(self, plain: bytes, now_ms: int) -> bytes:
        """Encrypt and authenticate with the client's key."""
        if self._inner is None:
            raise LocalProtocolError("tls-crypt-v2: no client key yet")
        return self._inner.wrap(plain, now_ms)

    def continue_sending_after(self, other: "Any") -> None:
        """The stateless reply (the cookie flow) went with packet-id 1 under the client's
        key; send after it (OpenVPN's session_skip_to_pre_start)."""
        if self._inner is not None:
            self._inner._send_id = max(self._inner._send_id, 1)
        else:
            self._resume = (1, 0)
