"""The device application on a simulated Pico 2 W (RP2350, Wi-Fi) to a real openvpn, and a
Pico W (RP2040, Wi-Fi) renegotiating at its own heap.

Its RTC starts at 2021-01-01: the date comes from an NTP responder on 127.0.0.1.

The sim's Wi-Fi is the host's loopback (127.0.0.1 only). The board is flashed once
(`tools/flash.py`, as `make flash`); each test writes /ovpnkx.json and
/client.ovpn, soft-resets the board and reads its console. The server at verb 9
proves the keys: it logs the device's ping decrypted, and no decrypt error.
"""

import socket

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki
from ovpnkx_host.run import soft_reset_into_main
from ovpnkx_sim.boards import load_board

from _device import NtpResponder, flash_tool, last, once_more_if_out_of_memory, put_settings, run_main, start_sim

READY = r"UDPv4 link local|Listening for incoming TCP connection|TCPv4_SERVER link local"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def pico2w():
    sim = start_sim("--board", "rp2350w", "--frozen", "")
    try:
        flash_tool.flash("rp2350w", sim.info["repl"], None, "udp", {"reconnect": False, "ntp": NtpResponder.shared().server},
                         reset=False)
        yield sim.info
    finally:
        sim.stop()


@pytest.mark.parametrize("mode,proto", [("p2mp", "udp"), ("p2p", "tcp")])
def test_wifi_to_openvpn(pico2w, pki, tmp_path, mode, proto):
    if mode == "p2mp" and not ov.have_tun():
        pytest.skip("a p2mp openvpn server needs /dev/net/tun")
    port = ov.free_port()
    args = ov.server_args(pki, port, mode=mode, proto=proto, tls_auth=True, verb=9)
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(READY)
        # the transport comes from ovpnkx.json: the .ovpn says udp, the device uses `proto`
        put_settings(pico2w, tmp_path, {"transport": proto, "pings": 1, "reconnect": False, "ntp": NtpResponder.shared().server},
                     ov.client_config(pki, port, mode=mode, proto="udp", tls_auth=True))
        events, _ = run_main(pico2w)
        server.wait_for(ov.PING_DECRYPTED.pattern, 5)
        log = server.log()
    assert events[0] == dict(events[0], event="boot", board="rp2350w", transport=proto)
    assert last(events, "date")["source"] in ("ntp", "rtc")
    assert last(events, "entropy")["state"] == "ok"
    result = last(events, "result")
    assert result["ok"], (result, log[-3000:])
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0
    assert last(events, "connecting")["remote"] == "127.0.0.1:%d" % port
    assert server.key_errors() == []
    assert ov.PING_DECRYPTED.search(log), "openvpn did not decrypt the device's ping"
    print("wi-fi %s/%s: keys after %d ms" % (mode, proto, last(events, "keys")["at_ms"]))


def test_reconnects_with_backoff(pico2w, pki, tmp_path):
    """Nothing listens at first: the device retries after 1 s, then 2 s, 2 s, ...;
    once the server is up the next attempt completes the exchange. Over TCP, where a
    refused connection ends the attempt (over UDP an ICMP port unreachable does not:
    the session retries within its hand-window, as openvpn does)."""
    port = ov.free_port(socket.SOCK_STREAM)
    put_settings(pico2w, tmp_path, {"transport": "tcp", "pings": 1, "reconnect": True, "backoff_s": [1, 2],
                                    "ntp": NtpResponder.shared().server},
                 ov.client_config(pki, port, mode="p2p", proto="tcp", tls_auth=True))
    from _device import Console

    con = Console(pico2w)
    try:
        soft_reset_into_main(con.port)
        for _ in range(100):
            con.read_until(("reconnect",), 0.1)
            if len([e for e in con.events if e["event"] == "reconnect"]) >= 2:
                break
        failed = last(con.events, "result")
        assert not failed["ok"] and "refused" in failed["reason"]
        args = ov.server_args(pki, port, mode="p2p", proto="tcp", tls_auth=True, verb=4)
        with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
            assert server.wait_for(READY)
            end_ok = None
            for _ in range(200):
                con.read_until(("result",), 0.1)
                oks = [e for e in con.events if e["event"] == "result" and e["ok"]]
                if oks:
                    end_ok = oks[0]
                    break
            assert end_ok is not None, con.events
            assert server.key_errors() == []
    finally:
        con.port.write(b"\x03")  # stop main.py if it still runs
        con.close()
    delays = [e["in_s"] for e in con.events if e["event"] == "reconnect"]
    assert delays[:2] == [1, 2] and all(d == 2 for d in delays[2:]), delays


def test_a_pico_w_renegotiates_over_wifi_at_its_own_heap(pki, tmp_path):
    """The Pico W (200 KiB, code at the chip's scale) over UDP to openvpn 2.6 with reneg-sec 3:
    each renegotiation frees the old key's TLS session right before the new one's and checks
    the known chain's dates only, so the new keys come and openvpn decrypts the pings sent
    under them. A run that ran out of memory, and nothing else, is run once more (the new
    session's 16 KB buffer needs a free piece of that size: test_device_serial_link's
    renegotiation test says why)."""
    events, server, log = once_more_if_out_of_memory(
        lambda attempt: _renegotiating_over_udp(pki, tmp_path / str(attempt)), "renegotiations over UDP at the stock heap")
    result = last(events, "result")
    assert result["ok"] and result["pings_received"] >= 6, (result, log[-3000:])
    assert [e["key_id"] for e in events if e["event"] == "keys"][:3] == [0, 1, 2]
    assert server.key_errors() == [] and ov.PING_DECRYPTED.search(log)


def _renegotiating_over_udp(pki, tmp_path) -> tuple:
    """One run of main.py with reneg-sec 3 on a fresh simulated Pico W: (events, openvpn, log)."""
    tmp_path.mkdir()
    board = load_board("rp2040w")
    settings = flash_tool.settings_for(board, "udp", None, {"pings": 6, "reconnect": False,
                                                             "ntp": NtpResponder.shared().server})
    assert settings["compact_gcm"] is True  # what `make flash` gives a Pico W
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        flash_tool.flash("rp2040w", sim.info["repl"], None, "udp", settings, reset=False)
        port = ov.free_port()
        args = ov.server_args(pki, port, mode="p2p", proto="udp", tls_auth=True, verb=9)
        with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
            assert server.wait_for(READY)
            put_settings(sim.info, tmp_path, settings,
                         ov.client_config(pki, port, mode="p2p", proto="udp", tls_auth=True) + "reneg-sec 3\n")
            events, _ = run_main(sim.info)
            server.wait_for(ov.PING_DECRYPTED.pattern, 5)
            log = server.log()
    finally:
        sim.stop()
    return events, server, log
