"""tls-crypt and tls-crypt-v2 in a config file: files, inline blocks, errors with file and line.

(``cfg.tls_crypt`` and ``cfg.tls_crypt_v2`` hold the key texts; a key that will not load
is an error of its config line.)
"""

from ovpnkx.config import ConfigError, parse_config

from _support import load_json, raises

KAT = load_json("tlscrypt_kat.json")
STATIC = KAT["tls-crypt"]["static_key"]
V2_CLIENT = KAT["tls-crypt-v2"]["v2_client_key"]
V2_SERVER = KAT["tls-crypt-v2"]["v2_server_key"]
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CLIENT = "client\nremote 127.0.0.1 1194\nca ca.crt\ncert c.crt\nkey c.key\n"
SERVER = "server 10.8.0.0 255.255.255.0\nca ca.crt\ncert c.crt\nkey c.key\n"
FILES = {"ca.crt": PEM, "c.crt": PEM, "c.key": PEM, "tc.key": STATIC, "v2c.key": V2_CLIENT, "v2s.key": V2_SERVER}


def read_file(name):
    if name not in FILES:
        raise OSError(2, "No such file or directory")
    return FILES[name]


def _parse(text, server=False):
    return parse_config(text, "my.ovpn", read_file, server=server)


def test_tls_crypt_from_a_file_and_inline():
    assert _parse(CLIENT + "tls-crypt tc.key\n").tls_crypt == STATIC
    cfg = _parse(CLIENT + "<tls-crypt>\n" + STATIC + "</tls-crypt>\n")
    assert cfg.tls_crypt.strip() == STATIC.strip() and cfg.tls_auth is None and cfg.tls_crypt_v2 is None


def test_tls_crypt_v2_client_and_server_keys():
    assert _parse(CLIENT + "tls-crypt-v2 v2c.key\n").tls_crypt_v2 == V2_CLIENT
    assert _parse(CLIENT + "<tls-crypt-v2>\n" + V2_CLIENT + "</tls-crypt-v2>\n").tls_crypt_v2.strip() == V2_CLIENT.strip()
    cfg = _parse(SERVER + "tls-crypt-v2 v2s.key\n", server=True)
    assert cfg.tls_crypt_v2 == V2_SERVER and not cfg.tls_crypt_v2_force_cookie
    assert _parse(SERVER + "tls-crypt-v2 v2s.key force-cookie\n", server=True).tls_crypt_v2_force_cookie
    assert not _parse(SERVER + "tls-crypt-v2 v2s.key allow-noncookie\n", server=True).tls_crypt_v2_force_cookie


def test_errors_name_file_line_and_reason():
    e = raises(ConfigError, _parse, CLIENT + "tls-crypt-v2 v2s.key\n")  # the server's key on a client
    assert str(e).startswith("my.ovpn:6:") and "server key" in str(e)
    e = raises(ConfigError, _parse, SERVER + "tls-crypt-v2 v2c.key\n", True)
    assert str(e).startswith("my.ovpn:5:") and "client key" in str(e)
    e = raises(ConfigError, _parse, CLIENT + "tls-crypt v2c.key\n")
    assert "my.ovpn:6:" in str(e) and "static key" in str(e)
    e = raises(ConfigError, _parse, CLIENT + "tls-crypt tc.key 1\n")
    assert "key-direction" in str(e)
    e = raises(ConfigError, _parse, CLIENT + "tls-crypt-v2 v2c.key force-cookie\n")
    assert "my.ovpn:6:" in str(e)
    e = raises(ConfigError, _parse, CLIENT + "tls-crypt missing.key\n")
    assert "my.ovpn:6:" in str(e) and "missing.key" in str(e)
    e = raises(ConfigError, _parse, CLIENT + "<tls-crypt-v2>\n" + STATIC + "</tls-crypt-v2>\n")
    assert "my.ovpn:6:" in str(e)
    for d in ("tls-crypt-v2-verify /bin/true", "tls-crypt-v2-max-age 30"):
        e = raises(ConfigError, _parse, SERVER + d + "\n", True)
        assert str(e).startswith("my.ovpn:5: " + d.split()[0]), str(e)


def test_only_one_kind_of_control_channel_protection():
    e = raises(ConfigError, _parse, CLIENT + "tls-crypt tc.key\ntls-crypt-v2 v2c.key\n")
    assert "tls-auth, tls-crypt and tls-crypt-v2 exclude each other" in str(e)
    e = raises(ConfigError, _parse, CLIENT + "tls-auth tc.key 1\ntls-crypt tc.key\n")
    assert "exclude each other" in str(e)
    e = raises(ConfigError, _parse, SERVER + "tls-auth tc.key 0\ntls-crypt-v2 v2s.key\n", True)
    assert "exclude each other" in str(e)
