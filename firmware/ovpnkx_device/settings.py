"""The device application's one-time work before its sessions (``ovpnkx_device.app``):
/ovpnkx.json checked, /client.ovpn parsed, the tls check, Wi-Fi joined, the entropy
source made.

A module of its own so that the board's heap holds its code only while booting:
``app.main`` drops it before the first session (``ovpnkx._compat.unload``).
"""

import json
import sys
import time

from ovpnkx._compat import TYPE_CHECKING, unload
from ovpnkx.config import ConfigError, parse_config

from .app import CONFIG, OVPN, _sim, board_name

if TYPE_CHECKING:
    from typing import Any

DEFAULTS = {"transport": None, "uart": None, "baud": 115200, "wifi": None, "pings": 0,
            "reconnect": True, "backoff_s": [1, 30], "entropy": "board", "compact_gcm": False, "board": None,
            "data_uart": None, "fingerprint": False, "ntp": "pool.ntp.org"}
# the board with tls to use instead of one without (stock firmware)
INSTEAD = {"rp2040": "a Raspberry Pi Pico W (board rp2040w)", "rp2350": "a Raspberry Pi Pico 2 W (board rp2350w)"}
WIFI_TIMEOUT_MS = 20000


class SettingsError(ConfigError):
    """/ovpnkx.json is missing or wrong."""


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
    try:
        return board_entropy("host" if kind == "host" else None)
    finally:
        unload("ovpnkx_device.entropy_select")  # it chooses once; the source it made stays


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
            from . import TransportError

            raise TransportError("Wi-Fi: not connected to %r after %d s" % (w.get("ssid"), WIFI_TIMEOUT_MS // 1000))
        time.sleep_ms(100)  # type: ignore


def boot(config: str, ovpn: str, out: "Any") -> "Any":
    """Settings, config, tls check, Wi-Fi, entropy: (settings, cfg, entropy), or the exit status."""
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
    return settings, cfg, entropy
