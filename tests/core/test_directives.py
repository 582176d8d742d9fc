"""The directive policy and the runtime check, on both runtimes (the board parses its own config).

Every directive is in exactly one class per role; every implemented one is handled by
the parser; unknown names get the nearest known one as a hint; a capability
description refuses, with file, line and reason, what the runtime cannot honour.
"""

from ovpnkx import directives as D
from ovpnkx.capability import check, micropython, openssl_cipher_name
from ovpnkx.config import ConfigError, parse_config
from ovpnkx.options import all_names, classify, suggest

from _support import raises

PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
GOOD = "client\nremote 127.0.0.1 1194\n<ca>\n%s\n</ca>\n<cert>\n%s\n</cert>\n<key>\n%s\n</key>\n" % (PEM, PEM, PEM)
N = GOOD.count("\n") + 1  # the line number of a line appended to GOOD
# a board-like runtime: AES only, TLS 1.2 only, IANA suite names, no tls-crypt, no chains
BOARD = {"runtime": "testboard", "tls": True, "ciphers": ["AES-256-GCM", "AES-128-GCM", "AES-256-CBC"],
         "digests": ["SHA1", "SHA256", "SHA384", "SHA512"], "tls_versions": ["1.2"], "tls_cipher_syntax": "mbedtls",
         "tls_ciphers": ["TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256"],
         "tls_ekm": False, "tls_crypt": False, "tls_crypt_v2": False, "cert_chain": False}


def _names(text):
    return text.split()


def _refusal(extra, caps=BOARD):
    try:
        parse_config(GOOD + extra, "my.ovpn", None, caps=caps)
    except ConfigError as exc:
        return str(exc)
    raise AssertionError("accepted: %r" % extra)


def test_class_strings_are_padded_single_spaced_and_without_duplicates():
    texts = [D.BOTH, D.CLIENT, D.SERVER, D.HOST_ONLY, D.SERVER_HOST_ONLY_IN_CLIENT]
    texts += [names for _, names in D.REFUSED] + [names for _, names in D.BY_OTHERS]
    for text in texts:
        assert text[0] == " " and text[-1] == " " and "  " not in text, text[:40]
        assert len(set(_names(text))) == len(_names(text)), text[:40]


def test_every_directive_in_exactly_one_class_per_role():
    refused = []
    for _, names in D.REFUSED:
        refused += _names(names)
    for server in (False, True):
        implemented = _names(D.BOTH) + _names(D.SERVER if server else D.CLIENT)
        other_role = _names(D.CLIENT if server else D.SERVER)
        host = _names(D.HOST_ONLY) + ([] if server else _names(D.SERVER_HOST_ONLY_IN_CLIENT))
        classes = [implemented, host, refused]
        seen = {}
        for i, names in enumerate(classes):
            for n in names:
                assert n not in seen, (n, server)
                seen[n] = i
        for n in other_role:  # refused in this role, unless host-only here
            assert n not in implemented, n
        for n in all_names():
            kind, _ = classify(n, server)
            assert kind != "unknown", n
            want = {0: "implemented", 1: "host-only", 2: "refused"}.get(seen.get(n, 2))
            assert kind == want, (n, server, kind)
    for n in _names(D.SERVER_HOST_ONLY_IN_CLIENT):
        assert n in _names(D.SERVER)
    implemented_any = set(_names(D.BOTH) + _names(D.CLIENT) + _names(D.SERVER))
    for _, names in D.BY_OTHERS:
        for n in _names(names):
            assert n in implemented_any, n


def test_every_implemented_directive_has_a_parser_branch():
    for server, text in ((False, GOOD), (True, "server 10.8.0.0 255.255.255.0\n<ca>\n%s\n</ca>\n" % PEM)):
        for name in _names(D.BOTH) + _names(D.SERVER if server else D.CLIENT):
            for args in ("", " 1", " x y"):
                try:
                    parse_config(text + name + args + "\n", "t.conf", None, server=server)
                except ConfigError as exc:
                    assert "not handled" not in str(exc), str(exc)


def test_unknown_directive_names_the_nearest_known_one():
    assert suggest("remote-cert-tsl") == "remote-cert-tls"
    assert suggest("verify-x509-nmae") == "verify-x509-name"
    assert suggest("tls-crpyt") == "tls-crypt"
    assert suggest("persist-tunn") == "persist-tun"
    assert suggest("xyzzy") is None
    msg = _refusal("remote-cert-tsl server\n")
    assert msg == "my.ovpn:%d: remote-cert-tsl: unknown directive (did you mean remote-cert-tls?)" % N, msg


def test_numbers_are_ascii_decimal_on_both_runtimes():
    # CPython's int() takes other scripts' digits (u0661 is Arabic-Indic one); MicroPython's does not
    msg = _refusal("hand-window \u0661\u0660\n")
    assert msg == "my.ovpn:%d: hand-window needs a number" % N, msg
    msg = _refusal("hand-window 1_0\n")
    assert msg == "my.ovpn:%d: hand-window needs a number" % N, msg


def test_runtime_refuses_with_file_line_and_reason():
    msg = _refusal("tls-version-min 1.3\n")
    assert msg.startswith("my.ovpn:%d: tls-version-min: testboard cannot honour it: its TLS offers 1.2 at most" % N), msg
    msg = _refusal("\n\ndata-ciphers AES-256-GCM:CHACHA20-POLY1305\n")
    assert msg.startswith("my.ovpn:%d: data-ciphers: testboard cannot honour it: cipher CHACHA20-POLY1305" % (N + 2)), msg
    assert "prefix ? to make a cipher optional" in msg
    key = "\n".join("%032x" % i for i in range(16))  # 256 bytes: a key that loads
    msg = _refusal("<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\n%s\n-----END OpenVPN Static key V1-----\n"
                   "</tls-crypt>\n" % key)
    assert msg.startswith("my.ovpn:%d: tls-crypt: testboard cannot honour it: this build has no tls-crypt" % N), msg
    msg = _refusal("tls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384\n")
    assert "tls-cipher: testboard cannot honour it: its TLS (mbedTLS) has no suite" in msg, msg
    msg = _refusal("tls-cipher HIGH:!aNULL\n")
    assert "takes a list of suite names" in msg, msg
    msg = _refusal("<extra-certs>\n%s\n</extra-certs>\n" % PEM)
    assert "extra-certs: testboard cannot honour it: its TLS engine sends one certificate" in msg, msg
    msg = _refusal("auth SHA512\n", dict(BOARD, digests=["SHA1", "SHA256"]))
    assert msg.startswith("my.ovpn:%d: auth: testboard cannot honour it: digest SHA512" % N), msg
    msg = _refusal("", dict(BOARD, tls=False))
    assert msg.startswith("my.ovpn: testboard has no TLS engine"), msg


def test_runtime_adjusts_as_openvpn_would_and_says_so():
    cfg = parse_config(GOOD + "tls-version-min 1.3 or-highest\ntls-cipher ECDHE-ECDSA-AES256-GCM-SHA384\n"
                       "tls-ciphersuites TLS_AES_256_GCM_SHA384\n", "my.ovpn", None, caps=BOARD)
    assert cfg.data_ciphers == ["AES-256-GCM", "AES-128-GCM"]  # the default's optional CHACHA20 dropped
    assert cfg.tls_version_min == "1.2"
    assert cfg.tls_cipher == "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"  # OpenSSL's name, as mbedTLS takes it
    notes = "\n".join(cfg.notes)
    assert "optional cipher CHACHA20-POLY1305 is not available on testboard: not offered" in notes
    assert "my.ovpn:%d: tls-version-min 1.3 or-highest: testboard offers 1.2 at most, so 1.2" % N in notes
    assert "tls-ciphersuites: testboard has no TLS 1.3" in notes


def test_this_runtime_describes_itself():
    import sys

    if sys.implementation.name != "micropython":
        return  # CPython's description is built on the host (ovpnkx_host.capabilities)
    caps = micropython()
    assert caps["tls"] and caps["tls_versions"] == ["1.2"] and not caps["tls_ekm"]
    assert "SHA512" in caps["digests"] and "CHACHA20-POLY1305" not in caps["ciphers"]
    assert "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384" in caps["tls_ciphers"]
    check(parse_config(GOOD, "my.ovpn", None), caps)


def test_tls_crypt_is_probed_only_for_a_config_that_asks_for_it():
    import sys

    if sys.implementation.name != "micropython":
        return  # micropython() describes the running MicroPython
    sys.modules.pop("ovpnkx.tlscrypt", None)
    caps = micropython()
    assert "tls_crypt" not in caps and "tls_crypt_v2" not in caps
    check(parse_config(GOOD, "my.ovpn", None), caps)
    # a board without tls-crypt in its config never loads tlscrypt (its names stay off the chip)
    assert "ovpnkx.tlscrypt" not in sys.modules and "tls_crypt" not in caps
    key = "\n".join(["0123456789abcdef" * 2] * 16)
    cfg = parse_config(GOOD + "<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\n%s\n"
                       "-----END OpenVPN Static key V1-----\n</tls-crypt>\n" % key, "my.ovpn", None)
    check(cfg, caps)  # this build has tls-crypt: probed now, and not refused
    assert caps["tls_crypt"] is True and caps["tls_crypt_v2"] is True


def test_openssl_names_of_iana_suites():
    assert openssl_cipher_name("TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384") == "ECDHE-ECDSA-AES256-GCM-SHA384"
    assert openssl_cipher_name("TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA") == "ECDHE-RSA-AES128-SHA"
    assert openssl_cipher_name("TLS-RSA-WITH-AES-256-CBC-SHA256") == "AES256-SHA256"
    assert openssl_cipher_name("TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256") == "ECDHE-RSA-CHACHA20-POLY1305"
    assert openssl_cipher_name("ECDHE-RSA-AES128-SHA") is None
    raises(ConfigError, parse_config, GOOD + "frobnicate\n", "x", None)
