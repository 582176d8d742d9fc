"""The device application on a simulated Pico (RP2040, no Wi-Fi) over its serial line.

The board is flashed once with `tools/flash.py` (what `make flash` runs) and the
sim is started with ``--frozen ''``, so everything imported comes from the flash
as on a board with stock MicroPython. Each test writes /ovpnkx.json (and maybe
/client.ovpn), soft-resets the board and reads its console (`OVPNKX` lines):
main.py runs the key exchange over the sim's uart against `ovpnkx serve
--serial`, or through `ovpnkx relay` against a real openvpn on 127.0.0.1.
Figures (handshake time, bytes on the wire) are printed, never asserted.
"""


import ast
import re

import pytest

from ovpnkx_host import openvpn as ov
from ovpnkx_host.pki import make_pki
from ovpnkx_sim.control import request

from _device import (OVPNKX, Proc, allocation_counter, flash_tool, last, mp, once_more_if_out_of_memory, put_settings,
                     run_main, start_sim)

# fingerprint: the agreement check compares the two sides' key fingerprints, printed only where asked for
BASE = {"transport": "serial", "pings": 2, "reconnect": False, "entropy": "board", "compact_gcm": True,  # as make flash writes it below 256 KiB of heap
        "fingerprint": True}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def pico(pki, tmp_path_factory):
    sim = start_sim("--board", "rp2040w", "--frozen", "")
    try:
        conf = tmp_path_factory.mktemp("conf") / "client.ovpn"
        # files beside the config, not inline: flash copies them and rewrites the paths
        conf.write_text(ov.client_config(pki, 1194, mode="p2mp", tls_auth=True, inline=False))
        report = flash_tool.flash("rp2040w", sim.info["repl"], str(conf), "serial", dict(BASE), reset=False)
        print("flash: %s s, native code for %s (%s)" % (report["seconds"], report["arch"], report["arch_from"]))
        sim.info["flash_report"] = report
        yield sim.info
    finally:
        sim.stop()


# modules a client needs once (at boot, or per TLS handshake), not while its session runs
ONCE = ("ovpnkx.config", "ovpnkx.options", "ovpnkx.directives", "ovpnkx.capability", "ovpnkx_device.settings",
        "ovpnkx_device.wallclock", "ovpnkx.linkmsg", "ovpnkx.tlscontext", "ovpnkx.servercheck", "ovpnkx.certinfo",
        "ovpnkx.x509verify", "ovpnkx.x509cert", "ovpnkx.seeding", "ovpnkx.datacbc", "ovpnkx.tlsalert", "ovpnkx.der",
        "ovpnkx_device.session_options", "ovpnkx.wrapconfig", "ovpnkx_device.serial_port", "ovpnkx_device.prepare",
        "ovpnkx.entropy", "ovpnkx.drbg", "ovpnkx_device.entropy_select", "ovpnkx_device.parked")


def _serve_config(tmp_path, pki) -> str:
    path = tmp_path / "server.conf"
    path.write_text("\n".join([
        "server 10.8.0.0 255.255.255.0", "proto udp", "port 0", "local 127.0.0.1",
        "ca %s" % pki.ca, "cert %s" % pki.server_cert, "key %s" % pki.server_key,
        "keepalive 2 10", "data-ciphers AES-256-GCM", "tls-auth %s 0" % pki.tls_auth]) + "\n")
    return str(path)


def test_flash_layout_and_import(pico):
    out = mp(pico, "exec", "import ovpnkx, ovpnkx_device.app, noise, os\n"
             "print(ovpnkx.__file__, ovpnkx_device.app.__file__)\nprint(sorted(os.listdir('/')))").stdout
    assert "/lib/ovpnkx/__init__.mpy /lib/ovpnkx_device/app.mpy" in out
    for name in ("main.py", "client.ovpn", "ovpnkx.json", "ca.crt", "client.crt", "client.key", "ta.key", "lib"):
        assert "'%s'" % name in out
    assert pico["flash_report"]["arch"] == "x64"  # the sim runs on the host, whatever it models
    # host-only code stays off the board
    out = mp(pico, "exec", "import os\nprint(sorted(os.listdir('/lib/ovpnkx')) + sorted(os.listdir('/lib/ovpnkx_device')))"
             ).stdout
    assert "'app.mpy'" in out and "'messages.txt'" in out  # the error texts
    # the modules a session always holds are one module (tools/bundle.py), not one each
    assert "'_session.mpy'" in out and "'session.mpy'" not in out and "'packet.mpy'" not in out
    assert "cookie.mpy" not in out and "connect_main.mpy" not in out and "tlscrypt_server.mpy" not in out


def test_a_wait_with_nothing_to_read_costs_the_heap_nothing(pico):
    """The session loop waits on its transport at every turn, all session: a wait that
    ends with nothing to read (its timeout) allocates nothing. ``select``'s ``poll()`` makes a
    list at each call, on a board too, for the GC to take back; ``ipoll()`` does not."""
    code = ("import gc\nfrom ovpnkx_device.serial_port import open_serial\nt = open_serial(None, 115200)\n"
            + allocation_counter("waits", "t.wait(0)") + "t.wait(0)\nprint(waits(200), t.receive())")
    assert mp(pico, "exec", code).stdout.split() == ["0", "[]"]
    # the same on the REPL port (the USB-CDC of a board without a data UART), read at each turn
    code = ("import gc\nfrom ovpnkx_device.serial_port import open_serial\nt = open_serial('repl')\np = t.port\n"
            + allocation_counter("reads", "p.read(64)") + "p.read(64)\nr = reads(200), p.read(64)\nt.close(0)\nprint(*r)")
    assert mp(pico, "exec", code).stdout.split() == ["0", "None"]
    # the same for the Wi-Fi transports' socket (a UDP one to the discard port, on the loopback)
    code = ("import gc, network\nw = network.WLAN(network.STA_IF)\nw.active(True)\nw.connect('sim', 'sim')\n"
            "from ovpnkx_device.transport import UdpTransport, input_waiter\n"
            "t = UdpTransport('127.0.0.1', 9)\nwait = input_waiter(t.sock)\n"
            + allocation_counter("waits", "wait(0)") + "wait(-5)\nprint(waits(200), t.receive())\nt.close()")
    assert mp(pico, "exec", code).stdout.split() == ["0", "[]"]


def test_main_runs_after_soft_reset_against_serve_serial(pico, pki, tmp_path):
    put_settings(pico, tmp_path, dict(BASE))
    server = Proc([OVPNKX, "serve", "--config", _serve_config(tmp_path, pki), "--serial", pico["uart"],
                   "--json", "--key-fingerprint"], "ovpnkx serve")
    try:
        assert server.info["serial"] == pico["uart"]
        events, _ = run_main(pico)
    finally:
        served = server.stop()
    boot = events[0]  # the first event after the soft reset's banner (soft_reset_into_main read up to it)
    assert boot["event"] == "boot" and boot["board"] == "rp2040w" and boot["transport"] == "serial"
    assert last(events, "entropy")["state"] == "ok"
    # the RTC read 2021 at boot (or kept an earlier test's date over the soft reset)
    assert last(events, "date")["source"] in ("host", "rtc")
    result = last(events, "result")
    assert result["ok"], (result, events, server.err)
    assert result["pings_received"] >= 2 and result["pings_sent"] >= 2 and result["decrypt_errors"] == 0
    keys = last(events, "keys")
    assert keys["cipher"] == "AES-256-GCM"
    assert last(events, "connecting")["remote"] == "serial:uart1"
    # the server's side of the same session
    server_keys = [e for e in served if e["event"] == "keys"]
    assert server_keys and server_keys[-1]["fingerprint"] == keys["fingerprint"]
    assert server_keys[-1]["peer"] == "serial:" + pico["uart"]
    stats = last(served, "serial_stats")
    assert stats["frames_in"] >= result["packets_out"] and stats["frame_errors"] == {"crc": 0, "cobs": 0, "oversize": 0}
    print("serial 115200 baud: keys after %d ms; wire out %d B / in %d B for %d / %d packets"
          % (keys["at_ms"], result["wire_out"], result["wire_in"], result["packets_out"], result["packets_in"]))
    # stock firmware holds every imported .mpy in the GC heap: what a session needed once is gone after it
    resident = mp(pico, "resume", "exec", "import sys\nprint(sorted(sys.modules))").stdout
    for once in ONCE:
        assert "'%s'" % once not in resident, (once, resident)
    assert "'ovpnkx.clientconfig'" in resident and "'ovpnkx._session'" in resident, resident
    # and the names its .mpy files interned (for good) fit the chip's first six qstr pools,
    # 1,260 entries: one more name and stock firmware allocates a pool of 1,280 (7.7 KB)
    names, room = ast.literal_eval(mp(pico, "resume", "exec", "import _simprofile\nprint(_simprofile.names_interned())").stdout)
    assert room == 1260 and 1000 < names <= 1260 - 20, (names, room)  # 20 for main.py's and a spare


@pytest.mark.parametrize("mode,proto", [("p2p", "udp"), ("p2mp", "tcp")])
def test_relay_to_openvpn(pico, pki, tmp_path, mode, proto):
    if mode == "p2mp" and not ov.have_tun():
        pytest.skip("a p2mp openvpn server needs /dev/net/tun")
    port = ov.free_port()
    args = ov.server_args(pki, port, mode=mode, proto=proto, tls_auth=True, verb=9)
    ovpn = ov.client_config(pki, port, mode=mode, proto=proto, tls_auth=True)
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(r"UDPv4 link local|Listening for incoming TCP connection|TCPv4_SERVER link local")
        put_settings(pico, tmp_path, dict(BASE, pings=1), ovpn)
        relay = Proc([OVPNKX, "relay", "--serial", pico["uart"], "--remote", "127.0.0.1", str(port),
                      "--proto", proto, "--json"], "ovpnkx relay")
        try:
            events, _ = run_main(pico)
            server.wait_for(ov.PING_DECRYPTED.pattern, 5)
        finally:
            relayed = relay.stop()
        log = server.log()
    result = last(events, "result")
    assert result["ok"], (result, log[-3000:], relay.err)
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0
    assert server.key_errors() == []
    assert ov.PING_DECRYPTED.search(log), "openvpn did not decrypt the device's ping"
    stats = last(relayed, "stats")
    assert stats["sessions"] == 1 and stats["to_server"] >= result["packets_out"]
    print("relay %s/%s: keys after %d ms, %d frames to the device"
          % (mode, proto, last(events, "keys")["at_ms"], stats["frames_out"]))


def _through_relay_to_openvpn(pico, pki, tmp_path, pings, extra="", **crypto):
    """main.py through ``ovpnkx relay`` to a p2p openvpn 2.6 (UDP, tls-auth, ``crypto``: its
    cipher and auth for both ends; ``extra``: client config lines). (events, openvpn, its log)."""
    port = ov.free_port()
    args = ov.server_args(pki, port, mode="p2p", tls_auth=True, verb=9, **crypto)
    ovpn = ov.client_config(pki, port, mode="p2p", tls_auth=True, **crypto) + extra
    with ov.OpenVpn(args, str(tmp_path / "server.log")) as server:
        assert server.wait_for(r"UDPv4 link local")
        put_settings(pico, tmp_path, dict(BASE, pings=pings), ovpn)
        relay = Proc([OVPNKX, "relay", "--serial", pico["uart"], "--remote", "127.0.0.1", str(port),
                      "--proto", "udp", "--json"], "ovpnkx relay")
        try:
            events, _ = run_main(pico)
            server.wait_for(ov.PING_DECRYPTED.pattern, 5)
        finally:
            relay.stop()
        return events, server, server.log()


def test_auth_sha512_on_the_board_against_openvpn(pico, pki, tmp_path):
    """tls-auth and CBC+HMAC with SHA-512, which the board's stock hashlib lacks (ovpnkx.sha512 stands in)."""
    events, server, log = _through_relay_to_openvpn(pico, pki, tmp_path, 1, cipher="AES-256-CBC", auth="SHA512")
    result = last(events, "result")
    assert result["ok"] and result["cipher"] == "AES-256-CBC", (result, log[-3000:])
    assert server.key_errors() == [] and ov.PING_DECRYPTED.search(log)
    print("SHA-512 tls-auth on the board: keys after %d ms" % last(events, "keys")["at_ms"])


def test_renegotiations_on_the_boards_own_heap_against_openvpn(pico, pki, tmp_path):
    """reneg-sec on the Pico W at its stock heap: the lame duck goes when a renegotiation starts
    and the current key's TLS session is freed right before the new one's (two mbedTLS sessions
    do not fit), so each new key comes and openvpn 2.6 decrypts the pings sent under it.

    Whether the new session's 16 KB buffer finds a free piece of that size depends on where
    blocks landed (about 1 run in 10 runs out of memory in the sim): a run that ran out of
    memory, and nothing else, is run once more."""
    def run(attempt: int) -> tuple:
        run_dir = tmp_path / str(attempt)
        run_dir.mkdir()
        return _through_relay_to_openvpn(pico, pki, run_dir, 5, "reneg-sec 3\n")

    events, server, log = once_more_if_out_of_memory(run, "renegotiations at the stock heap")
    result = last(events, "result")
    assert result["ok"] and result["pings_received"] >= 5, (result, log[-3000:])
    keys = [e for e in events if e.get("event") == "keys"]
    assert [k["key_id"] for k in keys][:3] == [0, 1, 2], keys
    assert server.key_errors() == [] and ov.PING_DECRYPTED.search(log)
    # openvpn took the board's soft resets and its pings under the new keys (key_id in the packet)
    assert re.search(r"SOFT_RESET_V1 kid=2", log), log[-3000:]
    retired = [e for e in events if e.get("event") == "retired"]
    assert retired and retired[0]["key_id"] == 0 and retired[0]["reason"] == "renegotiation started"


def test_wrong_config_is_reported(pico, tmp_path):
    put_settings(pico, tmp_path, dict(BASE, transport="carrier-pigeon"))
    events, _ = run_main(pico)
    assert last(events, "config_error")["reason"] == 'transport must be "serial", "udp" or "tcp", not \'carrier-pigeon\''
    assert "result" not in [e["event"] for e in events]
    put_settings(pico, tmp_path, dict(BASE), "client\nremote 127.0.0.1 1194\nca ca.crt\n")
    events, _ = run_main(pico)
    assert "cert" in last(events, "config_error")["reason"]
    put_settings(pico, tmp_path, dict(BASE), "client\nremote 127.0.0.1 1194\nca missing.crt\ncert c\nkey k\n")
    events, _ = run_main(pico)
    assert "missing.crt" in last(events, "config_error")["reason"]
    # the directive policy and the board's own capabilities, checked on the board
    put_settings(pico, tmp_path, dict(BASE), "client\nremote 127.0.0.1 1194\nremote-cert-tsl server\n")
    events, _ = run_main(pico)
    assert last(events, "config_error")["reason"] == (
        "/client.ovpn:3: remote-cert-tsl: unknown directive (did you mean remote-cert-tls?)")
    pem = "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----"
    put_settings(pico, tmp_path, dict(BASE), "client\nremote 127.0.0.1 1194\n<ca>\n%s\n</ca>\n<cert>\n%s\n</cert>\n"
                 "<key>\n%s\n</key>\ntls-version-min 1.3\n" % (pem, pem, pem))
    events, _ = run_main(pico)
    assert last(events, "config_error")["reason"].startswith(
        "/client.ovpn:18: tls-version-min: micropython cannot honour it: its TLS offers 1.2 at most")


def test_binary_on_the_repl_port_is_not_ctrl_c(pico, pki, tmp_path):
    """uart "repl": frames share the USB-CDC REPL port; their 0x03 bytes must not interrupt."""
    ovpn = ov.client_config(pki, 1194, mode="p2mp", tls_auth=True)
    put_settings(pico, tmp_path, dict(BASE, uart="repl", pings=1), ovpn)
    server = Proc([OVPNKX, "serve", "--config", _serve_config(tmp_path, pki), "--serial", pico["repl"],
                   "--json"], "ovpnkx serve")
    try:
        assert request(pico["control"], {"cmd": "reset"})["ok"]  # a hard reset boots into main.py
        server.wait_for(lambda e: e["event"] == "device" and e["record"]["event"] in ("result", "config_error"))
    finally:
        served = server.stop()
    device = [e["record"] for e in served if e["event"] == "device"]
    result = last(device, "result")
    assert result["ok"] and result["pings_received"] >= 1, (device, server.err)
    assert last(device, "connecting")["remote"] == "serial:repl"
    stats = last(served, "serial_stats")
    assert stats["ctrl_c_out"] > 0, "the host sent no 0x03: the test proves nothing"
    assert "KeyboardInterrupt" not in server.out
    # Ctrl-C works again once the session is over
    assert mp(pico, "exec", "print('alive')").stdout.strip() == "alive"
    print("over the REPL port: %d bytes with 0x03 among %d sent" % (stats["ctrl_c_out"], stats["bytes_out"]))


@pytest.mark.parametrize("fault", [{"corrupt": 0.01}, {"drop": 0.001}], ids=["corrupt-1pct", "drop-0.1pct"])
def test_key_exchange_over_a_noisy_line(pico, pki, tmp_path, fault):
    """A byte error costs a small piece of a packet, not the packet (issue 9, item 12):
    the key exchange and a ping each way get through at 1 % of bytes corrupted (one bit
    flipped) or 0.1 % of bytes lost, each way, at 115200 baud. `make bench` (section
    seriallink) counts key exchanges out of 100; this is one seeded run of each."""
    put_settings(pico, tmp_path, dict(BASE, pings=1))
    before = request(pico["control"], {"cmd": "stats"})["stats"]
    assert request(pico["control"], dict({"cmd": "link", "seed": 12}, **fault))["ok"]
    server = Proc([OVPNKX, "serve", "--config", _serve_config(tmp_path, pki), "--serial", pico["uart"],
                   "--json"], "ovpnkx serve")
    try:
        events, text = run_main(pico, timeout=90)
    finally:
        served = server.stop()
        request(pico["control"], {"cmd": "link", "corrupt": 0.0, "drop": 0.0})
    after = request(pico["control"], {"cmd": "stats"})["stats"]
    kind = "corrupted" if "corrupt" in fault else "dropped"
    hits = {d: after[d][kind] - before[d][kind] for d in ("to_host", "to_board")}
    result = last(events, "result")
    assert result["ok"], (result, events, server.err[-2000:])
    assert result["pings_received"] >= 1 and result["decrypt_errors"] == 0
    assert hits["to_host"] > 0 and hits["to_board"] > 0, "the line damaged nothing: %s" % hits
    stats = last(served, "serial_stats")
    print("%s: keys after %d ms; bytes %s each way; link %s"
          % (fault, last(events, "keys")["at_ms"], kind, hits), stats)


def test_host_link_answers_the_time_request():
    """serve and relay (SerialLink) answer a device's time request with this host's
    clock; link messages (packets starting with 0x00) never reach the packet handler."""
    import time

    from ovpnkx.linkmsg import TIME_REQUEST, parse_time_reply
    from ovpnkx.seriallink import Link
    from ovpnkx_host.serial_link import SerialLink

    device = Link(7)  # the board's end of the link
    for p in (TIME_REQUEST, b"\x38abc", b"\x00OTHER"):
        device.send(p, 0)
    link = SerialLink("loop://")
    try:
        packets = link.feed(device.bytes_to_send(0))
        assert packets == [b"\x38abc"] and link.time_replies == 1
        back = device.receive(link.port.read(4096), 1)  # the host's acknowledgement and answer
        assert len(back) == 1 and abs(parse_time_reply(back[0]) - time.time()) < 5
        assert link.stats()["time_replies"] == 1
    finally:
        link.close()


def test_host_link_hands_on_the_devices_console_events():
    """Over a REPL port the device's OVPNKX lines share the line with frames: serve and
    relay get each one's event (run.console_event), and nothing else of the console."""
    from ovpnkx_host.serial_link import SerialLink

    link = SerialLink("loop://")
    got: list = []
    try:
        link.feed(b'MPY: soft reboot\r\nOVPNKX {"event": "boot", "board": "rp2350w"}\r\nOVPNKX {"ev', got.append)
        link.feed(b'ent": "entropy"}\r\nOVPNKX not json\r\nOVPNKX [1]\r\n', got.append)
    finally:
        link.close()
    assert got == [{"event": "boot", "board": "rp2350w"}, {"event": "entropy"}]


def test_a_stopping_host_lets_through_what_the_device_already_sent():
    """relay and serve call settle() on SIGTERM: packets still arriving on the line
    (a device's last ACK, ~10 ms a packet at 115200 baud) are delivered, not lost."""
    import asyncio
    import threading
    import time

    from ovpnkx.seriallink import Link
    from ovpnkx_host.serial_link import SerialLink

    device = Link(7)
    link = SerialLink("loop://")  # what is written to it comes back in, as from a device
    got: list = []
    link.start(got.append)

    def device_sends() -> None:
        for i in range(4):
            device.send(b"\x38packet%d" % i, 0)
            link.port.write(device.bytes_to_send(0))
            time.sleep(0.06)

    try:
        sender = threading.Thread(target=device_sends)
        sender.start()
        time.sleep(0.01)
        started = time.monotonic()
        asyncio.run(link.settle(quiet_s=0.1, most_s=2.0))
        waited = time.monotonic() - started
        sender.join()
        assert got == [b"\x38packet%d" % i for i in range(4)], got
        assert waited < 1.0  # quiet after the last packet: it does not wait its whole most_s
        started = time.monotonic()
        asyncio.run(link.settle(quiet_s=0.05, most_s=2.0))  # nothing more comes: one quiet period
        assert time.monotonic() - started < 0.5
    finally:
        link.close()


def _short_ovpn(pki) -> str:
    """The client config with tls-auth inline and a 3 s hand-window: failures come quickly."""
    return ov.client_config(pki, 1194, mode="p2mp", tls_auth=True).replace("hand-window 20", "hand-window 3")


def test_nobody_on_the_line_is_named_not_the_key(pico, pki, tmp_path):
    """Issue 8 item 6: no peer on the serial line used to be blamed on the tls-auth key."""
    put_settings(pico, tmp_path, dict(BASE, pings=1), _short_ovpn(pki))
    events, _ = run_main(pico)
    reason = last(events, "result")["reason"]
    assert reason.startswith("TLS key negotiation failed to occur within 3 seconds (no answer from the peer; "
                             "no byte ever arrived on serial:uart1: is the other end"), reason
    assert reason.index("baud rate") < reason.index("tls-auth key")  # the line first, the key after


def test_a_noisy_line_is_named_with_its_frame_errors(pico, pki, tmp_path):
    """Every frame from the host damaged on the way (the sim's link model): the hint says so."""
    put_settings(pico, tmp_path, dict(BASE, pings=1), _short_ovpn(pki))
    ctl = pico["control"]
    server = Proc([OVPNKX, "serve", "--config", _serve_config(tmp_path, pki), "--serial", pico["uart"],
                   "--json"], "ovpnkx serve")
    try:
        assert request(ctl, {"cmd": "link", "dir": "to_board", "corrupt": 0.2, "seed": 8})["ok"]
        events, _ = run_main(pico)
    finally:
        request(ctl, {"cmd": "link", "dir": "both", "drop": 0, "corrupt": 0, "dup": 0, "baud": 0})
        server.stop()
    result = last(events, "result")
    reason = result["reason"]
    assert re.search(r"no answer from the peer; \d+ bytes arrived on serial:uart1 but no frame was intact "
                     r"\((cobs|crc|oversize)=\d+", reason), reason
    assert "noisy" in reason and "tls-auth" not in reason and "certificate" not in reason, reason
    assert sum(result["frame_errors"].values()) > 0 and result["packets_in"] == 0, result
