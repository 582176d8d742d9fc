"""Negotiation after key method 2: PUSH_REQUEST/PUSH_REPLY (p2mp) and p2p NCP.

p2mp (push.c): the client asks with ``PUSH_REQUEST`` (and, with IV_PROTO's
REQUEST_PUSH bit, the server pushes without being asked). ``PUSH_REPLY`` is a
comma-separated option list; a long one is split into several messages, each
with ``push-continuation 2`` except the last (``push-continuation 1``).

p2p (ssl_ncp.c): no push. Each side reads the other's peer-info: both must have
IV_PROTO's NCP_P2P bit; the cipher is the first of the tls-server's IV_CIPHERS
that the client also lists; tls-ekm iff both set TLS_KEY_EXPORT; P_DATA_V2 with
the fixed p2p peer-id when both set DATA_V2.
"""

from ._compat import is_decimal
from .errors import RemoteProtocolError
from .keymethod2 import (IV_PROTO_CC_EXIT_NOTIFY, IV_PROTO_DATA_V2, IV_PROTO_NCP_P2P,  # noqa: F401
                         IV_PROTO_REQUEST_PUSH, IV_PROTO_TLS_KEY_EXPORT)

PUSH_REQUEST = "PUSH_REQUEST"
PUSH_REPLY = "PUSH_REPLY"

_INT_MAX = 0x7FFFFFFF  # OpenVPN reads numbers as C ints

# ssl_ncp.c: in p2p mode with DATA_V2 both sides use this peer-id ("vpn").
P2P_PEER_ID = 0x76706E


class PushReply:
    """The options of a PUSH_REPLY that matter to the data channel."""

    def __init__(self) -> None:
        self.peer_id = None  # type: int | None
        self.cipher = None  # type: str | None
        self.tls_ekm = False
        self.cc_exit = False
        self.ping = None  # type: int | None
        self.ping_restart = None  # type: int | None
        self.options = []  # type: list
        self.warnings = []  # type: list  # values taken as OpenVPN takes them, not as sent

    def add(self, text: str) -> bool:
        """Add one PUSH_REPLY message; True when it was the last part."""
        if not text.startswith(PUSH_REPLY):
            raise RemoteProtocolError("not a PUSH_REPLY: %r" % text[:40])
        last = True
        for option in text[len(PUSH_REPLY):].split(","):
            option = option.strip()
            if not option:
                continue
            words = option.split()
            name = words[0]
            if name == "push-continuation":
                last = _int(words, option) != 2
                continue
            self.options.append(option)
            if name == "peer-id":
                self.peer_id = _int(words, option)
                if not 0 <= self.peer_id < 1 << 24:
                    raise RemoteProtocolError("pushed peer-id out of range: %r" % option)
            elif name == "cipher":
                self.cipher = _arg(words, option).upper()
            elif name == "key-derivation":
                self.tls_ekm = _arg(words, option) == "tls-ekm"
            elif name == "protocol-flags":
                flags = words[1:]
                self.tls_ekm = self.tls_ekm or "tls-ekm" in flags
                self.cc_exit = "cc-exit" in flags
            elif name == "ping":
                self.ping = self._seconds(words, option)
            elif name == "ping-restart":
                self.ping_restart = self._seconds(words, option)
        return last

    def _seconds(self, words: list, option: str) -> int:
        """options.c positive_atoi: a non-negative int, else 0 (off) with a warning."""
        n = _decimal(words[1]) if len(words) == 2 else None
        if n is None or n < 0:
            self.warnings.append("pushed %r is not a non-negative number of seconds: taken as 0 (off),"
                                 " as openvpn does" % option)
            return 0
        return n


def _arg(words: list, option: str) -> str:
    if len(words) < 2:
        raise RemoteProtocolError("pushed option without its argument: %r" % option)
    return words[1]


def _decimal(text: str) -> "int | None":
    """A whole decimal C int (optional sign), or None (options_util.c valid_integer)."""
    digits = text[1:] if text[:1] in ("-", "+") else text
    if not is_decimal(digits) or len(digits) > 10:
        return None
    n = int(text)
    return n if -_INT_MAX - 1 <= n <= _INT_MAX else None


def _int(words: list, option: str) -> int:
    n = _decimal(_arg(words, option))
    if n is None:
        raise RemoteProtocolError("pushed option needs a number: %r" % option)
    return n


def build_push_reply(options: list) -> str:
    """One PUSH_REPLY message from option strings (callers keep it < tls-mtu)."""
    return ",".join([PUSH_REPLY] + list(options))


def iv_ciphers(peer_info: dict) -> list:
    """IV_CIPHERS of a parsed peer-info dict, upper-cased."""
    text = peer_info.get("IV_CIPHERS", "")
    return [c.upper() for c in text.split(":") if c]


def choose_cipher(server_ciphers: list, client_ciphers: list) -> "str | None":
    """The first server cipher the client also supports (OpenVPN's ncp order)."""
    for name in server_ciphers:
        if name in client_ciphers:
            return name
    return None
