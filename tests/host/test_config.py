"""Broken .ovpn and server configs: every one refused with "file:line: reason".

The same table also runs on the MicroPython unix port (the device parses its own
config) and must give the same messages there. Anything a config cannot be used
for raises ConfigError only (a hypothesis property), and no error message quotes
the key or certificate text it came from.
"""

import json
import os
import re
import subprocess

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx.config import ConfigError, parse_config
from ovpnkx_host.runtime import micropython_binary, micropython_env

NAME = "my.ovpn"
SECRET = "c2VjcmV0LWtleS1ieXRlcy1zaG91bGQtbmV2ZXItbGVhaw=="  # stands in for key material
PEM = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----" % SECRET
STATIC = "-----BEGIN OpenVPN Static key V1-----\n%s\n-----END OpenVPN Static key V1-----" % SECRET
# a static key that loads (tls-crypt keys are checked when the config is read)
STATIC_OK = "-----BEGIN OpenVPN Static key V1-----\n%s\n-----END OpenVPN Static key V1-----" % "\n".join(
    "%032x" % i for i in range(16))
FILES = {"ca.crt": PEM + "\n", "ta.key": STATIC + "\n", "tc.key": STATIC_OK + "\n"}
# 9 lines; a line appended to it is line 10
GOOD = "client\nremote 127.0.0.1 1194\n<ca>\n%s\n</ca>\ncert ca.crt\nkey ca.crt\n" % PEM
SERVER_GOOD = "server 10.8.0.0 255.255.255.0\nca ca.crt\ncert ca.crt\nkey ca.crt\n"


def read_file(path: str) -> str:
    if path in FILES:
        return FILES[path]
    raise FileNotFoundError(2, "No such file or directory", path)


# (what, config text, line the message must name or None, words the reason must contain)
BROKEN = [
    ("unknown proto", "proto sctp\n" + GOOD, 1, ["unsupported proto 'sctp'"]),
    ("unknown proto on remote", GOOD + "remote 127.0.0.1 1194 quic\n", 10, ["unsupported proto 'quic'"]),
    ("missing file", GOOD + "tls-auth nothere.key 1\n", 10, ["cannot read tls-auth file nothere.key",
                                                             "No such file or directory"]),
    ("unterminated inline block", GOOD + "<tls-auth>\n%s\n" % STATIC, 10, ["<tls-auth> is not closed by </tls-auth>"]),
    ("unterminated inline key", "client\nremote h 1\n<key>\n%s\n" % PEM, 3, ["<key> is not closed by </key>"]),
    ("bad number", GOOD + "hand-window soon\n", 10, ["hand-window needs a number"]),
    ("number out of range", GOOD + "ping-restart -1\n", 10, ["ping-restart -1 is out of range 0..86400"]),
    ("bad port", "client\nremote h 99999\n" + GOOD, 2, ["99999 is out of range 1..65535"]),
    ("keepalive without restart", GOOD + "keepalive 10\n", 10, ["keepalive takes 2 arguments, not 1"]),
    ("keepalive restart too short", GOOD + "keepalive 10 15\n", 10, ["at least twice the ping interval"]),
    ("unterminated quote", GOOD + 'remote "127.0.0.1 1194\n', 10, ["unterminated quote"]),
    ("refused inline block", GOOD + "<connection>\nremote a\n</connection>\n", 10,
     ["connection: refused: not implemented by ovpnkx"]),
    ("unknown inline block", GOOD + "<tls-crpyt>\n%s\n</tls-crpyt>\n" % STATIC, 10,
     ["tls-crpyt: unknown directive (did you mean tls-crypt?)"]),
    ("inline block of a plain directive", GOOD + "<verb>\n3\n</verb>\n", 10, ["verb cannot be an inline block"]),
    ("typo names the nearest directive", GOOD + "remote-cert-tsl server\n", 10,
     ["remote-cert-tsl: unknown directive (did you mean remote-cert-tls?)"]),
    ("unknown without a near name", GOOD + "frobnicate 1\n", 10, ["frobnicate: unknown directive"]),
    ("security directive not implemented", GOOD + "crl-verify crl.pem\n", 10,
     ["crl-verify: refused: a check of the peer that ovpnkx does not implement"]),
    ("ignore-unknown-option does not cover a known directive", GOOD + "ignore-unknown-option crl-verify\n"
     "crl-verify crl.pem\n", 11, ["crl-verify: refused"]),
    ("setenv opt does not cover a known directive", GOOD + "setenv opt tls-verify /bin/true\n", 10,
     ["tls-verify: refused"]),
    ("setenv opt keeps argument errors", GOOD + "setenv opt remote-cert-tls peer\n", 10,
     ["remote-cert-tls takes server or client"]),
    ("ignore-unknown-option only for what follows", GOOD + "frobnicate 1\nignore-unknown-option frobnicate\n", 10,
     ["frobnicate: unknown directive"]),
    ("server directive in a client config", GOOD + 'push "ping 10"\n', 10,
     ["push: refused: not supported in a client config (a server directive)"]),
    ("real compression", GOOD + "comp-lzo\n", 10, ["comp-lzo adaptive: refused", "use comp-lzo no"]),
    ("comp-lzo yes", GOOD + "comp-lzo yes\n", 10, ["comp-lzo yes: refused"]),
    ("compress lz4-v2", GOOD + "compress lz4-v2\n", 10, ["compress lz4-v2: refused", "compress stub-v2"]),
    ("bad comp-lzo", GOOD + "comp-lzo asym\n", 10, ["bad comp-lzo option 'asym'"]),
    ("bad allow-compression", GOOD + "allow-compression maybe\n", 10, ["bad allow-compression option"]),
    ("allow-compression yes", GOOD + "allow-compression yes\n", 10, ["allow-compression yes: refused: ovpnkx has no decompressor"]),
    ("a key line outside its block", GOOD + SECRET + "\n", 10, ["not a directive (a line of key or certificate data"]),
    ("cipher none", GOOD + "data-ciphers AES-256-GCM:none\n", 10, ["data-ciphers none: refused"]),
    ("unknown data cipher", GOOD + "data-ciphers AES-256-GCM:BF-CBC\n", 10,
     ["unsupported cipher BF-CBC in data-ciphers", "prefix ? to make a cipher optional"]),
    ("auth none", GOOD + "auth none\n", 10, ["auth none: refused"]),
    ("verify-x509-name type", GOOD + "verify-x509-name server cn\n", 10, ["unknown X.509 name type 'cn'"]),
    ("tls-version-min", GOOD + "tls-version-min 1.4\n", 10, ["tls-version-min takes 1.0, 1.1, 1.2 or 1.3"]),
    ("tls-version-min above max", GOOD + "tls-version-min 1.3\ntls-version-max 1.2\n", 10,
     ["tls-version-min 1.3 is above tls-version-max 1.2"]),
    ("peer-fingerprint", GOOD + "peer-fingerprint AB:CD\n", 10, ["is not a SHA-256 fingerprint"]),
    ("remote-cert-ku", GOOD + "remote-cert-ku zz\n", 10, ["remote-cert-ku takes hex key usage values"]),
    ("tls-auth and tls-crypt", GOOD + "tls-auth ta.key 1\ntls-crypt tc.key\n", None,
     ["tls-auth, tls-crypt and tls-crypt-v2 exclude each other"]),
    ("tls-crypt-v2 client key", GOOD + "<tls-crypt-v2>\n%s\n</tls-crypt-v2>\n" % STATIC, 10,
     ["tls-crypt-v2 client key: missing '-----BEGIN OpenVPN tls-crypt-v2 client key-----' line"]),
    ("extra arguments", GOOD + "client now\n", 10, ["client takes no argument, not 1"]),
    ("reneg-sec min above max", GOOD + "reneg-sec 100 200\n", 10, ["reneg-sec 200 is out of range 0..100"]),
    ("removed from openvpn", GOOD + "compat-names\n", 10, ["compat-names: refused: removed from openvpn"]),
    ("pull-filter on a pushed option ovpnkx applies", GOOD + 'pull-filter ignore "ping"\n', 10,
     ["pull-filter ignore 'ping': refused: it would filter the pushed ping"]),
    ("pull-filter reject", GOOD + 'pull-filter reject "route"\n', 10, ["pull-filter reject: refused"]),
    ("inline ca not PEM", "client\nremote h 1\n<ca>\nhello\n</ca>\n", 3, ["ca is not PEM"]),
    ("tls-auth not a static key", GOOD + "<tls-auth>\n%s\n</tls-auth>\n" % PEM, 10,
     ["tls-auth is not an OpenVPN static key"]),
    ("unsupported auth", GOOD + "auth MD4\n", 10, ["unsupported auth 'MD4'"]),
    ("auth-user-pass without password", GOOD + "<auth-user-pass>\nalice\n</auth-user-pass>\n", 10,
     ["auth-user-pass needs a username line and a password line"]),
    ("key-direction 2", GOOD + "key-direction 2\n", 10, ["key-direction 2 is out of range 0..1"]),
    ("remote-cert-tls peer", GOOD + "remote-cert-tls peer\n", 10, ["remote-cert-tls takes server or client"]),
    ("remote without host", GOOD + "remote\n", 10, ["remote needs a host"]),
    ("ca without file", GOOD + "ca\n", 10, ["ca needs a file name"]),
    ("missing ca", "client\nremote h 1\ncert ca.crt\nkey ca.crt\n", None, ["missing ca", "<ca> block"]),
    ("missing cert", "client\nremote h 1\nca ca.crt\nkey ca.crt\n", None, ["missing cert"]),
    ("missing key", "client\nremote h 1\nca ca.crt\ncert ca.crt\n", None, ["missing key"]),
    ("missing ca without peer-fingerprint", "client\nremote h 1\ncert ca.crt\nkey ca.crt\n", None,
     ["missing ca", "or peer-fingerprint"]),
    ("not a client config", GOOD.replace("client\n", "dev tun\n"), None,
     ["not a client config (needs client or tls-client)"]),
    ("no remote", GOOD.replace("remote 127.0.0.1 1194\n", ""), None, ["no remote"]),
]


def _message(text: str, server: bool = False) -> str:
    try:
        parse_config(text, NAME, read_file, server=server)
    except ConfigError as exc:
        return str(exc)
    raise AssertionError("accepted a broken config")


def _check_message(msg: str, line, words) -> None:
    if line is None:
        assert msg.startswith(NAME + ": "), msg
    else:
        m = re.match(r"^%s:(\d+): " % re.escape(NAME), msg)
        assert m and int(m.group(1)) == line, msg
    for w in words:
        assert w in msg, (w, msg)
    assert SECRET not in msg and SECRET[:16] not in msg
    assert "\n" not in msg


def test_every_broken_shape_names_file_line_and_reason():
    for what, text, line, words in BROKEN:
        msg = _message(text)
        _check_message(msg, line, words)


def test_the_same_messages_on_micropython(tmp_path):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"name": NAME, "files": FILES, "texts": [t for _, t, _, _ in BROKEN]}))
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\n"
        "from ovpnkx.config import ConfigError, parse_config\n"
        "d = json.load(open(sys.argv[1]))\n"
        "def rf(p):\n"
        "    if p in d['files']: return d['files'][p]\n"
        "    raise OSError(2)\n"  # MicroPython's OSError carries the errno only
        "out = []\n"
        "for t in d['texts']:\n"
        "    try:\n"
        "        parse_config(t, d['name'], rf)\n"
        "        out.append(None)\n"
        "    except ConfigError as e:\n"
        "        out.append(str(e))\n"
        "print(json.dumps(out))\n")
    proc = subprocess.run([micropython_binary(), str(script), str(cases)], capture_output=True, text=True,
                          env=micropython_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for (what, text, line, words), msg in zip(BROKEN, got):
        assert msg == _message(text), (what, msg)


def test_server_config_errors():
    good = "server 10.8.0.0 255.255.255.0\nca ca.crt\ncert ca.crt\nkey ca.crt\n"
    assert parse_config(good, NAME, read_file, server=True).tls_server
    _check_message(_message(good.replace("server 10.8.0.0 255.255.255.0\n", ""), server=True), None,
                   ["not a server config"])
    _check_message(_message(good.replace("key ca.crt\n", ""), server=True), None, ["missing key"])
    _check_message(_message(good + 'push "ping 10" "ping-restart 60"\n', server=True), 5,
                   ["push takes one quoted option"])
    _check_message(_message(good + "local\n", server=True), 5, ["local takes 1 argument, not 0"])
    _check_message(_message(good + "remote h 1\n", server=True), 5,
                   ["remote: refused: not supported in a server config (a client directive)"])
    _check_message(_message(good + "server 10.8.0.1 255.255.255.0\n", server=True), 5,
                   ["not a network and its netmask"])
    _check_message(_message(good + "topology star\n", server=True), 5, ["topology takes net30, p2p or subnet"])
    _check_message(_message(good + "verify-client-cert none\n", server=True), 5,
                   ["verify-client-cert none: refused"])


def test_host_only_directives_are_listed_not_refused():
    text = GOOD + "dev tun\nnobind\npersist-key\npersist-tun\nresolv-retry infinite\ndev tun\nverb 3\n"
    cfg = parse_config(text, NAME, read_file)
    assert cfg.host_only == ["dev", "nobind", "persist-key", "persist-tun", "resolv-retry"]
    assert cfg.verb == 3 and not cfg.warnings
    assert cfg.remote == ("127.0.0.1", 1194, "udp")


def test_unknown_directives_softened_as_openvpn_does():
    text = (GOOD + "ignore-unknown-option frobnicate --twiddle\nfrobnicate 1\ntwiddle\n"
            "setenv opt block-outside-dns\nsetenv opt remote-cert-tsl server\nsetenv opt verb 4\n"
            "setenv FORWARD_COMPATIBLE 1\nfuture-option x\nsetenv PATH /bin\n")
    cfg = parse_config(text, NAME, read_file)
    assert cfg.warnings == [
        "my.ovpn:11: frobnicate: unknown directive, ignored (ignore-unknown-option)",
        "my.ovpn:12: twiddle: unknown directive, ignored (ignore-unknown-option)",
        "my.ovpn:14: remote-cert-tsl: unknown directive, ignored (setenv opt)",
        "my.ovpn:17: future-option: unknown directive, ignored (setenv FORWARD_COMPATIBLE 1)"]
    # a known directive under setenv opt is applied as usual (block-outside-dns is Windows-only: host-only)
    assert cfg.verb == 4 and cfg.host_only == ["block-outside-dns", "setenv"]


def test_utf8_bom_and_openvpn_quoting():
    text = ("\ufeff" + GOOD + "verify-x509-name 'C=KG, ST=NA, CN=Server-1' subject\n"
            'remote "my host" 1195 tcp # a comment\n--verb 5\nremote-cert-eku "TLS Web Server Authentication"\n'
            "remote h\\ x 1196\n")
    cfg = parse_config(text, NAME, read_file)
    assert cfg.tls_client and cfg.verify_x509_name == ("C=KG, ST=NA, CN=Server-1", "subject")
    assert cfg.remotes[1:] == [("my host", 1195, "tcp"), ("h x", 1196, "udp")]
    assert cfg.verb == 5 and cfg.remote_cert_eku == "TLS Web Server Authentication"
    assert parse_config("\ufeff" + GOOD, NAME, read_file).tls_client  # was "not a client config"


def test_attributes_for_the_other_parts_have_openvpn_defaults():
    cfg = parse_config(GOOD, NAME, read_file)
    assert (cfg.tls_crypt, cfg.tls_crypt_v2, cfg.comp_lzo, cfg.compress, cfg.allow_compression) == (
        None, None, None, None, "no")
    assert (cfg.remote_random, cfg.connect_retry, cfg.connect_retry_max, cfg.server_poll_timeout) == (
        False, (1, 300), 0, 120)
    assert (cfg.explicit_exit_notify, cfg.reneg_sec, cfg.reneg_sec_min, cfg.reneg_bytes, cfg.reneg_pkts) == (
        0, 3600, None, 0, 0)
    assert (cfg.tran_window, cfg.replay_window) == (3600, (64, 15))
    assert cfg.data_ciphers == ["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"]
    assert cfg.optional_ciphers == ["CHACHA20-POLY1305"]  # openvpn 2.6: ?CHACHA20-POLY1305
    srv = parse_config(SERVER_GOOD, NAME, read_file, server=True)
    assert (srv.server_network, srv.server_netmask, srv.topology, srv.max_clients, srv.duplicate_cn,
            srv.connect_freq_initial) == ("10.8.0.0", "255.255.255.0", "net30", 1024, False, (100, 10))


def test_attributes_for_the_other_parts_parsed():
    cfg = parse_config(GOOD + "remote 127.0.0.2 1195 tcp\nremote-random\nconnect-retry 2 60\n"
                       "connect-retry-max 5\nserver-poll-timeout 9\nexplicit-exit-notify\nreneg-sec 600 300\n"
                       "reneg-bytes 1000000\nreneg-pkts 5000\ntran-window 30\nreplay-window 128 30\n"
                       "comp-lzo no\nallow-compression no\n<tls-crypt>\n%s\n</tls-crypt>\n" % STATIC_OK,
                       NAME, read_file)
    assert cfg.remotes == [("127.0.0.1", 1194, "udp"), ("127.0.0.2", 1195, "tcp")]
    assert (cfg.remote_random, cfg.connect_retry, cfg.connect_retry_max, cfg.server_poll_timeout) == (
        True, (2, 60), 5, 9)
    assert (cfg.explicit_exit_notify, cfg.reneg_sec, cfg.reneg_sec_min, cfg.reneg_bytes, cfg.reneg_pkts) == (
        1, 600, 300, 1000000, 5000)
    assert (cfg.tran_window, cfg.replay_window, cfg.comp_lzo, cfg.allow_compression) == (30, (128, 30), "no", "no")
    assert cfg.tls_crypt == STATIC_OK + "\n"
    for text, want in (("compress\n", ""), ("compress stub\n", "stub"), ("compress stub-v2\n", "stub-v2")):
        assert parse_config(GOOD + text, NAME, read_file).compress == want
    assert parse_config(GOOD + "explicit-exit-notify 3\nconnect-timeout 7\n", NAME, read_file).explicit_exit_notify == 3
    with open(os.path.join(os.path.dirname(__file__), "..", "data", "tlscrypt_kat.json")) as f:
        v2 = json.load(f)["tls-crypt-v2"]["v2_client_key"]  # a real openvpn --genkey tls-crypt-v2-client
    assert parse_config(GOOD + "<tls-crypt-v2>\n%s</tls-crypt-v2>\n" % v2, NAME, read_file).tls_crypt_v2 == v2
    srv = parse_config(SERVER_GOOD + "topology subnet\nmax-clients 10\nduplicate-cn\nconnect-freq-initial 5 20\n"
                       "keepalive 10 60\n", NAME, read_file, server=True)
    assert (srv.topology, srv.max_clients, srv.duplicate_cn, srv.connect_freq_initial) == ("subnet", 10, True, (5, 20))


def test_pull_filter_on_what_ovpnkx_does_not_apply():
    cfg = parse_config(GOOD + 'pull-filter ignore "route"\npull-filter accept "dhcp-option  DNS"\ncomp-noadapt\n',
                       NAME, read_file)
    assert cfg.pull_filters == [("ignore", "route"), ("accept", "dhcp-option DNS")] and cfg.comp_noadapt


def test_every_option_of_the_installed_openvpn_is_classified():
    """Each name `openvpn --help` lists is in a class of the policy (none falls to "unknown")."""
    import shutil

    from ovpnkx.options import classify

    binary = shutil.which("openvpn") or "/usr/sbin/openvpn"
    if not os.path.exists(binary):
        pytest.skip("openvpn is not installed (make setup installs it)")
    proc = subprocess.run([binary, "--help"], capture_output=True, text=True)
    names = sorted(set(re.findall(r"^--([a-z0-9-]+)", proc.stdout + proc.stderr, re.M)))
    assert len(names) > 200, names
    for server in (False, True):
        assert [n for n in names if classify(n, server)[0] == "unknown"] == []


def test_tls_directives_parsed():
    fp = ":".join(["ab"] * 32)
    cfg = parse_config("client\nremote h 1\ncert ca.crt\nkey ca.crt\npeer-fingerprint %s\n<peer-fingerprint>\n"
                       "# a comment\n%s\n</peer-fingerprint>\nremote-cert-tls server\nremote-cert-ku a0 88\n"
                       "tls-version-min 1.3 or-highest\ntls-version-max 1.3\ntls-cipher TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384\n"
                       "tls-ciphersuites TLS_AES_256_GCM_SHA384\nverify-x509-name srv name-prefix\n"
                       % (fp, fp.replace("ab", "CD")), NAME, read_file)
    assert cfg.ca is None and cfg.peer_fingerprints == [bytes([0xAB] * 32), bytes([0xCD] * 32)]
    assert cfg.remote_cert_ku == [0xA0, 0x88] and cfg.remote_cert_eku == "1.3.6.1.5.5.7.3.1"
    assert (cfg.tls_version_min, cfg.tls_version_min_or_highest, cfg.tls_version_max) == ("1.3", True, "1.3")
    assert cfg.verify_x509_name == ("srv", "name-prefix")


def test_a_good_config_with_files_and_inline_blocks():
    cfg = parse_config(GOOD + "tls-auth ta.key 1\nhand-window 5\nkeepalive 2 10\n", NAME, read_file)
    assert cfg.tls_auth == FILES["ta.key"] and cfg.key_direction == 1
    assert (cfg.hand_window, cfg.ping, cfg.ping_restart) == (5, 2, 10)


# words that make real directives likely, so the property reaches the deep branches
_WORDS = st.sampled_from(["client", "remote", "proto", "udp", "tcp", "port", "ca", "cert", "key", "tls-auth",
                          "<ca>", "</ca>", "<tls-auth>", "</tls-auth>", "<auth-user-pass>",
                          "</auth-user-pass>", "keepalive", "hand-window", "ping", "auth", "SHA1",
                          "data-ciphers", "cipher", "key-direction", "remote-cert-tls", "server", "push",
                          "local", "1", "0", "-1", "99999", '"', "ca.crt", "ta.key", "nothere", "#", ";",
                          "<", ">", "", "\t", "\r", PEM, STATIC, "ignore-unknown-option", "setenv", "opt",
                          "FORWARD_COMPATIBLE", "comp-lzo", "compress", "no", "stub-v2", "verify-x509-name",
                          "name-prefix", "subject", "tls-version-min", "or-highest", "1.3", "peer-fingerprint",
                          "<peer-fingerprint>", "</peer-fingerprint>", ":".join(["ab"] * 32), "remote-cert-ku",
                          "remote-cert-eku", "tls-crypt", "tls-crypt-v2", "reneg-sec", "replay-window",
                          "connect-retry", "topology", "subnet", "dev", "crl-verify", "'", "\\", "\ufeff",
                          "--remote", "data-ciphers", "?CHACHA20-POLY1305", "AES-256-GCM:none"])
_LINE = st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=5).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, max_size=14), st.booleans())
def test_any_text_raises_only_config_error(lines, server):
    text = "\n".join(lines)
    try:
        cfg = parse_config(text, NAME, read_file, server=server)
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith(NAME + ":"), msg
        assert SECRET not in msg
        return
    # accepted: then it has what a session needs
    assert (cfg.ca or cfg.peer_fingerprints) and cfg.cert and cfg.key and cfg.data_ciphers
    if not server:
        assert cfg.remotes and all(len(r) == 3 and r[1] and r[2] for r in cfg.remotes)


def test_docs_directives_md_is_current():
    from ovpnkx_host.directives_cli import markdown

    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "directives.md")
    with open(path) as f:
        assert f.read() == markdown(), "run: .venv/bin/ovpnkx directives --markdown > docs/directives.md"
