"""The options string of key method 2 (options.c options_string, OpenVPN's OCC text).

Needed once per key_state, so the session loads this module when it writes its
first key method 2 message and, on MicroPython, lets it go again (``SessionConfig``
keeps the string).
"""

from ._compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Optional

# --cipher as options.c sees it for the options string: key bits, IV and block size, AEAD
_OCC_CIPHERS = {
    "BF-CBC": (128, 8, 8, False),  # openvpn's default --cipher; announced, never used here
    "AES-128-CBC": (128, 16, 16, False),
    "AES-256-CBC": (256, 16, 16, False),
    "AES-128-GCM": (128, 12, 16, True),
    "AES-256-GCM": (256, 12, 16, True),
    "CHACHA20-POLY1305": (256, 12, 1, True),
}
_DIGEST_SIZES = {"MD5": 16, "SHA1": 20, "SHA256": 32, "SHA384": 48, "SHA512": 64}


def options_string(is_client: bool, proto: str = "UDPv4", p2mp: bool = True, cipher: "Optional[str]" = None,
                   data_ciphers: "Optional[list]" = None, auth: str = "SHA1",
                   key_direction: "Optional[int]" = None, tls_auth: bool = False, dev_type: str = "tun",
                   tun_mtu: int = 1500, comp: "Optional[str]" = None) -> str:
    """The options string of key method 2, as OpenVPN 2.6's options_string() writes it.

    ``cipher`` is --cipher (None: openvpn's default BF-CBC); it is announced in p2p
    mode, or when it is one of ``data_ciphers``. An AEAD --cipher makes the digest
    ``[null-digest]``. link-mtu is tun-mtu plus the data packet overhead of that
    cipher and digest (opcode 1, packet-id 4, IV, one block, HMAC or tag 16 and
    IV 12; 2 more on TCP), as calc_options_string_link_mtu counts it. Checked
    against the real 2.6.14 in tests/data/occ_openvpn.json. A mismatch is only a
    warning in 2.6. ``comp``: the configured compression framing (``compress.Framing.kind``):
    any adds ``comp-lzo`` after the proto, as 2.6 writes it for an active compression
    context; the v1 framings' byte counts in link-mtu, the v2 stub's does not.
    """
    name = (cipher or "BF-CBC").upper()
    auth = auth.upper()
    # a cipher or digest not listed here is still announced (the string is only compared,
    # with a warning on mismatch); link-mtu then counts it as an AES-CBC / 0-byte HMAC
    bits, iv, block, aead = _OCC_CIPHERS.get(name, (128, 16, 16, False))
    overhead = 1 + 4 + (16 + iv + block if aead else _DIGEST_SIZES.get(auth, 0) + iv + block)
    if proto.startswith("TCP"):
        overhead += 2  # the stream's packet length
    if comp is not None and comp != "stub-v2":
        overhead += 1  # the v1 framings' compression byte
    parts = ["V4", "dev-type " + dev_type, "link-mtu %d" % (tun_mtu + overhead), "tun-mtu %d" % tun_mtu,
             "proto " + proto]
    if comp is not None:
        parts.append("comp-lzo")
    if key_direction is not None:
        parts.append("keydir %d" % key_direction)
    if not p2mp or name in [c.upper() for c in (data_ciphers or [])]:
        parts.append("cipher " + name)
    parts.append("auth " + ("[null-digest]" if aead else auth))
    parts.append("keysize %d" % bits)
    if tls_auth:
        parts.append("tls-auth")
    parts.append("key-method 2")
    parts.append("tls-client" if is_client else "tls-server")
    return ",".join(parts)
