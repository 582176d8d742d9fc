"""The key method 2 message and its key source (ssl.c key_method_2_write/_read).

Sent once per key_state inside the TLS channel, client first::

    uint32 0 | uint8 key_method (2) | key source | options | username | password | peer-info

key source: client pre_master[48] random1[32] random2[32], server random1[32]
random2[32]. Each string is ``u16 length | bytes | NUL`` with the NUL counted;
length 0 (``00 00``) is OpenVPN's "no string" (write_empty_string), which it
writes for username and password without auth-user-pass. The reader is
stricter than OpenVPN's in one way: it refuses what OpenVPN would silently
truncate or skip (a string without its NUL, a length beyond the end, bytes
after peer-info), because a 2.6 peer never sends those.
"""

import struct

from ._compat import TYPE_CHECKING, const, unload
from .errors import LocalProtocolError, RemoteProtocolError
from .keysource import PRE_MASTER_LEN, RANDOM_LEN, KeyMethod2Message, KeySource  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from typing import Any, Optional

KEY_METHOD_2 = 2
KEY_METHOD_MASK = 0x0F  # the high nibble held flags in old versions; ignored on read
TLS_OPTIONS_LEN = 512  # options string, NUL included (ssl.h)
# Username/password capacity, NUL included (misc.h): 4096 in builds with
# ENABLE_PKCS11 (Debian's 2.6.14), 128 in others. A longer one makes a 2.6
# server answer AUTH_FAILED; this reader refuses it.
USER_PASS_LEN = 4096
PEER_INFO_LEN = 0xFFFF  # only the u16 limits it (read_string_alloc)

# IV_PROTO bits of the peer-info (ssl.h)
IV_PROTO_DATA_V2 = 2
IV_PROTO_REQUEST_PUSH = 4
IV_PROTO_TLS_KEY_EXPORT = 8
IV_PROTO_AUTH_PENDING_KW = 16
IV_PROTO_NCP_P2P = 32
IV_PROTO_DNS_OPTION = 64
IV_PROTO_CC_EXIT_NOTIFY = 128
IV_PROTO_AUTH_FAIL_TEMP = 256
IV_PROTO_DYN_TLS_CRYPT = 512

_HEADER_LEN = const(5)  # uint32 0 + key method byte


# --- writing -------------------------------------------------------------------


def _write_string(out: bytearray, what: str, value: "Optional[str]", maxlen: int) -> None:
    """u16 length | UTF-8 | NUL; None is the empty string ``00 00``."""
    if value is None:
        out.extend(b"\x00\x00")
        return
    if not isinstance(value, str):
        raise LocalProtocolError("%s must be a str or None" % what)
    raw = value.encode("utf-8")
    if b"\x00" in raw:
        raise LocalProtocolError("%s contains a NUL" % what)
    n = len(raw) + 1
    if n > maxlen:
        raise LocalProtocolError("%s is %d bytes with its NUL, more than %d" % (what, n, maxlen))
    out.extend(struct.pack(">H", n))
    out.extend(raw)
    out.append(0)


def write_key_method2(msg: KeyMethod2Message, is_client: bool) -> bytes:
    """Serialize ``msg`` as the client's (``is_client``) or the server's key method 2 message."""
    ks = msg.key_source
    if not isinstance(ks, KeySource):
        raise LocalProtocolError("key_source must be a KeySource")
    if is_client and ks.pre_master is None:
        raise LocalProtocolError("the client's key source needs a pre_master")
    if not is_client and ks.pre_master is not None:
        raise LocalProtocolError("the server's key source has no pre_master")
    if not isinstance(msg.options, str):
        raise LocalProtocolError("options must be a str")
    out = bytearray(b"\x00\x00\x00\x00")
    out.append(KEY_METHOD_2)
    if is_client:
        out.extend(ks.pre_master)  # type: ignore[arg-type]
    out.extend(ks.random1)
    out.extend(ks.random2)
    _write_string(out, "options", msg.options, TLS_OPTIONS_LEN)
    _write_string(out, "username", msg.username, USER_PASS_LEN)
    _write_string(out, "password", msg.password, USER_PASS_LEN)
    _write_string(out, "peer-info", msg.peer_info, PEER_INFO_LEN)
    return bytes(out)


# --- reading -------------------------------------------------------------------


def _read_string(data: bytes, pos: int, what: str, maxlen: int) -> tuple:
    """Read one u16-prefixed string at ``pos``; return (str or None, next pos)."""
    if len(data) - pos < 2:
        raise RemoteProtocolError("key method 2 message ends before the %s length" % what)
    n = (data[pos] << 8) | data[pos + 1]
    pos += 2
    if n == 0:
        return None, pos
    if n > maxlen:
        raise RemoteProtocolError("%s is %d bytes, more than %d" % (what, n, maxlen))
    if n > len(data) - pos:
        raise RemoteProtocolError("%s length %d runs past the end (%d bytes left)" % (what, n, len(data) - pos))
    raw = data[pos:pos + n - 1]
    if data[pos + n - 1] != 0:
        raise RemoteProtocolError("%s is not NUL-terminated" % what)
    if raw.find(b"\x00") >= 0:
        raise RemoteProtocolError("%s has a NUL before its end" % what)
    if not _valid_utf8(raw):
        raise RemoteProtocolError("%s is not valid UTF-8" % what)
    return raw.decode("utf-8"), pos + n


def _valid_utf8(raw: bytes) -> bool:
    """Strict UTF-8 (RFC 3629) check, the same on both runtimes: MicroPython's
    decoder accepts encoded surrogates, and on some ports checks nothing."""
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            more, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= b <= 0xEF:
            more = 2
            lo = 0xA0 if b == 0xE0 else 0x80  # no overlong forms
            hi = 0x9F if b == 0xED else 0xBF  # no surrogates
        elif 0xF0 <= b <= 0xF4:
            more = 3
            lo = 0x90 if b == 0xF0 else 0x80
            hi = 0x8F if b == 0xF4 else 0xBF  # nothing above U+10FFFF
        else:
            return False
        if i + more >= n:  # truncated sequence
            return False
        if not lo <= raw[i + 1] <= hi:
            return False
        for j in range(i + 2, i + 1 + more):
            if not 0x80 <= raw[j] <= 0xBF:
                return False
        i += 1 + more
    return True


def read_key_method2(data: bytes, is_client_sender: bool) -> KeyMethod2Message:
    """Parse a key method 2 message sent by the client (``is_client_sender``) or the server.

    Raises RemoteProtocolError, and nothing else, for any malformed input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LocalProtocolError("read_key_method2 needs bytes")
    data = bytes(data)
    if len(data) < _HEADER_LEN:
        raise RemoteProtocolError("key method 2 message too short (%d bytes)" % len(data))
    # the leading uint32 is discarded unread, as OpenVPN does
    method = data[4] & KEY_METHOD_MASK
    if method != KEY_METHOD_2:
        raise RemoteProtocolError("key method %d is not supported (flags byte 0x%02x), only key method 2"
                                  % (method, data[4]))
    pos = _HEADER_LEN
    need = (PRE_MASTER_LEN if is_client_sender else 0) + 2 * RANDOM_LEN
    if len(data) - pos < need:
        raise RemoteProtocolError("key source too short (%d of %d bytes)" % (len(data) - pos, need))
    pre_master = None
    if is_client_sender:
        pre_master = data[pos:pos + PRE_MASTER_LEN]
        pos += PRE_MASTER_LEN
    random1 = data[pos:pos + RANDOM_LEN]
    random2 = data[pos + RANDOM_LEN:pos + 2 * RANDOM_LEN]
    pos += 2 * RANDOM_LEN
    options, pos = _read_string(data, pos, "options", TLS_OPTIONS_LEN)
    username, pos = _read_string(data, pos, "username", USER_PASS_LEN)
    password, pos = _read_string(data, pos, "password", USER_PASS_LEN)
    peer_info, pos = _read_string(data, pos, "peer-info", PEER_INFO_LEN)
    if pos != len(data):
        raise RemoteProtocolError("%d bytes after the peer-info" % (len(data) - pos))
    return KeyMethod2Message(KeySource(pre_master, random1, random2), options or "",
                             username, password, peer_info)


# --- options string and peer-info ----------------------------------------------


def _check_peer_info_part(what: str, text: str) -> None:
    if not isinstance(text, str) or "\n" in text or "\x00" in text:
        raise LocalProtocolError("peer-info %s must be a str without newline or NUL" % what)


def peer_info_string(items: list) -> str:
    """``KEY=VALUE\\n`` lines from ``(key, value)`` pairs, in the given order."""
    out = []
    for key, value in items:
        value = str(value)
        _check_peer_info_part("key", key)
        _check_peer_info_part("value", value)
        if not key or "=" in key:
            raise LocalProtocolError("peer-info key %r is not a valid name" % key)
        out.append("%s=%s\n" % (key, value))
    return "".join(out)


def parse_peer_info(text: "Optional[str]") -> dict:
    """``KEY=VALUE`` lines to a dict (later lines win; lines without ``=`` are skipped,
    as OpenVPN skips lines it cannot use)."""
    result = {}
    if text:
        for line in text.split("\n"):
            eq = line.find("=")
            if eq > 0:
                result[line[:eq]] = line[eq + 1:]
    return result


def iv_proto(peer_info: dict) -> int:
    """The peer's IV_PROTO bits, read as OpenVPN's extract_iv_proto does (sscanf
    ``%d``: blanks, a sign, leading digits); 0 unless that number is positive."""
    value = peer_info.get("IV_PROTO", "").lstrip(" \t")
    sign = value[:1] if value[:1] in ("-", "+") else ""
    digits = 0
    while len(sign) + digits < len(value) and "0" <= value[len(sign) + digits] <= "9":
        digits += 1
    if not digits or sign == "-" or digits > 10:
        return 0
    n = int(value[len(sign):len(sign) + digits])
    return n if 0 < n <= 0x7FFFFFFF else 0


# What we announce in our message (``SessionConfig``'s options_string, peer_info and iv_proto):
# here, so that a board loads this code with the message's, after the TLS handshake.
# The compression stubs a 2.6 client announces (comp.c), all of which ``ovpnkx.compress`` frames.
_STUBS_PEER_INFO = [("IV_LZO_STUB", 1), ("IV_COMP_STUB", 1), ("IV_COMP_STUBv2", 1)]


def announced_iv_proto(cfg: "Any") -> int:
    """The IV_PROTO bits ``cfg`` (a ``SessionConfig``) announces: TLS_KEY_EXPORT only where
    we can export; CC_EXIT_NOTIFY as 2.6 does (an exit notification may come as EXIT)."""
    bits = IV_PROTO_DATA_V2 | IV_PROTO_CC_EXIT_NOTIFY
    bits |= IV_PROTO_REQUEST_PUSH if cfg.p2mp else IV_PROTO_NCP_P2P
    return bits | (IV_PROTO_TLS_KEY_EXPORT if cfg.ask_ekm else 0)


def announced_options(cfg: "Any") -> str:
    """The options string of ``cfg``'s key method 2 message, as openvpn 2.6 writes it."""
    from .occ import options_string

    proto = "UDPv4" if cfg.proto == "udp" else ("TCPv4_SERVER" if cfg.is_server else "TCPv4_CLIENT")
    wrap = cfg.tls_auth
    tls_auth = wrap is not None and wrap.__class__.__name__ == "TlsAuth"  # tls-crypt adds nothing here
    try:
        return options_string(not cfg.is_server, proto, cfg.p2mp, cfg.cipher, cfg.ciphers, cfg.auth,
                              getattr(wrap, "direction", None) if tls_auth else None, tls_auth, cfg.dev_type,
                              comp=None if cfg.compression is None else cfg.compression.kind)
    finally:
        unload("occ")  # needed once (the session keeps the string)


def announced_peer_info(cfg: "Any") -> str:
    """``cfg``'s peer-info (IV_ lines). A client announces the compression stubs it can
    frame (IV_LZO_STUB, IV_COMP_STUB, IV_COMP_STUBv2) as a 2.6 client does under its
    default ``allow-compression no``; never a real algorithm."""
    from .sessionconfig import VERSION

    return peer_info_string([("IV_VER", "2.6.14"), ("IV_PLAT", cfg.platform), ("IV_PROTO", announced_iv_proto(cfg)),
                             ("IV_CIPHERS", ":".join(cfg.ciphers))]
                            + ([] if cfg.is_server else _STUBS_PEER_INFO)
                            + [("IV_GUI_VER", VERSION.replace(" ", "_"))])
