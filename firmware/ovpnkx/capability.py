"""What a runtime can do, and the check of a parsed config against it.

A capability description is a plain dict (JSON-friendly, cheap on a board)::

    {"runtime": "micropython",           # named in every refusal
     "tls": True,                        # a TLS engine exists (MicroPython: the tls module)
     "ciphers": ["AES-256-GCM", ...],    # data-channel ciphers
     "digests": ["SHA1", ...],           # --auth digests
     "tls_versions": ["1.2"],            # TLS versions the engine can negotiate
     "tls_cipher_syntax": "mbedtls",     # "openssl": OpenSSL cipher strings; "mbedtls": IANA names only
     "tls_ciphers": [...] or None,       # the IANA suite names the engine has (None: not known here)
     "tls_ekm": False,                   # RFC 5705 exporter (tls-ekm)
     "tls_crypt": False, "tls_crypt_v2": False,
     "cert_chain": False}                # can send intermediate certificates (extra-certs)

``micropython()`` probes the running MicroPython; the host builds the CPython one and a
board's one (from ``boards/<b>/board.json``) in ``ovpnkx_host.capabilities``. A runtime
has tls-crypt when its ``ovpnkx`` package defines the class ``TlsCrypt`` (tls-crypt-v2:
also ``parse_v2_client_key``) in ``ovpnkx.tlscrypt`` or ``ovpnkx.tlswrap``: a firmware
tree without them is a build without tls-crypt. ``micropython()`` leaves "tls_crypt" and
"tls_crypt_v2" out: ``check`` probes them (``tls_crypt_support``) when the config asks
for tls-crypt, so that a board whose config has none never loads ``tlscrypt``, whose
names it would intern for good.

``check(cfg, caps)`` refuses, with file, line and reason, what the runtime cannot
honour, and adjusts what OpenVPN would adjust (an optional ``?CIPHER`` it lacks is
dropped, ``tls-version-min … or-highest`` comes down to the highest it has), saying
so in ``cfg.notes``.
"""

import sys

from ._compat import TYPE_CHECKING
from .config import AUTHS, CIPHERS, TLS_VERSIONS, ConfigError

if TYPE_CHECKING:
    from typing import Any, NoReturn

TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256")


def tls_crypt_support() -> tuple:
    """(tls-crypt, tls-crypt-v2) of this ``ovpnkx`` package (see the module docstring)."""
    v1 = v2 = False
    for name in ("ovpnkx.tlscrypt", "ovpnkx.tlswrap"):
        try:
            __import__(name)
        except ImportError:
            continue
        mod = sys.modules.get(name)
        v1 = v1 or hasattr(mod, "TlsCrypt")
        v2 = v2 or hasattr(mod, "parse_v2_client_key")
    return v1, v2


def micropython() -> dict:
    """The running MicroPython's capabilities (its hashlib, cryptolib and tls)."""
    import hashlib

    caps = {"runtime": "micropython", "tls": False, "ciphers": [], "tls_versions": ["1.2"],
            "tls_cipher_syntax": "mbedtls", "tls_ciphers": None, "tls_ekm": False, "cert_chain": False}
    # SHA384/512 come from ovpnkx.sha512 where hashlib lacks them
    caps["digests"] = [d for d in AUTHS if d in ("SHA384", "SHA512") or hasattr(hashlib, d.lower())]
    try:
        import cryptolib  # type: ignore[import-not-found, unused-ignore]  # noqa: F401

        caps["ciphers"] = [c for c in CIPHERS if c.startswith("AES-")]
    except ImportError:
        pass
    try:
        import tls  # type: ignore[import-not-found, unused-ignore]

        caps["tls"] = True
        caps["tls_ciphers"] = list(tls.SSLContext(tls.PROTOCOL_TLS_CLIENT).get_ciphers())  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        pass
    return caps  # without "tls_crypt" and "tls_crypt_v2": check() probes them if the config asks


def openssl_cipher_name(iana: str) -> "str | None":
    """OpenSSL's name of a TLS 1.2 suite given in the IANA form OpenVPN and mbedTLS use.

    ``TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384`` -> ``ECDHE-ECDSA-AES256-GCM-SHA384``;
    None when the name is not of that form.
    """
    name = iana.replace("_", "-").upper()
    if not name.startswith("TLS-") or "-WITH-" not in name:
        return None
    kx, rest = name[4:].split("-WITH-", 1)
    prefix = "" if kx == "RSA" else kx + "-"
    if rest.startswith("CHACHA20-POLY1305"):
        return prefix + "CHACHA20-POLY1305"
    for size in ("128", "256"):
        aes = "AES-%s-" % size
        if rest.startswith(aes + "GCM-"):
            return "%sAES%s-GCM-%s" % (prefix, size, rest[len(aes) + 4:])
        if rest.startswith(aes + "CBC-"):
            mac = rest[len(aes) + 4:]
            return "%sAES%s-%s" % (prefix, size, mac)
    return None


def _iana(token: str, known: "list | None") -> "str | None":
    # an OpenSSL-style name given to mbedTLS: find the IANA name that maps to it
    if token.upper().startswith("TLS-"):
        return token.upper()
    for name in known or ():
        if openssl_cipher_name(name) == token.upper():
            return name
    return None


def check(cfg: "object", caps: dict) -> None:
    """Refuse what ``caps`` cannot do (ConfigError naming file, line and reason)."""
    c = cfg  # type: Any
    runtime = caps.get("runtime", "this runtime")

    def refuse(directive: str, why: str) -> "NoReturn":
        raise ConfigError("%s: %s: %s cannot honour it: %s" % (c.where(directive), directive, runtime, why))

    if not caps.get("tls", True):
        raise ConfigError("%s: %s has no TLS engine (no tls module in its firmware): it cannot run OpenVPN's "
                          "control channel" % (c.name, runtime))
    have = caps.get("ciphers", [])
    kept = []
    for cipher in c.data_ciphers:
        if cipher in have:
            kept.append(cipher)
        elif cipher in c.optional_ciphers:
            c.notes.append("%s: optional cipher %s is not available on %s: not offered"
                           % (c.where("data-ciphers"), cipher, runtime))
        elif cipher == c.cipher:
            refuse("cipher" if "cipher" in c.lines else "data-ciphers-fallback",
                   "%s is not available (it has %s)" % (cipher, ", ".join(have) or "none"))
        else:
            refuse("data-ciphers", "cipher %s is not available (it has %s; prefix ? to make a cipher optional)"
                   % (cipher, ", ".join(have) or "none"))
    if not kept:
        refuse("data-ciphers", "none of %s is available (it has %s)" % (":".join(c.data_ciphers),
                                                                       ", ".join(have) or "none"))
    c.data_ciphers = kept
    if c.auth not in caps.get("digests", AUTHS):
        refuse("auth", "digest %s is not available (it has %s)" % (c.auth, ", ".join(caps.get("digests", []))))
    versions = [v for v in TLS_VERSIONS if v in caps.get("tls_versions", TLS_VERSIONS)]
    if c.tls_version_min and versions and TLS_VERSIONS.index(c.tls_version_min) > TLS_VERSIONS.index(versions[-1]):
        if not c.tls_version_min_or_highest:
            refuse("tls-version-min", "its TLS offers %s at most (add or-highest to accept that)" % versions[-1])
        c.notes.append("%s: tls-version-min %s or-highest: %s offers %s at most, so %s" % (
            c.where("tls-version-min"), c.tls_version_min, runtime, versions[-1], versions[-1]))
        c.tls_version_min = versions[-1]
    if c.tls_version_max and versions and TLS_VERSIONS.index(c.tls_version_max) < TLS_VERSIONS.index(versions[0]):
        refuse("tls-version-max", "its TLS offers %s at least" % versions[0])
    if c.tls_cipher and caps.get("tls_cipher_syntax") == "mbedtls":
        known = caps.get("tls_ciphers")
        names = []
        for token in c.tls_cipher.split(":"):
            if not token:
                continue
            name = _iana(token, known)
            if name is None or openssl_cipher_name(name) is None:
                refuse("tls-cipher", "its TLS (mbedTLS) takes a list of suite names such as "
                       "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384, not %r" % token)
            if known is not None and name not in known:
                refuse("tls-cipher", "its TLS (mbedTLS) has no suite %s" % name)
            names.append(name)
        c.tls_cipher = ":".join(names)
    if c.tls_ciphersuites:
        for token in c.tls_ciphersuites.split(":"):
            if token and token not in TLS13_SUITES:
                refuse("tls-ciphersuites", "%r is not a TLS 1.3 suite (%s)" % (token, ", ".join(TLS13_SUITES)))
        if "1.3" not in versions:
            c.notes.append("%s: tls-ciphersuites: %s has no TLS 1.3, so there is nothing to restrict"
                           % (c.where("tls-ciphersuites"), runtime))
    for directive, attr, key in (("tls-crypt", "tls_crypt", "tls_crypt"),
                                 ("tls-crypt-v2", "tls_crypt_v2", "tls_crypt_v2")):
        if getattr(c, attr) is None:
            continue
        if key not in caps:
            caps["tls_crypt"], caps["tls_crypt_v2"] = tls_crypt_support()
        if not caps[key]:
            refuse(directive, "this build has no %s (no %s class in its ovpnkx package)"
                   % (directive, "parse_v2_client_key" if key == "tls_crypt_v2" else "TlsCrypt"))
    if not caps.get("cert_chain", True) and str(c.cert).count("-----BEGIN CERTIFICATE-----") > 1:
        refuse("extra-certs" if c.extra_certs else "cert",
               "its TLS engine sends one certificate, without intermediates")
