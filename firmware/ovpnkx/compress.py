"""Compression framing of the data channel, as OpenVPN 2.6 frames it: stubs only.

OpenVPN frames every data-channel payload, keepalive pings and OCC messages
included, for the compression that ``comp-lzo`` or ``compress`` selects: before
encryption on the way out, after decryption on the way in (comp.c, compstub.c):

- ``comp-lzo no`` (COMP_ALG_STUB): one byte in front, 0xFA (NO_COMPRESS_BYTE).
  Real LZO puts 0x66 (LZO_COMPRESS_BYTE) in front of a compressed payload.
- ``compress`` / ``compress stub`` (COMP_ALG_STUB with COMP_F_SWAP): the first
  payload byte moves to the end and 0xFB (NO_COMPRESS_BYTE_SWAP) takes its place,
  keeping the payload aligned; real LZ4 writes 0x69 (LZ4_COMPRESS_BYTE) there.
- ``compress stub-v2`` (COMP_ALGV2_UNCOMPRESSED): the payload as it is, unless it
  starts with 0x50 (COMP_ALGV2_INDICATOR_BYTE): then 0x50 0x00 goes in front.
  lz4-v2 writes 0x50 0x01 in front of a compressed payload.

An empty payload is left as it is. This module is loaded only where a config or
a PUSH_REPLY asks for a stub (a board's heap holds the code it imports). ovpnkx never compresses: the boards' stock
MicroPython has neither LZO nor LZ4, and compression under encryption leaks the
plaintext (VORACLE) — which is why openvpn 2.6 allows stubs only by default
(``allow-compression no``). Real algorithms are refused in the config and in a
PUSH_REPLY; a compressed packet that arrives anyway is refused with a reason
that says so, never passed on garbled.
"""

from . import datachannel as dcmod
from .errors import LocalProtocolError, RemoteProtocolError

NO_COMPRESS_BYTE = 0xFA
NO_COMPRESS_BYTE_SWAP = 0xFB
LZO_COMPRESS_BYTE = 0x66
LZ4_COMPRESS_BYTE = 0x69
COMP_ALGV2_INDICATOR_BYTE = 0x50
COMP_ALGV2_UNCOMPRESSED_BYTE = 0
# the compressed algorithms of the v2 framing, by their second byte
_V2_ALGS = {1: "LZ4", 2: "LZO", 3: "Snappy"}

# what ``compress`` and ``comp-lzo`` may say, and whether it is a stub
_STUBS = {("comp-lzo", "no"): "lzo-stub", ("compress", ""): "stub", ("compress", "stub"): "stub",
          ("compress", "stub-v2"): "stub-v2"}
_REAL = {("comp-lzo", ""), ("comp-lzo", "yes"), ("comp-lzo", "adaptive"), ("comp-lzo", "asym"),
         ("compress", "lzo"), ("compress", "lz4"), ("compress", "lz4-v2")}

_REFUSED = ("ovpnkx frames compression stubs only and never decompresses (compression under "
            "encryption leaks plaintext; openvpn 2.6 refuses it too unless allow-compression is set)")


class Framing:
    """One stub framing: ``kind`` is "lzo-stub", "stub" or "stub-v2"; ``name`` the
    directive that selects it (for messages)."""

    def __init__(self, kind: str) -> None:
        if kind not in ("lzo-stub", "stub", "stub-v2"):
            raise LocalProtocolError("unknown compression framing %r" % kind)
        self.kind = kind
        self.name = {"lzo-stub": "comp-lzo no", "stub": "compress stub", "stub-v2": "compress stub-v2"}[kind]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Framing) and other.kind == self.kind

    def __repr__(self) -> str:
        return "Framing(%r)" % self.kind

    def compress(self, payload: bytes) -> bytes:
        """``payload`` framed for the wire (before encryption)."""
        if not payload:
            return payload
        if self.kind == "lzo-stub":
            return bytes((NO_COMPRESS_BYTE,)) + payload
        if self.kind == "stub":
            return bytes((NO_COMPRESS_BYTE_SWAP,)) + payload[1:] + payload[:1]
        if payload[0] == COMP_ALGV2_INDICATOR_BYTE:
            return bytes((COMP_ALGV2_INDICATOR_BYTE, COMP_ALGV2_UNCOMPRESSED_BYTE)) + payload
        return payload

    def decompress(self, data: bytes) -> bytes:
        """The payload of a decrypted packet; RemoteProtocolError when it is not a stub."""
        data = bytes(data)
        if not data:
            return data
        head = data[0]
        if self.kind == "lzo-stub":
            if head != NO_COMPRESS_BYTE:
                raise RemoteProtocolError(self._bad(head, LZO_COMPRESS_BYTE, "LZO", data))
            return data[1:]
        if self.kind == "stub":
            if head != NO_COMPRESS_BYTE_SWAP:
                raise RemoteProtocolError(self._bad(head, LZ4_COMPRESS_BYTE, "LZ4", data))
            return data[-1:] + data[1:-1]
        if head != COMP_ALGV2_INDICATOR_BYTE:
            return data
        if len(data) < 2:
            return b""  # openvpn leaves an empty packet
        if data[1] != COMP_ALGV2_UNCOMPRESSED_BYTE:
            alg = _V2_ALGS.get(data[1])
            if alg:
                raise RemoteProtocolError("the peer sent a %s-compressed packet (0x50 0x%02x) under %s: %s"
                                          % (alg, data[1], self.name, _REFUSED))
            raise RemoteProtocolError("bad compression stubv2 header byte 0x%02x (%s)" % (data[1], self.name))
        return data[2:]

    def _bad(self, head: int, compressed: int, alg: str, data: bytes) -> str:
        if head == compressed:
            return "the peer sent an %s-compressed packet (0x%02x) under %s: %s" % (alg, head, self.name, _REFUSED)
        if dcmod.is_ping(data) or dcmod.is_occ_exit(data):
            return ("the peer does not frame compression, but our config has %s: remove it (or set the "
                    "same on the server)" % self.name)
        return "bad compression header byte 0x%02x (%s)" % (head, self.name)


def framing(directive: str, arg: "str | None") -> "Framing | None":
    """The framing that ``directive`` (comp-lzo or compress) with ``arg`` selects.

    None for an absent directive; LocalProtocolError for real compression or an
    unknown argument.
    """
    if arg is None:
        return None
    key = (directive, arg.lower())
    if key in _STUBS:
        return Framing(_STUBS[key])
    text = (directive + " " + arg).strip()
    if key in _REAL:
        raise LocalProtocolError("%s: refused: %s; use comp-lzo no, compress or compress stub-v2, as the "
                                 "server does" % (text, _REFUSED))
    raise LocalProtocolError("%s: unknown compression setting" % text)


def from_config(comp_lzo: "str | None", compress: "str | None") -> "Framing | None":
    """The configured framing (``compress`` wins when both are given, as it is the 2.4+ form)."""
    if compress is not None:
        return framing("compress", compress)
    return framing("comp-lzo", comp_lzo)


def from_push(options: list, current: "Framing | None") -> "Framing | None":
    """The framing after a PUSH_REPLY's options (later options win, as in openvpn).

    Real compression raises RemoteProtocolError, as openvpn 2.6 refuses a push of
    settings its allow-compression does not allow ("server pushed compression
    settings that are not allowed").
    """
    result = current
    for option in options:
        words = option.split()
        if not words or words[0] not in ("comp-lzo", "compress"):
            continue
        arg = words[1] if len(words) > 1 else ""
        try:
            result = framing(words[0], arg)
        except LocalProtocolError:
            raise RemoteProtocolError("server pushed compression settings that are not allowed (%s): %s; the "
                                      "server must push comp-lzo no or compress stub-v2 instead" % (option, _REFUSED))
    return result


def unframed_reason(payload: bytes) -> "str | None":
    """Why a session must end when ``payload`` (not unframed by us) is a ping the peer framed."""
    peer = unframed_hint(payload)
    if peer is None:
        return None
    return ("the server frames every packet for compression (%s on its side), but our config has no such "
            "line: add '%s' (ovpnkx frames the stub and never compresses)" % (peer.split()[0], peer))


def unframed_hint(payload: bytes) -> "str | None":
    """A hint when a payload without our framing is a ping the peer framed: the
    server uses a compression stub that our config does not have."""
    data = bytes(payload)
    ping = dcmod.PING_STRING
    if data == bytes((NO_COMPRESS_BYTE,)) + ping:
        return "comp-lzo no"
    if data == bytes((NO_COMPRESS_BYTE_SWAP,)) + ping[1:] + ping[:1]:
        return "compress"
    return None
