"""Key lifetime: reneg-sec (max [min]), reneg-bytes, reneg-pkts, packet-id wrap, transition-window,
on both runtimes with their own TLS engines (issue 9 item 10)."""

from ovpnkx import datachannel as dcmod
from ovpnkx.errors import LocalProtocolError

from _sessions import Pair, client_config, kinds, server_config
from _support import raises


def _keys(pair, side):
    return [(e.key_id, e.at_ms) for e in kinds(pair.events[side], "keys")]


def _renegs(pair, side):
    return [(e.reason, e.at_ms) for e in kinds(pair.events[side], "renegotiate")]


def test_client_reneg_sec_starts_a_soft_reset_and_data_flows_after_it():
    pair = Pair(client_config(reneg_sec=5), server_config(reneg_sec=0))
    assert pair.pings_both_ways(1)
    first = _keys(pair, "client")[0][1]
    assert pair.run_until(lambda: len(_keys(pair, "client")) >= 2 and len(_keys(pair, "server")) >= 2)
    assert _renegs(pair, "client")[0] == ("reneg-sec 5", first + 5000)
    assert _renegs(pair, "server") == []
    assert [k for k, _ in _keys(pair, "server")] == [0, 1]
    assert pair.pings_both_ways(2)  # both sides decrypt under the new key
    assert pair.client.primary == pair.server.primary == 1
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0


def test_server_reneg_sec_is_drawn_between_min_and_max():
    times = set()
    for seed in (b"a", b"b", b"c"):
        pair = Pair(client_config(reneg_sec=0), server_config(reneg_sec=(20, 10)), seed=seed)
        assert pair.run_until(lambda: _renegs(pair, "server") != [], limit_ms=40000)
        (reason, at), = _renegs(pair, "server")
        after = at - _keys(pair, "server")[0][1]
        assert 10000 < after <= 20000 and reason == "reneg-sec %d" % (after // 1000), (reason, after)
        times.add(after)
    assert len(times) > 1  # randomised per session (openvpn 2.6)
    # a server's default min is 90 % of max; a client's is max
    assert server_config(reneg_sec=100).reneg_sec_min == 90
    assert client_config(reneg_sec=100).reneg_sec_min == 100


def test_reneg_pkts_and_reneg_bytes():
    pair = Pair(client_config(reneg_sec=0, reneg_pkts=6), server_config(reneg_sec=0))
    assert pair.run_until(lambda: _renegs(pair, "client") != [])
    assert _renegs(pair, "client")[0][0] == "reneg-pkts 6"
    assert pair.client.multi.data[0].n_packets >= 6
    assert pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    pair = Pair(client_config(reneg_sec=0), server_config(reneg_sec=0, reneg_bytes=200))
    assert pair.run_until(lambda: _renegs(pair, "server") != [])
    assert _renegs(pair, "server")[0][0] == "reneg-bytes 200"
    assert pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    assert pair.pings_both_ways(1)


def test_packet_id_close_to_wrapping_renegotiates():
    pair = Pair(client_config(reneg_sec=0), server_config(reneg_sec=0))
    assert pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    pair.client.multi.data[0]._send_id = dcmod.PACKET_ID_WRAP_TRIGGER  # as after 4.27e9 packets
    assert pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    assert _renegs(pair, "client")[0][0] == "packet-id close to wrapping"
    assert pair.pings_both_ways(1)


def test_lame_duck_dies_after_the_transition_window():
    pair = Pair(client_config(reneg_sec=4, tran_window_ms=3000), server_config(reneg_sec=0))
    assert pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    started = _renegs(pair, "client")[0][1]
    assert 0 in pair.client.multi.data  # the lame duck still decrypts
    assert pair.run_until(lambda: kinds(pair.events["client"], "retired") != [])
    retired = kinds(pair.events["client"], "retired")[0]
    assert retired.key_id == 0 and retired.at_ms == started + 3000
    assert 0 not in pair.client.multi.data and 0 not in pair.client.channels
    assert 0 in pair.server.multi.data  # the server's tran-window is the default 3600 s
    assert pair.pings_both_ways(1)


def test_key_lifetime_settings_are_checked():
    raises(LocalProtocolError, client_config, reneg_sec=-1)
    raises(LocalProtocolError, client_config, reneg_sec=(10, 20))
    raises(LocalProtocolError, client_config, reneg_sec=(10,))
    raises(LocalProtocolError, client_config, reneg_bytes=-5)
    raises(LocalProtocolError, client_config, replay_window=16)
    raises(LocalProtocolError, client_config, replay_time_s=0)
    c = client_config(reneg_sec=[60, 30])
    assert (c.reneg_sec_max, c.reneg_sec_min) == (60, 30)


class _Cfg:
    pass


def test_key_lifetime_options_read_what_a_config_has():
    from ovpnkx.lifetime import key_lifetime_options

    assert key_lifetime_options(_Cfg()) == {}  # a config without these directives: the defaults
    c = _Cfg()
    c.reneg_sec, c.reneg_bytes, c.reneg_pkts, c.tran_window, c.replay_window = (60, 30), 1000, 0, 90, (128, 30)
    assert key_lifetime_options(c) == {"reneg_sec": (60, 30), "reneg_bytes": 1000, "reneg_pkts": 0,
                                       "tran_window_ms": 90000, "replay_window": 128, "replay_time_s": 30}
    c = _Cfg()
    c.reneg_sec, c.replay_window = 120, 64
    assert key_lifetime_options(c) == {"reneg_sec": 120, "replay_window": 64}
    c.reneg_sec = (120, None)
    assert key_lifetime_options(c)["reneg_sec"] == 120


def test_runner_passes_the_config_lifetime_to_the_session():
    from ovpnkx.config import parse_config
    from ovpnkx_device.session_options import session_config

    from _sessions import read
    from _support import crypto_backend

    text = "client\nremote 127.0.0.1 1194 udp\n"
    for tag, name in (("ca", "ca.crt"), ("cert", "client.crt"), ("key", "client.key"), ("tls-auth", "ta.key")):
        text += "<%s>\n%s</%s>\n" % (tag, read(name).decode(), tag)
    cfg = parse_config(text + "key-direction 1\n", "client.ovpn")
    cfg.reneg_sec, cfg.reneg_pkts, cfg.tran_window, cfg.replay_window = 30, 500, 10, (256, 20)
    scfg = session_config(cfg, crypto_backend(), False, "test")
    assert (scfg.reneg_sec_max, scfg.reneg_sec_min, scfg.reneg_pkts, scfg.tran_window_ms) == (30, 30, 500, 10000)
    assert (scfg.replay_window, scfg.replay_time_s) == (256, 20)
    assert scfg.tls_auth._rec.seq_backtrack == 256 and scfg.tls_auth._rec.time_backtrack == 20


def test_a_transition_window_shorter_than_the_handshake_keeps_the_only_key():
    # the new key is not ready when the old one's window ends: the old key keeps encrypting,
    # and the session's timer does not point into the past (a caller would spin)
    pair = Pair(client_config(reneg_sec=4, tran_window_ms=1), server_config(reneg_sec=0))
    assert pair.run_until(lambda: pair.client.data_ready and pair.server.data_ready)
    c = pair.client
    at = _keys(pair, "client")[0][1] + 4000
    c.packets_to_send(at)  # the soft reset goes out; the server hears nothing of it
    assert kinds(c.events(), "renegotiate")
    c.packets_to_send(at + 10)
    assert c.primary == 0 and c.data_ready
    assert c.get_timer() > at + 10
    c.send_ping()
    assert c.packets_to_send(at + 10)  # still encrypts with key 0


def test_the_key_exchange_code_leaves_with_the_keys_and_comes_back_for_a_renegotiation():
    # a board's heap holds the session's code: the PRF, the key method 2 wire code and push are
    # dropped once a key_state has its keys (MicroPython; CPython keeps its modules)
    import sys

    later = ("ovpnkx.prf", "ovpnkx.keymethod2", "ovpnkx.push")
    pair = Pair(client_config(reneg_sec=5), server_config(reneg_sec=0))
    assert pair.pings_both_ways(1)
    gone = [m for m in later if m not in sys.modules]
    assert gone == (list(later) if sys.implementation.name == "micropython" else []), gone
    assert pair.run_until(lambda: len(_keys(pair, "client")) >= 2 and len(_keys(pair, "server")) >= 2)
    assert pair.pings_both_ways(2)  # loaded again for key_id 1, and the new keys work
    assert pair.client.primary == pair.server.primary == 1


def test_a_renegotiation_retires_the_lame_duck_first_as_openvpn_does():
    # ssl.c key_state_soft_reset: the lame duck is freed when a renegotiation starts, so a
    # session never holds more than two key_states (and TLS engines), whatever tran-window is
    pair = Pair(client_config(reneg_sec=3), server_config(reneg_sec=0))
    most = {"client": 0, "server": 0}

    def done():
        most["client"] = max(most["client"], len(pair.client.multi.channels))
        most["server"] = max(most["server"], len(pair.server.multi.channels))
        return pair.client.primary == 2 and pair.server.primary == 2

    assert pair.run_until(done, max_ms=50)
    assert most == {"client": 2, "server": 2}
    second = _renegs(pair, "client")[1][1]
    retired = [(e.key_id, e.at_ms, e.reason) for e in kinds(pair.events["client"], "retired")]
    assert retired == [(0, second, "renegotiation started")]
    assert sorted(pair.client.multi.data) == [1, 2]  # the previous key still decrypts, as lame duck
    assert pair.pings_both_ways(1)


def test_a_board_frees_the_current_keys_tls_engine_when_a_renegotiation_starts():
    # release_superseded_tls (a board's heap holds one mbedTLS session): the current key's
    # engine is freed when the new handshake starts, right before the new engine starts (its
    # buffers take the freed place); the old key's data channel works on, a control packet
    # on its key_state is acked and dropped
    pair = Pair(client_config(release_superseded_tls="tls_start"), server_config(reneg_sec=0))
    multi = pair.client.multi
    assert pair.run_until(lambda: pair.client.primary == 0 and pair.server.primary == 0)
    pair.client.renegotiate(pair.now)  # the soft reset is queued, not yet acked
    old, new = multi.channels[0], multi.channels[1]
    assert old.tls is not None and not new.tls_started
    freed_first = []
    start = new.tls.start

    def recording_start():
        freed_first.append(old.tls is None)
        start()

    new.tls.start = recording_start
    assert pair.run_until(lambda: new.tls_started)
    assert freed_first == [True]
    assert pair.server.multi.channels[0].tls is not None  # the server keeps its own (not asked)
    assert pair.pings_both_ways(1)  # still under key 0 while key 1 is negotiated, then under key 1
    assert pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    assert pair.pings_both_ways(2)
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0


def test_where_mbedtls_has_its_own_heap_a_board_frees_the_current_engine_before_the_reseed():
    # release_superseded_tls "soft_reset" (the ESP32: mbedTLS allocates outside the GC heap, so
    # no 16 KB block waits for the freed place): the current key's engine goes at the soft
    # reset itself, before the new key_state's reseed loads the noise side into the heap
    pair = Pair(client_config(release_superseded_tls="soft_reset"), server_config(reneg_sec=0))
    multi = pair.client.multi
    assert pair.run_until(lambda: pair.client.primary == 0 and pair.server.primary == 0)
    old = multi.channels[0]
    entropy = pair.client.entropy
    reseed = entropy.reseed
    freed_first = []

    def recording_reseed():
        freed_first.append(old.tls is None)
        reseed()

    entropy.reseed = recording_reseed
    pair.client.renegotiate(pair.now)
    assert freed_first == [True] and old.tls is None
    assert pair.pings_both_ways(1)  # the old key's data channel works on
    assert pair.run_until(lambda: pair.client.primary == 1 and pair.server.primary == 1)
    assert pair.pings_both_ways(2)
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0


def test_an_unknown_moment_to_free_the_superseded_engine_is_refused():
    msg = str(raises(LocalProtocolError, client_config, release_superseded_tls="yes"))
    assert "release_superseded_tls" in msg and "'yes'" in msg
