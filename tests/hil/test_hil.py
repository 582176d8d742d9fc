"""Hardware in the loop: flash, boot, key exchange over serial and Wi-Fi, reset, bad config.

One suite for a simulated board (``--device sim:BOARD``, the default inside `make
test`) and a real one (``--device /dev/ttyACM0 --board rp2040``, `make hil`); see
conftest.py for the options. What a board cannot do (Wi-Fi on a plain Pico; a reset
from the console while a session holds the REPL port) is skipped with the reason.
Real servers (openvpn, `ovpnkx serve`) listen on 127.0.0.1 only, or on ``--host-ip``
for a real board's Wi-Fi. Figures are printed, never asserted.
"""

import subprocess
import time

import pytest

from ovpnkx_host import openvpn as ov

from _device import OVPNKX, Proc, last, mp
from _hil import LOOPBACK, on_host, serial_session, serve_config

# the agreement checks compare the two sides' key2 fingerprints, printed only where asked for
BASE = {"transport": "serial", "pings": 1, "reconnect": False, "entropy": "board", "fingerprint": True}
OPENVPN_READY = r"UDPv4 link local|Listening for incoming TCP connection|TCPv4_SERVER link local"


@pytest.fixture(scope="session")
def flashed(board, pki, tmp_path_factory):
    """The board flashed once with tools/flash.py (`make flash`): a client config whose
    certificates are files beside it, so flash copies them and rewrites the paths."""
    work = tmp_path_factory.mktemp("hil-flash")
    conf = work / "client.ovpn"
    conf.write_text(ov.client_config(pki, 1194, mode="p2mp", tls_auth=True, inline=False))
    report = board.flash(str(conf), "serial", dict(BASE), str(work / "staged"))
    print("flash %s: %s s, code for %s (%s)" % (board.spec, report["seconds"], report["arch"], report["arch_from"]))
    return report


def _p2mp_client(pki) -> str:
    """A client config for `ovpnkx serve` (p2mp); over serial its remote is not used."""
    return ov.client_config(pki, 1194, mode="p2mp", tls_auth=True)


def _fingerprints(host_events: list) -> list:
    return [e["fingerprint"] for e in host_events if e["event"] == "keys"]


def test_flash(board, flashed):
    out = mp(board.info, "exec", "import os, ovpnkx, ovpnkx_device.app, noise\n"
             "print(ovpnkx.__file__, ovpnkx_device.app.__file__)\nprint(sorted(os.listdir('/')))").stdout
    first, listing = out.strip().splitlines()[-2:]
    # a board with ovpnkx frozen into its firmware imports that copy first
    assert first.split() in (["/lib/ovpnkx/__init__.mpy", "/lib/ovpnkx_device/app.mpy"],
                             [".frozen/ovpnkx/__init__.py", ".frozen/ovpnkx_device/app.py"]), first
    for name in ("main.py", "client.ovpn", "ovpnkx.json", "ca.crt", "client.crt", "client.key", "ta.key", "lib"):
        assert "'%s'" % name in listing, listing
    assert flashed["settings"]["board"] == board.name
    assert flashed["settings"]["data_uart"] == board.profile.get("data_uart")


def test_boot_and_key_exchange_with_serve_serial(board, flashed, pki, tmp_path):
    """main.py boots, passes its entropy start-up tests and completes the exchange with
    `ovpnkx serve --serial` (the CPython peer); both sides show the same key fingerprint."""
    device, served, server = serial_session(
        board, tmp_path, dict(BASE, pings=2), _p2mp_client(pki),
        ["serve", "--config", serve_config(tmp_path, pki, LOOPBACK), "--key-fingerprint"], "ovpnkx serve")
    boot = device[0] if device else {}
    assert boot.get("event") == "boot" and boot["board"] == board.name and boot["transport"] == "serial", device
    assert last(device, "entropy")["state"] == "ok"
    result = last(device, "result")
    assert result["ok"], (result, device, server.err)
    assert result["pings_received"] >= 2 and result["pings_sent"] >= 2 and result["decrypt_errors"] == 0
    keys = last(device, "keys")
    assert _fingerprints(served) == [keys["fingerprint"]]
    assert last(device, "connecting")["remote"] == ("serial:repl" if board.via == "repl"
                                                   else "serial:uart%d" % board.profile["data_uart"]["id"])
    stats = last(served, "serial_stats")
    if board.via == "uart":  # over the REPL port the console's text between frames counts as cobs errors
        assert stats["frame_errors"] == {"crc": 0, "cobs": 0, "oversize": 0}
    print("%s serial/%s: keys after %d ms, %d B to the host, %d B to the device"
          % (board.spec, board.via, keys["at_ms"], stats["bytes_in"], stats["bytes_out"]))


@pytest.mark.parametrize("mode,proto", [("p2p", "udp"), ("p2mp", "tcp")])
def test_serial_through_relay_to_openvpn(board, flashed, pki, tmp_path, mode, proto):
    """The device's packets cross `ovpnkx relay` to a real openvpn on 127.0.0.1, which
    decrypts the device's ping with the keys both derived."""
    if mode == "p2mp" and not ov.have_tun():
        pytest.skip("a p2mp openvpn server needs /dev/net/tun")
    port = ov.free_port()
    args = ov.server_args(pki, port, mode=mode, proto=proto, tls_auth=True, verb=9)
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(OPENVPN_READY)
        device, relayed, relay = serial_session(
            board, tmp_path, dict(BASE), ov.client_config(pki, port, mode=mode, proto=proto, tls_auth=True),
            ["relay", "--remote", LOOPBACK, str(port), "--proto", proto], "ovpnkx relay",
            settle=lambda: server.wait_for(ov.PING_DECRYPTED.pattern, 5))
        log = server.log()
    result = last(device, "result")
    assert result["ok"], (result, device, log[-3000:], relay.err)
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0
    assert server.key_errors() == []
    assert ov.PING_DECRYPTED.search(log), "openvpn did not decrypt the device's ping"
    assert last(relayed, "stats")["sessions"] == 1
    print("%s relay %s/%s: keys after %d ms" % (board.spec, mode, proto, last(device, "keys")["at_ms"]))


@pytest.mark.parametrize("mode,proto", [("p2mp", "udp"), ("p2p", "tcp")])
def test_wifi_to_openvpn(board, flashed, pki, tmp_path, mode, proto):
    """Over Wi-Fi (UDP and TCP) straight to a real openvpn."""
    reason = board.wifi_skip_reason()
    if reason:
        pytest.skip(reason)
    if mode == "p2mp" and not ov.have_tun():
        pytest.skip("a p2mp openvpn server needs /dev/net/tun")
    port = ov.free_port()
    args = on_host(ov.server_args(pki, port, mode=mode, proto=proto, tls_auth=True, verb=9), board.host_ip)
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(OPENVPN_READY)
        # the transport comes from ovpnkx.json: the .ovpn says udp, the device uses `proto`
        ovpn = on_host(ov.client_config(pki, port, mode=mode, proto="udp", tls_auth=True), board.host_ip)
        board.put(tmp_path, dict(BASE, transport=proto, **board.wifi_settings()), ovpn)
        con = board.console_main()
        try:
            con.read_until(("result", "config_error"), 40)
        finally:
            con.close()
        events = con.events
        server.wait_for(ov.PING_DECRYPTED.pattern, 5)
        log = server.log()
    assert events and events[0].get("event") == "boot" and events[0]["transport"] == proto, con.tail()
    assert "result" in [e["event"] for e in events], con.tail()
    result = last(events, "result")
    assert result["ok"], (result, events, log[-3000:])
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0
    assert last(events, "connecting")["remote"] == "%s:%d" % (board.host_ip, port)
    assert server.key_errors() == []
    assert ov.PING_DECRYPTED.search(log), "openvpn did not decrypt the device's ping"
    print("%s wi-fi %s/%s: keys after %d ms" % (board.spec, mode, proto, last(events, "keys")["at_ms"]))


def test_tls_crypt_v2_with_serve_serial(board, flashed, pki, tmp_path):
    """tls-crypt-v2 on the board: keys made by openvpn --genkey, the client key inline in
    the device's config, the server key in `ovpnkx serve --serial`'s; AES-256-CTR runs
    over cryptolib's ECB on stock firmware."""
    server_key, client_key = str(tmp_path / "v2s.key"), str(tmp_path / "v2c.key")
    subprocess.run([ov.openvpn_binary(), "--genkey", "tls-crypt-v2-server", server_key], check=True)
    subprocess.run([ov.openvpn_binary(), "--tls-crypt-v2", server_key, "--genkey", "tls-crypt-v2-client",
                    client_key], check=True)
    conf = serve_config(tmp_path, pki, LOOPBACK)
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("tls-auth %s 0" % pki.tls_auth, "tls-crypt-v2 %s" % server_key))
    with open(client_key) as f:
        ovpn = ov.client_config(pki, 1194, mode="p2mp") + "<tls-crypt-v2>\n%s</tls-crypt-v2>\n" % f.read()
    device, served, server = serial_session(board, tmp_path, dict(BASE), ovpn,
                                            ["serve", "--config", conf, "--key-fingerprint"], "ovpnkx serve")
    result = last(device, "result")
    assert result["ok"], (result, device, server.err)
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0 and result["dropped"] == 0
    assert last(device, "connecting")["tls_wrap"] == "tls-crypt-v2"
    assert _fingerprints(served) == [last(device, "keys")["fingerprint"]]
    print("%s serial tls-crypt-v2: keys after %d ms" % (board.spec, last(device, "keys")["at_ms"]))


def test_reset_in_the_middle_of_a_handshake_recovers(board, flashed, pki, tmp_path):
    """A hard reset while TLS is under way: the next boot completes the exchange with a
    fresh session, and the server derives the same keys as the device's second try.

    On the sim the data UART is slowed to 9600 baud (the TLS flights then take
    seconds) and the reset comes 0.5 s after S_START; on a real board it comes at
    S_START from the console (Ctrl-C, machine.reset()), which needs the data UART."""
    if board.data_port is None:
        pytest.skip("needs the data UART (--data-port): during a session over the REPL port "
                    "Ctrl-C is off, so the host cannot reset the board from its console")
    board.put(tmp_path, dict(BASE), _p2mp_client(pki), via="uart")
    server = Proc([OVPNKX, "serve", "--config", serve_config(tmp_path, pki, LOOPBACK), "--serial",
                   board.data_port, "--json", "--key-fingerprint"], "ovpnkx serve")
    slowed = board.set_baud(9600)
    con = board.console_main()
    try:
        assert con.wait(lambda e: e.get("state") == "S_START", 20), con.tail()
        if slowed:  # at 9600 baud the TLS flights take seconds: well inside them
            time.sleep(0.5)
        con.wait(lambda e: False, 0.01)  # read what has arrived
        before = list(con.events)
        boots = board.boots()
        board.hard_reset()
        if slowed:
            board.set_baud(115200)
        con = board.reopen_console(con)
        assert con.wait(lambda e: e.get("event") in ("result", "config_error") and e not in before, 40), con.tail()
    finally:
        con.close()
        if slowed:
            board.set_baud(115200)
        served = server.stop()
    assert "keys" not in [e["event"] for e in before], "the handshake ended before the reset: it proves nothing"
    assert [e["event"] for e in before].count("boot") == 1
    after = con.events[len(before):]
    if board.is_sim:
        assert board.boots() == boots + 1
        assert after[0]["event"] == "boot", after
    result = last(after, "result")
    assert result["ok"], (result, "\n".join(map(str, served)), server.err)
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0
    sessions = [e for e in served if e["event"] == "session"]
    assert len(sessions) == 2, served  # the reset's new session id opened a fresh one
    keys = [e["fingerprint"] for e in after if e["event"] == "keys"]
    assert len(_fingerprints(served)) == 1, served
    if board.is_sim:  # its console never goes away: the device must have printed its keys
        assert keys, "the device printed no keys line after the reset: %s" % after
    if keys:
        assert keys == _fingerprints(served), (keys, _fingerprints(served))
    else:  # a real USB port that re-enumerates loses the lines printed before it is back
        print("%s: the keys line was lost with the console; the result line says ok" % board.spec)
    print("%s reset after %s; the next boot's session: %s"
          % (board.spec, [e.get("state") for e in before if e["event"] == "state"][-1],
             "keys after %d ms" % last(after, "keys")["at_ms"] if keys else result["reason"]))


def test_wrong_config_is_reported_on_the_console(board, flashed, tmp_path):
    """A bad /ovpnkx.json and a .ovpn naming a missing file: one config_error line each,
    and no session is tried."""
    for settings, ovpn, expected in [
            (dict(BASE, transport="carrier-pigeon"), None,
             'transport must be "serial", "udp" or "tcp", not \'carrier-pigeon\''),
            (dict(BASE), "client\nremote 127.0.0.1 1194\nca missing.crt\ncert c\nkey k\n",
             "cannot read /missing.crt (named in /client.ovpn)")]:
        board.put(tmp_path, settings, ovpn)
        con = board.console_main()
        try:
            con.read_until(("config_error", "result"), 20)
        finally:
            con.close()
        assert [e["event"] for e in con.events] == ["boot", "config_error"], con.tail()
        assert con.events[1]["reason"] == expected
