"""The board under test of tests/hil: a simulated board, or a real one on a serial port.

The tests talk to a ``Board`` only, so the same test code runs against both:

- ``sim:NAME`` starts ``ovpnkx sim start --board NAME --frozen ''`` (stock MicroPython:
  everything the app imports comes from the flash); its data UART is the sim's
  ``uart`` PTY, its Wi-Fi is the host's 127.0.0.1, its reset is the control socket.
- ``/dev/ttyACM0`` (with ``--board NAME``) is a real board's REPL port; the host end
  of its data UART is ``--data-port`` (a USB-serial adapter on the board's
  ``data_uart`` pins), Wi-Fi tests need ``--host-ip`` (the host's address on the
  board's network: a real board cannot reach the host's 127.0.0.1) and
  ``--wifi-ssid``/``--wifi-password``; it is reset from its console
  (Ctrl-C, then ``machine.reset()``).

Serial sessions go over the data UART (``via="uart"``) or share the REPL port
(``via="repl"``: ``"uart": "repl"`` in /ovpnkx.json; the device's console lines
then reach the test through ``ovpnkx serve``/``relay`` as ``device`` events).
"""

import time

import serial

from ovpnkx_host import run as board_run

from _device import OVPNKX, Console, Proc, flash_tool, put_settings, start_sim

LOOPBACK = "127.0.0.1"


class Board:
    """One board under test; ``stop()`` ends what ``start()`` began."""

    def __init__(self, spec: str, name: str, via: str, data_port=None, host_ip=None, wifi_ssid=None,
                 wifi_password=None, baud: int = 115200) -> None:
        from ovpnkx_sim.boards import load_board

        self.spec = spec
        self.name = name
        self.profile = load_board(name)
        self.is_sim = spec.startswith("sim:")
        self.sim = None
        self.repl = None if self.is_sim else spec
        self.data_port = data_port
        self.host_ip = LOOPBACK if self.is_sim else host_ip
        self.wifi_ssid, self.wifi_password = wifi_ssid, wifi_password
        self.baud = baud
        self.via = via
        self.control = None

    @property
    def id(self) -> str:
        return "%s-%s" % (self.spec.replace("/", "_"), self.via)

    @property
    def info(self) -> dict:
        """What the `_device` helpers take (``repl``)."""
        return {"repl": self.repl}

    def start(self) -> "Board":
        if self.is_sim:
            self.sim = start_sim("--board", self.name, "--frozen", "")
            self.repl = self.sim.info["repl"]
            self.data_port = self.sim.info["uart"]
            self.control = self.sim.info["control"]
        if self.via == "auto":
            self.via = "uart" if self.data_port else "repl"
        if self.via == "uart" and not self.data_port:
            raise ValueError("--serial-via uart needs --data-port on a real board")
        return self

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    # -- what the board can do -------------------------------------------------------
    def wifi_skip_reason(self) -> "str | None":
        """Why the Wi-Fi tests cannot run on this board (None: they can)."""
        if not self.profile.get("wifi"):
            return "%s has no Wi-Fi (%s)" % (self.spec, self.profile.get("title", self.name))
        if self.host_ip is None:
            return ("a real board on Wi-Fi cannot reach this host's 127.0.0.1: give --host-ip "
                    "(the host's address on the board's network)")
        if not self.is_sim and not self.wifi_ssid:
            return "give --wifi-ssid (and --wifi-password) for the board's network"
        return None

    def wifi_settings(self) -> dict:
        """The "wifi" entry of /ovpnkx.json (the sim's loopback joins without one)."""
        if self.is_sim:  # the date comes from NTP: ours, on the sim's loopback
            from _device import NtpResponder

            return {"ntp": NtpResponder.shared().server}
        return {"wifi": {"ssid": self.wifi_ssid, "password": self.wifi_password or ""}}

    def serial_port(self, via: "str | None" = None) -> str:
        """The host's end of the board's serial data path."""
        return self.data_port if (via or self.via) == "uart" else self.repl

    # -- flashing and settings ---------------------------------------------------------
    def flash(self, config: str, transport: str, extra: dict, staging: str) -> dict:
        """tools/flash.py (what `make flash` runs), without the soft reset; files are
        staged in ``staging``."""
        return flash_tool.flash(self.name, self.repl, config, transport, extra, reset=False, out=staging)

    def put(self, tmp_path, settings: dict, ovpn: "str | None" = None, via: "str | None" = None) -> None:
        """Write /ovpnkx.json (with the serial path) and maybe /client.ovpn."""
        settings = dict(settings)
        # as `make flash` writes it: the compact GHASH tables below 256 KiB of heap
        settings.setdefault("compact_gcm", self.profile.get("heap", 0) < flash_tool.COMPACT_GCM_BELOW)
        if settings.get("transport") == "serial":
            settings["uart"] = None if (via or self.via) == "uart" else "repl"
        put_settings(self.info, tmp_path, settings, ovpn)

    # -- resets ----------------------------------------------------------------------
    def soft_reset_into_main(self) -> None:
        """Ctrl-C twice and Ctrl-D at the friendly REPL (main.py runs), through a handle
        of its own: a host process may be reading the same port; nothing is read here."""
        with serial.serial_for_url(self.repl, baudrate=115200, timeout=0.1) as port:
            port.write(b"\r\x03\x03")
            port.flush()
            time.sleep(0.2)
            port.write(b"\x04")
            port.flush()

    def console_main(self) -> Console:
        """The console, opened before a soft reset into main.py (once the REPL prompt
        shows; older output dropped)."""
        con = Console(self.info)
        board_run.soft_reset_into_main(con.port)
        return con

    def hard_reset(self) -> None:
        """A hard reset now: the sim's control socket; a real board from its console."""
        if self.is_sim:
            from ovpnkx_sim.control import request

            assert request(self.control, {"cmd": "reset"})["ok"]
            return
        with serial.serial_for_url(self.repl, baudrate=115200, timeout=0.1) as port:
            port.write(b"\r\x03\x03")
            time.sleep(0.2)
            port.write(b"import machine; machine.reset()\r")
            port.flush()
        time.sleep(1.0)  # a USB-CDC port goes away and comes back

    def reopen_console(self, old: Console, timeout: float = 15) -> Console:
        """The console after a hard reset (a real board's USB port re-enumerates); the
        events read so far are kept."""
        try:
            old.text += old.port.read(old.port.in_waiting)
            return old  # the port stayed (a UART REPL, or the sim)
        except (serial.SerialException, OSError):
            pass
        text = old.text
        try:
            old.close()
        except (serial.SerialException, OSError):
            pass
        end = time.monotonic() + timeout
        while True:
            try:
                con = Console(self.info)
                break
            except (serial.SerialException, OSError):
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
        con.text = text
        return con

    def set_baud(self, baud: int) -> bool:
        """Slow the sim's data UART (link model); False on a real board."""
        if not self.is_sim:
            return False
        from ovpnkx_sim.control import request

        return bool(request(self.control, {"cmd": "link", "dir": "both", "baud": baud})["ok"])

    def boots(self) -> "int | None":
        """How often the sim has booted (None on a real board)."""
        if not self.is_sim:
            return None
        from ovpnkx_sim.control import request

        return request(self.control, {"cmd": "stats"})["boots"]


def serve_config(tmp_path, pki, host: str) -> str:
    """A config for `ovpnkx serve` (the CPython peer) with ``pki``."""
    path = tmp_path / "server.conf"
    path.write_text("\n".join([
        "server 10.8.0.0 255.255.255.0", "proto udp", "port 0", "local %s" % host,
        "ca %s" % pki.ca, "cert %s" % pki.server_cert, "key %s" % pki.server_key,
        "keepalive 1 10", "data-ciphers AES-256-GCM", "tls-auth %s 0" % pki.tls_auth]) + "\n")
    return str(path)


def on_host(text_or_args, host: str):
    """An openvpn argument list or a client config with 127.0.0.1 replaced by ``host``."""
    if host == LOOPBACK:
        return text_or_args
    if isinstance(text_or_args, str):
        return text_or_args.replace("remote %s " % LOOPBACK, "remote %s " % host)
    args = list(text_or_args)
    args[args.index("--local") + 1] = host
    return args


def serial_session(board: Board, tmp_path, settings: dict, ovpn: "str | None", host_args: list,
                   what: str, via: "str | None" = None, timeout: float = 40, settle=None) -> tuple:
    """Write the settings, start the host side (``host_args`` + the serial port), run
    main.py and collect the device's events up to its result.

    Returns (device events, host events, host process): over the data UART the
    device's events are read from its console, over the REPL port from the host's
    ``device`` lines. ``settle()`` runs before the host side stops (the device's last
    packets may still be on their way through it).
    """
    via = via or board.via
    board.put(tmp_path, settings, ovpn, via)
    port = board.serial_port(via)
    host = Proc([OVPNKX] + host_args[:1] + ["--serial", port, "--baud", str(board.baud)] + host_args[1:]
                + ["--json"], what)
    done = ("result", "config_error")
    try:
        if via == "uart":
            con = board.console_main()
            try:
                con.read_until(done, timeout)
            finally:
                con.close()
            device = con.events
            if not any(e.get("event") in done for e in device):
                raise AssertionError("no result from the device; its console:\n" + con.tail())
        else:
            board.soft_reset_into_main()
            host.wait_for(lambda e: e["event"] == "device" and e["record"].get("event") in done, timeout)
            device = None
        if settle is not None:
            settle()
    finally:
        host_events = host.stop()
    if device is None:
        device = [e["record"] for e in host_events if e["event"] == "device"]
    return device, host_events, host
