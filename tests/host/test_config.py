"""Broken .ovpn and server configs: every one refused with "file:line: reason".

The same table also runs on the MicroPython unix port (the device parses its own
config) and must give the same messages there. Anything a config cannot be used
for raises ConfigError only (a hypothesis property), and no error message quotes
the key or certificate text it came from.
"""

import json
import re
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from ovpnkx.config import ConfigError, parse_config
from ovpnkx_host.runtime import micropython_binary, micropython_env

NAME = "my.ovpn"
SECRET = "c2VjcmV0LWtleS1ieXRlcy1zaG91bGQtbmV2ZXItbGVhaw=="  # stands in for key material
PEM = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----" % SECRET
STATIC = "-----BEGIN OpenVPN Static key V1-----\n%s\n-----END OpenVPN Static key V1-----" % SECRET
FILES = {"ca.crt": PEM + "\n", "ta.key": STATIC + "\n"}
# 9 lines; a line appended to it is line 10
GOOD = "client\nremote 127.0.0.1 1194\n<ca>\n%s\n</ca>\ncert ca.crt\nkey ca.crt\n" % PEM


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
    ("keepalive without restart", GOOD + "keepalive 10\n", 10, ["keepalive needs a number"]),
    ("unterminated quote", GOOD + 'remote "127.0.0.1 1194\n', 10, ["unterminated quote"]),
    ("unknown inline block", GOOD + "<connection>\nremote a\n</connection>\n", 10,
     ["inline block <connection> is not supported"]),
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
    _check_message(_message(good + "local\n", server=True), 5, ["local needs an address"])


def test_unimplemented_directives_are_collected_not_refused():
    text = GOOD + "dev tun\nnobind\npersist-key\npersist-tun\nresolv-retry infinite\ndev tun\nverb 3\n"
    cfg = parse_config(text, NAME, read_file)
    assert sorted(set(cfg.ignored)) == ["dev", "nobind", "persist-key", "persist-tun", "resolv-retry"]
    assert cfg.verb == 3
    assert cfg.remote == ("127.0.0.1", 1194, "udp")


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
                          "<", ">", "", "\t", "\r", PEM, STATIC])
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
    assert cfg.ca and cfg.cert and cfg.key
    if not server:
        assert cfg.remotes and all(len(r) == 3 and r[1] and r[2] for r in cfg.remotes)
