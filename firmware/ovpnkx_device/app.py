"""The device application (run by the board's /main.py).

Reads ``/ovpnkx.json`` (the transport) and ``/client.ovpn`` (a standard OpenVPN
client config, with its certificate, key and tls-auth key inline or in files
beside it), brings the transport up, runs the session loop and reconnects with
exponential backoff. Every event is one console line ``OVPNKX {json}``, the
dicts of ``ovpnkx_device.runner`` plus ``boot``, ``config_error`` and
``reconnect``; tests and host tools parse only those lines.

``/ovpnkx.json`` (every key but "transport" optional)::

    {"transport": "serial" | "udp" | "tcp",
     "uart": null | int | "repl",   # null: the board's data UART; "repl": the REPL port
     "baud": 115200,
     "wifi": {"ssid": "...", "password": "..."},   # udp/tcp on a real board
     "pings": 0,                    # 0: run for ever; N: stop after N pings each way
     "reconnect": true, "backoff_s": [1, 30],
     "entropy": "board" | "host",
     "compact_gcm": false,          # true: 0.6 KB GHASH tables instead of 8 KB (slower; tight heaps)
     "fingerprint": false,          # true: keys events carry a key fingerprint (agreement checks)
     "ntp": "pool.ntp.org",         # Wi-Fi: where the date comes from when the RTC has none
     "board": "rp2040", "data_uart": {"id": 1, "tx": 4, "rx": 5}}   # written by tools/flash.py

With "serial" the .ovpn's remote is not used: the host side (``ovpnkx serve
--serial`` or ``ovpnkx relay --serial``) decides where the packets go, and gives
the date (``ovpnkx_device.wallclock``); on Wi-Fi it comes from NTP. Without a date
no session starts: mbedTLS checks the certificates' validity against the RTC.

A board whose MicroPython has no ``tls`` module (a plain Pico or Pico 2 on stock
firmware) is refused at boot, naming the board to use instead.
"""

import gc
import json
import sys
import time

from ovpnkx._compat import TYPE_CHECKING
from ovpnkx.config import ConfigError, parse_config

if TYPE_CHECKING:
    from typing import Any

CONFIG = "/ovpnkx.json"
OVPN = "/client.ovpn"
PREFIX = "OVPNKX "
DEFAULTS = {"transport": None, "uart": None, "baud": 115200, "wifi": None, "pings": 0,
            "reconnect": True, "backoff_s": [1, 30], "entropy": "board", "compact_gcm": False, "board": None,
            "data_uart": None, "fingerprint": False, "ntp": "pool.ntp.org"}
# the board with tls to use instead of one without (stock firmware)
INSTEAD = {"rp2040": "a Raspberry Pi Pico W (board rp2040w)", "rp2350": "a Raspberry Pi Pico 2 W (board rp2350w)"}
WIFI_TIMEOUT_MS = 20000


class SettingsError(ConfigError):
    """/ovpnkx.json is missing or wrong."""


def emit(record: dict) -> None:
    """One console line ``OVPNKX {json}``."""
    print(PREFIX + json.dumps(record))


def _sim() -> "Any":
    try:
        import simboard  # type: ignore

        return simboard
    except ImportError:
        return None


def board_name(settings: "dict | None" = None) -> str:
    """The board's name: the sim's, else the one tools/flash.py recorded, else the machine."""
    sim = _sim()
    if sim is not None:
        return str(sim.name())
    if settings and settings.get("board"):
        return str(settings["board"])
    return str(getattr(sys.implementation, "_machine", sys.platform))


def _is_int(v: "Any") -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_settings(raw: "Any") -> dict:
    """``raw`` (the parsed JSON) checked and completed with the defaults."""
    if not isinstance(raw, dict):
        raise SettingsError("%s must hold a JSON object" % CONFIG)
    for key in raw:
        if key not in DEFAULTS:
            raise SettingsError("unknown key %r in %s" % (key, CONFIG))
    s = {}  # type: dict
    s.update(DEFAULTS)
    s.update(raw)
    if s["transport"] not in ("serial", "udp", "tcp"):
        raise SettingsError("transport must be \"serial\", \"udp\" or \"tcp\", not %r" % (s["transport"],))
    if not (s["uart"] is None or s["uart"] == "repl" or _is_int(s["uart"]) and s["uart"] >= 0):
        raise SettingsError("uart must be null, a UART id or \"repl\", not %r" % (s["uart"],))
    if not _is_int(s["baud"]) or s["baud"] <= 0:
        raise SettingsError("baud must be a positive integer, not %r" % (s["baud"],))
    if not _is_int(s["pings"]) or s["pings"] < 0:
        raise SettingsError("pings must be an integer >= 0, not %r" % (s["pings"],))
    if not isinstance(s["reconnect"], bool):
        raise SettingsError("reconnect must be true or false")
    b = s["backoff_s"]
    if (not isinstance(b, list) or len(b) != 2 or not all(isinstance(x, (int, float)) for x in b)
            or not 0 < b[0] <= b[1]):
        raise SettingsError("backoff_s must be [first, longest] seconds with 0 < first <= longest")
    if s["entropy"] not in ("board", "host"):
        raise SettingsError("entropy must be \"board\" or \"host\", not %r" % (s["entropy"],))
    if not isinstance(s["compact_gcm"], bool):
        raise SettingsError("compact_gcm must be true or false")
    if not isinstance(s["fingerprint"], bool):
        raise SettingsError("fingerprint must be true or false")
    if s["ntp"] is not None and not isinstance(s["ntp"], str):
        raise SettingsError("ntp must be \"host\" or \"host:port\" (or null), not %r" % (s["ntp"],))
    w = s["wifi"]
    if w is not None and (not isinstance(w, dict) or not isinstance(w.get("ssid", ""), str)):
        raise SettingsError("wifi must be {\"ssid\": ..., \"password\": ...}")
    return s


def load_settings(path: str = CONFIG) -> dict:
    """Read and check /ovpnkx.json."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise SettingsError("cannot read %s" % path)
    try:
        raw = json.loads(text)
    except ValueError:
        raise SettingsError("%s is not valid JSON" % path)
    return check_settings(raw)


def load_ovpn(path: str = OVPN) -> "Any":
    """Parse the client config; files it names are read beside it."""
    base = path.rsplit("/", 1)[0] or "/"

    def read_file(name: str) -> str:
        full = name if name.startswith("/") else base.rstrip("/") + "/" + name
        try:
            with open(full) as f:
                return f.read()
        except OSError:
            raise ConfigError("cannot read %s (named in %s)" % (full, path))

    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("cannot read %s" % path)
    from ovpnkx.capability import micropython

    return parse_config(text, path, read_file, caps=micropython())  # what this board's firmware can do


def tls_refusal(board: str) -> "str | None":
    """Why this board cannot run a session (no ``tls`` module), or None."""
    try:
        import tls  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return ("this board's MicroPython (%s) has no tls module, so it cannot do OpenVPN's TLS handshake; "
                "use %s instead" % (board, INSTEAD.get(board, "a board whose stock MicroPython has tls "
                                                          "(Pico W, Pico 2 W, ESP32)")))
    return None


def make_entropy(kind: str) -> "Any":
    """The key-material source: the board's TRNG chain (start-up tested), or the
    host's os.urandom. Has ``state`` "ok" or "error" (and then ``error``)."""
    try:
        from .entropy_select import board_entropy
    except ImportError:  # an older image: the board's noise module directly
        if kind == "host":
            from ovpnkx.entropy import HostEntropy

            return HostEntropy()
        import noise  # type: ignore  # boards/<b>/noise.py, frozen or on flash

        return noise.make_entropy()
    return board_entropy("host" if kind == "host" else None)


def wifi_up(settings: dict) -> None:
    """Join the configured Wi-Fi network (the sim's loopback "Wi-Fi" joins at once)."""
    try:
        import network  # type: ignore
    except ImportError:
        raise SettingsError("this board has no Wi-Fi: use \"transport\": \"serial\"")
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if wlan.isconnected():
        return
    w = settings["wifi"] or {}
    if _sim() is None and not w.get("ssid"):
        raise SettingsError("transport %s needs \"wifi\": {\"ssid\": ..., \"password\": ...}"
                            % settings["transport"])
    wlan.connect(w.get("ssid", ""), w.get("password", ""))
    start = time.ticks_ms()  # type: ignore
    while not wlan.isconnected():
        if time.ticks_diff(time.ticks_ms(), start) > WIFI_TIMEOUT_MS:  # type: ignore
            from .runner import TransportError

            raise TransportError("Wi-Fi: not connected to %r after %d s" % (w.get("ssid"), WIFI_TIMEOUT_MS // 1000))
        time.sleep_ms(100)  # type: ignore


def run_once(settings: dict, cfg: "Any", entropy: "Any", out: "Any") -> dict:
    """One session (connect .. closed); returns its ``result`` record."""
    from ovpnkx.config import engine_args, engine_options
    from ovpnkx.crypto_mp import MicroPythonCrypto
    from ovpnkx.tls_mbedtls import MbedTlsEngine

    from .runner import run_client
    from .runner import TransportError

    from .wallclock import NoDateError, date_text, ensure_date

    transport = None
    result = {"event": "result", "ok": False, "reason": ""}  # type: dict
    if settings["transport"] == "serial":
        from .serial import SerialTransport

        try:
            transport = SerialTransport.open(settings["uart"], settings["baud"], settings["data_uart"])
        except TransportError as exc:
            result["reason"] = str(exc)
            out(result)
            return result
        host, port, proto = cfg.remote
    else:  # the transport chosen in ovpnkx.json wins over the .ovpn's proto
        host, port, proto = cfg.remote
        cfg.remotes[0] = (host, port, settings["transport"])
    try:  # mbedTLS checks the certificates' validity against the RTC: no date, no session
        secs, source = ensure_date(transport, None if transport is not None else settings["ntp"])
    except (NoDateError, OSError) as exc:
        if transport is not None:
            transport.close()
        result["reason"] = str(exc) if isinstance(exc, NoDateError) else "no date: %s" % exc
        out(result)
        return result
    out({"event": "date", "source": source, "utc": date_text(secs)})

    def tls_factory() -> "Any":
        return MbedTlsEngine(False, *engine_args(cfg), **engine_options(cfg))

    def capture(record: dict) -> None:
        if record.get("event") == "result":
            result.clear()
            result.update(record)
            if transport is not None:
                result["wire_in"] = transport.bytes_in
                result["wire_out"] = transport.bytes_out
                result["frame_errors"] = transport.decoder.errors
                st = transport.link.stats
                result["link"] = {k: st[k] for k in ("repeats", "lost", "timeouts", "dropped", "give_ups",
                                                     "resyncs", "rx_resyncs", "discarded")}
        out(result if record.get("event") == "result" else record)

    pings = settings["pings"]
    timeout_s = (cfg.hand_window + 10 + 3 * pings * max(cfg.ping, 2)) if pings else 0
    gc.collect()  # start the session on a compacted heap: its peak is what a board must hold
    # one pass over the remotes per call: the reconnect and backoff of ovpnkx.json are ours
    run_client(cfg, entropy, MicroPythonCrypto(settings["compact_gcm"]), tls_factory, ask_ekm=False,
               platform=board_name(settings), pings=pings, timeout_s=timeout_s, emit=capture,
               transport=transport, retry=False, key_fingerprint=settings["fingerprint"])
    return result


def main(config: str = CONFIG, ovpn: str = OVPN, out: "Any" = emit) -> int:
    """Boot, then sessions until done (``pings`` reached) or for ever. Exit status."""
    settings = None
    error = None
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        error = str(exc)
    out({"event": "boot", "board": board_name(settings), "transport": settings and settings["transport"],
         "machine": _sim().machine() if _sim() is not None else getattr(sys.implementation, "_machine", "")})
    cfg = None
    if error is None:
        try:
            cfg = load_ovpn(ovpn)
        except ConfigError as exc:
            error = str(exc)
    if error is None and settings is not None:
        error = tls_refusal(board_name(settings))
    if error is None and settings is not None and settings["transport"] != "serial":
        try:
            wifi_up(settings)
        except Exception as exc:
            error = str(exc)
    if error is not None or settings is None:
        out({"event": "config_error", "reason": error})
        return 2
    try:
        entropy = make_entropy(settings["entropy"])
        state, detail = getattr(entropy, "state", "ok"), getattr(entropy, "error", None)
    except Exception as exc:  # no noise source on this board
        entropy, state, detail = None, "error", "%s: %s" % (type(exc).__name__, exc)
    out({"event": "entropy", "source": settings["entropy"], "state": state, "detail": detail})
    if state == "error":  # no keys from a failed source, and it does not heal by retrying
        reason = str(detail)
        if not reason.startswith("entropy source failed"):
            reason = "entropy source failed: " + reason
        out({"event": "result", "ok": False, "reason": reason})
        return 3
    backoff = settings["backoff_s"][0]
    while True:
        try:
            result = run_once(settings, cfg, entropy, out)
        except MemoryError:
            gc.collect()  # the session's objects are gone now; say so, then retry like any failure
            hint = ("a board with more heap: this one is too small for ovpnkx on stock firmware "
                    "(`make bench`, section board, has each board's peak)") if settings["compact_gcm"] \
                else "\"compact_gcm\": true in /ovpnkx.json"
            result = {"event": "result", "ok": False,
                      "reason": "out of memory during the session (free heap now %d B); try %s"
                                % (gc.mem_free(), hint)}
            out(result)
        if result.get("stopped"):  # Ctrl-C (mpremote, a user): the server was told; back to the REPL
            return 0
        if result.get("ok"):
            if settings["pings"]:
                return 0
            backoff = settings["backoff_s"][0]  # a session that ended well: start again soon
        elif result.get("pings_received") or result.get("data_ready"):
            backoff = settings["backoff_s"][0]
        if not settings["reconnect"]:
            return 0 if result.get("ok") else 1
        out({"event": "reconnect", "in_s": backoff})
        time.sleep(backoff)
        backoff = min(settings["backoff_s"][1], backoff * 2)
