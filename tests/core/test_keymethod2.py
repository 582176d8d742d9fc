"""Key method 2 message: layout, round trips, OpenVPN's lengths, every refusal."""

from ovpnkx import keymethod2 as km
from ovpnkx import occ
from ovpnkx.errors import LocalProtocolError, RemoteProtocolError

from _support import load_json, raises, unhex

_KAT = load_json("kat_openvpn.json")


class _CountingEntropy:
    """Deterministic entropy that records each request."""

    def __init__(self):
        self.calls = []
        self.counter = 0

    def random_bytes(self, n):
        self.calls.append(n)
        out = bytes((self.counter + i) & 0xFF for i in range(n))
        self.counter += n
        return out


class _ShortEntropy:
    def random_bytes(self, n):
        return bytes(n - 1)


def _client_source():
    return km.KeySource(bytes(range(48)), bytes(range(100, 132)), bytes(range(200, 232)))


def _server_source():
    return km.KeySource(None, bytes(range(1, 33)), bytes(range(50, 82)))


def _client_msg(**kw):
    return km.KeyMethod2Message(_client_source(), kw.get("options", occ.options_string(True)),
                                kw.get("username"), kw.get("password"),
                                kw.get("peer_info", "IV_VER=0.1\nIV_PROTO=6\n"))


# --- layout ----------------------------------------------------------------------------

def test_client_message_exact_bytes():
    msg = km.KeyMethod2Message(_client_source(), "V4", None, None, "IV_PROTO=6\n")
    data = km.write_key_method2(msg, True)
    expected = (unhex("00000000 02") + bytes(range(48)) + bytes(range(100, 132)) + bytes(range(200, 232))
                + unhex("0003") + b"V4\x00" + unhex("0000 0000") + unhex("000c") + b"IV_PROTO=6\n\x00")
    assert data == expected


def test_server_message_exact_bytes_and_empty_strings():
    msg = km.KeyMethod2Message(_server_source(), "", "", None, None)
    data = km.write_key_method2(msg, False)
    # options "" -> 00 01 00 (write_string); username "" -> 00 01 00; None -> 00 00
    expected = (unhex("00000000 02") + bytes(range(1, 33)) + bytes(range(50, 82))
                + unhex("0001 00") + unhex("0001 00") + unhex("0000") + unhex("0000"))
    assert data == expected


def test_lengths_match_openvpn_messages():
    # The real 2.6.14 client and server key method 2 plaintext lengths, rebuilt from
    # the logged options strings and peer-info, with empty username/password (00 00).
    for v in _KAT["openvpn"]:
        c = km.KeyMethod2Message(km.KeySource(bytes(48), bytes(32), bytes(32)), v["client_options"],
                                 None, None, v["client_peer_info"])
        s = km.KeyMethod2Message(km.KeySource(None, bytes(32), bytes(32)), v["server_options"],
                                 None, None, v["server_peer_info"])
        assert len(km.write_key_method2(c, True)) == v["client_km2_len"], v["name"]
        assert len(km.write_key_method2(s, False)) == v["server_km2_len"], v["name"]


def test_openvpn_client_message_reads_back():
    v = _KAT["openvpn"][0]
    src = km.KeySource(unhex(v["client_pre_master"]), unhex(v["client_random1"]), unhex(v["client_random2"]))
    data = km.write_key_method2(km.KeyMethod2Message(src, v["client_options"], None, None,
                                                     v["client_peer_info"]), True)
    msg = km.read_key_method2(data, True)
    assert msg.key_source.pre_master == unhex(v["client_pre_master"])
    assert msg.key_source.random2 == unhex(v["client_random2"])
    info = km.parse_peer_info(msg.peer_info)
    assert info["IV_VER"] == "2.6.14"
    assert km.iv_proto(info) & km.IV_PROTO_TLS_KEY_EXPORT
    assert ",auth SHA1," in msg.options


# --- round trips --------------------------------------------------------------------------

def test_round_trip_client_variants():
    for username, password in ((None, None), ("alice", "s3cret"), ("", ""), ("ünï", None)):
        for peer_info in (None, "", "IV_VER=1\n", "IV_PLAT=x\n" * 100):
            msg = _client_msg(username=username, password=password, peer_info=peer_info)
            data = km.write_key_method2(msg, True)
            back = km.read_key_method2(data, True)
            assert back == msg, (username, password, peer_info)
            assert back.key_source.pre_master == bytes(range(48))


def test_round_trip_server_variants():
    for options in ("", "V4", occ.options_string(False, cipher="AES-256-GCM")):
        for peer_info in (None, "IV_CIPHERS=AES-256-GCM\nIV_PROTO=746\n"):
            msg = km.KeyMethod2Message(_server_source(), options, None, None, peer_info)
            back = km.read_key_method2(km.write_key_method2(msg, False), False)
            assert back == msg
            assert back.key_source.pre_master is None


def test_longest_allowed_fields_round_trip():
    msg = _client_msg(options="o" * 511, username="u" * 4095, password="p" * 4095, peer_info="i" * 65534)
    assert km.read_key_method2(km.write_key_method2(msg, True), True) == msg


def test_reader_accepts_zero_length_options_and_flag_bits():
    body = bytes(64) + unhex("0000 0000 0000 0000")
    msg = km.read_key_method2(unhex("00000000 02") + body, False)
    assert msg.options == "" and msg.username is None and msg.peer_info is None
    # only the low nibble is the key method (KEY_METHOD_MASK)
    assert km.read_key_method2(unhex("00000000 f2") + body, False) == msg
    # the leading uint32 is discarded unread, as OpenVPN does
    assert km.read_key_method2(unhex("deadbeef 02") + body, False) == msg


def test_reader_accepts_bytearray_and_memoryview():
    data = km.write_key_method2(_client_msg(), True)
    assert km.read_key_method2(bytearray(data), True) == _client_msg()
    assert km.read_key_method2(memoryview(data), True) == _client_msg()


# --- refusals on read ---------------------------------------------------------------------

def _valid_server():
    return km.write_key_method2(km.KeyMethod2Message(_server_source(), "V4", None, None, "IV_PROTO=2\n"), False)


def test_short_header():
    for n in range(5):
        e = raises(RemoteProtocolError, km.read_key_method2, bytes(n), True)
        assert "too short" in str(e)


def test_key_method_1_is_refused_by_name():
    data = bytearray(_valid_server())
    data[4] = 1
    e = raises(RemoteProtocolError, km.read_key_method2, bytes(data), False)
    assert "key method 1 is not supported" in str(e)


def test_other_key_methods_are_refused():
    for flags, method in ((0, 0), (3, 3), (0x0F, 15), (0x21, 1), (0xF0, 0)):
        data = bytearray(_valid_server())
        data[4] = flags
        e = raises(RemoteProtocolError, km.read_key_method2, bytes(data), False)
        assert ("key method %d is not supported" % method) in str(e)


def test_short_key_source():
    for role, n in ((True, 112), (False, 64)):
        for have in (0, 1, n - 1):
            data = unhex("00000000 02") + bytes(have)
            e = raises(RemoteProtocolError, km.read_key_method2, data, role)
            assert "key source too short" in str(e)


def test_client_message_needs_the_pre_master():
    # a server message read as the client's is 48 bytes short or garbled
    data = _valid_server()
    raises(RemoteProtocolError, km.read_key_method2, data, True)


def test_options_longer_than_512():
    head = unhex("00000000 02") + bytes(64)
    data = head + b"\x02\x01" + b"A" * 512 + b"\x00" + unhex("0000 0000 0000")
    e = raises(RemoteProtocolError, km.read_key_method2, data, False)
    assert "options" in str(e) and "512" in str(e)


def test_missing_nul_and_inner_nul():
    head = unhex("00000000 02") + bytes(64)
    e = raises(RemoteProtocolError, km.read_key_method2, head + b"\x00\x02V4" + bytes(6), False)
    assert "NUL" in str(e)
    e = raises(RemoteProtocolError, km.read_key_method2, head + b"\x00\x04V\x004\x00" + bytes(6), False)
    assert "NUL" in str(e)


def test_length_beyond_end():
    head = unhex("00000000 02") + bytes(64)
    for tail in (b"\x00\x10V4\x00", b"\x00\x01\x00\x00\x05ab\x00",
                 b"\x00\x01\x00\x00\x00\x00\x00\x00\x04ab\x00"):
        e = raises(RemoteProtocolError, km.read_key_method2, head + tail, False)
        assert "past the end" in str(e) or "ends before" in str(e)


def test_every_field_is_required():
    data = _valid_server()
    # cut at each field boundary after the key source
    for cut in (69, 69 + 5, 69 + 5 + 2, 69 + 5 + 4):
        e = raises(RemoteProtocolError, km.read_key_method2, data[:cut], False)
        assert "ends before" in str(e)


def test_trailing_bytes_are_refused():
    e = raises(RemoteProtocolError, km.read_key_method2, _valid_server() + b"\x00", False)
    assert "after the peer-info" in str(e)


def test_username_password_limit():
    head = unhex("00000000 02") + bytes(64) + b"\x00\x01\x00"
    long_user = b"\x10\x01" + b"u" * 4096 + b"\x00"
    raises(RemoteProtocolError, km.read_key_method2, head + long_user + unhex("0000 0000"), False)
    raises(RemoteProtocolError, km.read_key_method2, head + b"\x00\x00" + long_user + b"\x00\x00", False)


def test_invalid_utf8_is_remote_error():
    head = unhex("00000000 02") + bytes(64) + b"\x00\x01\x00\x00\x00\x00\x00"
    e = raises(RemoteProtocolError, km.read_key_method2, head + b"\x00\x03\xff\xfe\x00", False)
    assert "UTF-8" in str(e)
    # refused the same on both runtimes: surrogate, overlong, above U+10FFFF, truncated
    for bad in (b"\xed\xa0\x80", b"\xc0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80",
                b"\xf5\x80\x80\x80", b"\xe2\x82", b"\x80"):
        field = bytes([0, len(bad) + 1]) + bad + b"\x00"
        raises(RemoteProtocolError, km.read_key_method2, head + field, False)
    for good in ("\u00e9", "\u20ac", "\ud7ff", "\ue000", "\U0001f600", "\U0010ffff"):
        raw = good.encode("utf-8")
        field = bytes([0, len(raw) + 1]) + raw + b"\x00"
        assert km.read_key_method2(head + field, False).peer_info == good


def test_errors_and_reprs_do_not_show_key_material():
    data = bytearray(km.write_key_method2(_client_msg(), True))
    data[4] = 1
    e = raises(RemoteProtocolError, km.read_key_method2, bytes(data), True)
    assert str(e) == "key method 1 is not supported (flags byte 0x01), only key method 2"
    assert "not shown" in repr(_client_source())
    msg = _client_msg(username="alice", password="hunter2")
    assert "hunter2" not in repr(msg) and "alice" not in repr(msg)


def test_malformed_corpus_whole_and_every_prefix():
    corpus = load_json("malformed/keymethod2.json")
    total = 0
    for key, is_client in (("client_sender", True), ("server_sender", False)):
        assert len(corpus[key]) >= 30
        for entry in corpus[key]:
            data = unhex(entry)
            raises(RemoteProtocolError, km.read_key_method2, data, is_client)
            for n in range(len(data)):
                try:
                    km.read_key_method2(data[:n], is_client)
                except RemoteProtocolError:
                    pass
            total += 1
    assert total >= 60


def test_valid_messages_every_prefix_is_remote_error():
    for data, is_client in ((km.write_key_method2(_client_msg(username="a", password="b"), True), True),
                            (_valid_server(), False)):
        km.read_key_method2(data, is_client)
        for n in range(len(data)):
            raises(RemoteProtocolError, km.read_key_method2, data[:n], is_client)


def test_reader_needs_bytes():
    raises(LocalProtocolError, km.read_key_method2, 5, True)
    raises(LocalProtocolError, km.read_key_method2, "text", True)


# --- refusals on write ----------------------------------------------------------------------

def test_writer_checks_roles_and_limits():
    raises(LocalProtocolError, km.write_key_method2, _client_msg(), False)  # server with pre_master
    server = km.KeyMethod2Message(_server_source(), "V4")
    raises(LocalProtocolError, km.write_key_method2, server, True)  # client without pre_master
    raises(LocalProtocolError, km.write_key_method2, _client_msg(options="o" * 512), True)
    raises(LocalProtocolError, km.write_key_method2, _client_msg(username="u" * 4096), True)
    raises(LocalProtocolError, km.write_key_method2, _client_msg(password="a\x00b"), True)
    raises(LocalProtocolError, km.write_key_method2, _client_msg(peer_info=b"IV_X=1\n"), True)
    raises(LocalProtocolError, km.write_key_method2, _client_msg(peer_info="x" * 65535), True)


# --- key source ---------------------------------------------------------------------------------

def test_key_source_generate_uses_only_entropy_in_openvpn_order():
    ent = _CountingEntropy()
    c = km.KeySource.generate(ent, True)
    assert ent.calls == [48, 32, 32]
    assert c.pre_master == bytes(range(48))
    assert c.random1 == bytes(range(48, 80)) and c.random2 == bytes(range(80, 112))
    ent = _CountingEntropy()
    s = km.KeySource.generate(ent, False)
    assert ent.calls == [32, 32] and s.pre_master is None


def test_key_source_checks_lengths():
    raises(LocalProtocolError, km.KeySource.generate, _ShortEntropy(), True)
    raises(LocalProtocolError, km.KeySource, bytes(47), bytes(32), bytes(32))
    raises(LocalProtocolError, km.KeySource, None, bytes(33), bytes(32))
    raises(LocalProtocolError, km.KeySource, None, bytes(32), "x" * 32)


# --- options string and peer-info ------------------------------------------------------------------

def test_options_string_matches_openvpn():
    assert occ.options_string(True) == (
        "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-client")
    # the strings the real 2.6.14 peers sent in the KAT runs (a p2p server, a --pull client);
    # tests/core/test_options_string.py compares many more configs
    v = _KAT["openvpn"][0]
    assert occ.options_string(True, dev_type="null") == v["client_options"]
    assert occ.options_string(False, p2mp=False, dev_type="null") == v["server_options"]
    cbc = [x for x in _KAT["openvpn"] if x["name"] == "aes-256-cbc-sha512"][0]
    assert occ.options_string(True, dev_type="null", auth="SHA512") == cbc["client_options"]
    assert occ.options_string(False, key_direction=0, tls_auth=True).endswith(
        ",keydir 0,auth SHA1,keysize 128,tls-auth,key-method 2,tls-server")
    # anything else is announced all the same (a mismatch is only a warning to the peer)
    assert ",cipher RC4,auth SHA384,keysize 128," in occ.options_string(False, p2mp=False, cipher="RC4", auth="SHA384")


def test_peer_info_build_and_parse():
    text = km.peer_info_string([("IV_VER", "0.1"), ("IV_PLAT", "micropython"),
                                ("IV_CIPHERS", "AES-256-GCM:AES-128-GCM"),
                                ("IV_PROTO", km.IV_PROTO_DATA_V2 | km.IV_PROTO_REQUEST_PUSH), ("IV_MTU", 1500)])
    assert text == ("IV_VER=0.1\nIV_PLAT=micropython\nIV_CIPHERS=AES-256-GCM:AES-128-GCM\n"
                    "IV_PROTO=6\nIV_MTU=1500\n")
    info = km.parse_peer_info(text)
    assert info["IV_CIPHERS"] == "AES-256-GCM:AES-128-GCM"
    assert km.iv_proto(info) == 6
    raises(LocalProtocolError, km.peer_info_string, [("A=B", "1")])
    raises(LocalProtocolError, km.peer_info_string, [("IV_X", "1\n2")])
    raises(LocalProtocolError, km.peer_info_string, [("", "1")])


def test_parse_peer_info_is_lenient_like_openvpn():
    info = km.parse_peer_info("garbage\nIV_PROTO=14x\n=nokey\nIV_A=1\nIV_A=2\nIV_B=x=y")
    assert info == {"IV_PROTO": "14x", "IV_A": "2", "IV_B": "x=y"}
    assert km.iv_proto(info) == 14
    assert km.iv_proto({}) == 0
    assert km.iv_proto({"IV_PROTO": "-3"}) == 0
    assert km.parse_peer_info(None) == {}


def test_iv_proto_bits():
    bits = [km.IV_PROTO_DATA_V2, km.IV_PROTO_REQUEST_PUSH, km.IV_PROTO_TLS_KEY_EXPORT,
            km.IV_PROTO_AUTH_PENDING_KW, km.IV_PROTO_NCP_P2P, km.IV_PROTO_DNS_OPTION,
            km.IV_PROTO_CC_EXIT_NOTIFY, km.IV_PROTO_AUTH_FAIL_TEMP, km.IV_PROTO_DYN_TLS_CRYPT]
    assert bits == [2, 4, 8, 16, 32, 64, 128, 256, 512]
    # what the real 2.6.14 peers announced in the KAT runs
    v = _KAT["openvpn"][0]
    client = km.iv_proto(km.parse_peer_info(v["client_peer_info"]))
    server = km.iv_proto(km.parse_peer_info(v["server_peer_info"]))
    assert not client & km.IV_PROTO_NCP_P2P  # --pull: why the PRF was used
    assert server & km.IV_PROTO_NCP_P2P and server & km.IV_PROTO_TLS_KEY_EXPORT
