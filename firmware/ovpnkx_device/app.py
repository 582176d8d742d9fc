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

from ovpnkx._compat import TYPE_CHECKING, unload

if TYPE_CHECKING:
    from typing import Any

CONFIG = "/ovpnkx.json"
OVPN = "/client.ovpn"
PREFIX = "OVPNKX "
# the one-time work (settings, config, Wi-Fi, entropy) lives in .settings, loaded while
# booting only; its names stay reachable here for the tests and tools that import them
_SETUP = ("DEFAULTS", "INSTEAD", "WIFI_TIMEOUT_MS", "SettingsError", "check_settings", "load_settings",
          "load_ovpn", "tls_refusal", "make_entropy", "wifi_up")


def __getattr__(name: str) -> "Any":
    if name in _SETUP:
        from . import settings

        return getattr(settings, name)
    raise AttributeError(name)


def emit(record: dict) -> None:
    """One console line ``OVPNKX {json}``, written as it is made: the result's is ~1 KB,
    which a board's heap may not have in one piece at the end of a session."""
    out = sys.stdout
    out.write(PREFIX)
    json.dump(record, out)
    out.write("\n")


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


def native_code_kept() -> bool:
    """Whether this firmware keeps a native (viper) module's machine code until a soft reset,
    so that every import of one takes more memory for good: the ESP32's commits it to
    executable memory of the IDF heap (``esp_native_code_commit``); rp2's is a GC block that
    goes with the module (``boards/*/board.json``, ``stock_firmware.native_code``)."""
    sim = _sim()
    if sim is not None:
        return bool(sim.native_code_kept())
    return sys.platform == "esp32"


class BoardNoise:
    """The board's noise source for a parked ``TrngEntropy`` (``park``): its driver and
    the health tests are loaded for a reseed and leave the heap after it, so that a
    session holds only the DRBG of the entropy chain. The health tests' viper loop goes
    with them only where its machine code goes with the module (``native_code_kept``):
    on the ESP32 it is imported once and stays."""

    MODULES = ("noise", "ovpnkx.noise", "ovpnkx.noise_esp32", "ovpnkx.noise_rp2040", "ovpnkx.noise_rp2350",
               "ovpnkx.noise_sim", "ovpnkx.health", "ovpnkx.health_portable")
    NATIVE = ("ovpnkx._health_viper",)  # its check's verdict stays on the package either way

    def __init__(self) -> None:
        self.released = self.MODULES if native_code_kept() else self.MODULES + self.NATIVE

    def load(self) -> "Any":
        """A new driver of this board's noise source: the board module's ``make_noise``
        (its registers; on the sim, the model and ``--trng-fault`` behind them), or where it
        has none (the ``sim`` board, whose driver is the model) ``entropy_select``'s. Not
        ``make_entropy``: a reseed needs the driver only, not a whole chain around it."""
        import noise  # type: ignore[import-not-found,unused-ignore]  # the board's, see boards/

        make = getattr(noise, "make_noise", None)
        if make is not None:
            return make()
        from .entropy_select import board_noise

        try:
            return board_noise()
        finally:
            unload("ovpnkx_device.entropy_select")

    def release(self) -> None:
        """The driver's and the health tests' code out of the heap."""
        for name in self.released:
            if "." in name:
                unload(name)
            else:
                sys.modules.pop(name, None)


class ParkedEntropy:
    """The board's TRNG chain (``ovpnkx.entropy.TrngEntropy``) with its code out of the heap
    between draws: only its state stays (``TrngEntropy.snapshot``, the DRBG's included),
    and each call brings the code back (``ovpnkx_device.parked.park_call``), draws and
    lets it go.

    A key_state's ``reseed`` draws that key_state's bytes right after it (key source, reneg
    jitter), so that the chain's code comes into the heap once per key_state. Before a
    session, ``reseed_ahead`` (``ovpnkx_device.prepare``) makes the first key_state's reseed
    and draws the session's first bytes (session id too) while the session's code is not in
    the heap yet. A reseed drops what is left of the bytes drawn after the one before."""

    def __init__(self, entropy: "Any") -> None:
        self._ahead = b""  # drawn right after the last key_state's reseed, for it
        self._reseeded = False  # that reseed is made: the next reseed() is it
        self._call("", entropy)  # sets _snapshot, and state, error, reseed_count as the source's

    def _call(self, method: str, entropy: "Any" = None, *args: "Any") -> "Any":
        from .parked import park_call

        try:
            return park_call(self, entropy, method, *args)
        finally:
            del park_call
            unload("ovpnkx_device.parked")

    def random_bytes(self, n: int) -> bytes:
        """As ``TrngEntropy.random_bytes``."""
        ahead = self._ahead
        if 0 < n <= len(ahead):
            self._ahead = ahead[n:]
            return ahead[:n]
        return self._call("random_bytes", None, n)  # type: ignore[no-any-return]

    def reseed(self) -> None:
        """As ``TrngEntropy.reseed``, and the key_state's bytes drawn right after it."""
        if self._reseeded:
            self._reseeded = False
        else:
            self._call("reseed")

    def reseed_ahead(self) -> None:
        """The next key_state's reseed now, and the next session's first bytes drawn after it."""
        self._call("reseed_ahead")

    def park(self, loader: "Any") -> None:
        """As ``TrngEntropy.park``."""
        self._call("park", None, loader)

    def reset(self) -> None:
        """As ``TrngEntropy.reset``; what was drawn ahead is dropped."""
        self._call("reset")


class LazyCrypto:
    """The crypto backend (``ovpnkx.crypto_mp``) that loads when the first data key (or
    tls-crypt) needs it and stays: the TLS handshake, where a board's heap peaks, runs
    without its code. Asked only which ciphers it offers, it loads and lets go again."""

    def __init__(self, compact_gcm: bool) -> None:
        self.compact_gcm = compact_gcm
        self.backend = None  # type: Any

    def _new(self) -> "Any":
        from ovpnkx.crypto_mp import MicroPythonCrypto

        return MicroPythonCrypto(self.compact_gcm)

    def supports(self, cipher: str) -> bool:
        """As ``MicroPythonCrypto.supports``."""
        if self.backend is not None:
            return bool(self.backend.supports(cipher))
        try:
            return bool(self._new().supports(cipher))
        finally:
            unload("crypto_mp")

    def __getattr__(self, name: str) -> "Any":
        if self.backend is None:
            self.backend = self._new()
        return getattr(self.backend, name)


def run_once(settings: dict, cfg: "Any", entropy: "Any", out: "Any") -> dict:
    """One session (connect .. closed); returns its ``result`` record."""
    result = {"event": "result", "ok": False, "reason": ""}  # type: dict
    # entropy, transport and date: by code that leaves the heap before the session's comes
    from .prepare import prepare

    try:
        transport, why = prepare(settings, cfg, entropy, out)
    finally:
        del prepare
        unload("ovpnkx_device.prepare")
    if why is not None:
        result["reason"] = why
        out(result)
        return result
    from ovpnkx.tls_mbedtls import MbedTlsEngine

    # the session's engines share one mbedTLS context, as openvpn's key_states share one SSL_CTX:
    # a renegotiation's engine then parses no certificate or key, and loads no config or
    # certinfo code, while the old TLS session still holds its buffers (its peak on a board)
    context = []  # type: list

    def peer_policy() -> "Any":  # when the server's certificate is checked (ovpnkx.servercheck)
        from ovpnkx.config import engine_options

        try:
            return engine_options(cfg)["peer"]
        finally:
            del engine_options
            unload("config")

    def new_engine() -> "Any":
        if context:
            return MbedTlsEngine(False, None, b"", b"", peer=peer_policy, context=context)
        # the config's parser module, for the engine's arguments only: it leaves the heap again
        from ovpnkx.config import engine_args, engine_options

        try:
            options = engine_options(cfg)
            options["context"] = context
            return MbedTlsEngine(False, *engine_args(cfg), **options)
        finally:
            del engine_args, engine_options
            unload("config")

    # the session's first TLS engine sets up mbedTLS's session (a 16 KB buffer in one piece)
    # before the session's code comes in, while the heap is still whole; a renegotiation's
    # takes the place of the one it supersedes (ovpnkx.session's _freeing_tls_of)
    gc.collect()
    ready = []  # type: list
    try:
        ready.append(new_engine())
        ready[0].allocate()
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 (the session makes its engine again and reports what is wrong)
        del ready[:]
    from .runner import run_client

    def tls_factory() -> "Any":
        return ready.pop() if ready else new_engine()

    def capture(record: dict) -> None:
        if record.get("event") == "result":
            result.clear()
            result.update(record)
            if transport is not None:
                result["wire_in"] = transport.bytes_in
                result["wire_out"] = transport.bytes_out
                result["frame_errors"] = transport.decoder.errors
                st = transport.link.stats
                result["link"] = {k: st[k] for k in  # in one string: a board interns none of them
                                  "repeats lost timeouts dropped give_ups resyncs rx_resyncs discarded".split()}
        out(result if record.get("event") == "result" else record)

    pings = settings["pings"]
    timeout_s = (cfg.hand_window + 10 + 3 * pings * max(cfg.ping, 2)) if pings else 0
    gc.collect()  # start the session on a compacted heap: its peak is what a board must hold
    # one pass over the remotes per call: the reconnect and backoff of ovpnkx.json are ours
    run_client(cfg, entropy, LazyCrypto(settings["compact_gcm"]), tls_factory, ask_ekm=False,
               platform=board_name(settings), pings=pings, timeout_s=timeout_s, emit=capture,
               transport=transport, retry=False, key_fingerprint=settings["fingerprint"])
    return result


def main(config: str = CONFIG, ovpn: str = OVPN, out: "Any" = emit) -> int:
    """Boot, then sessions until done (``pings`` reached) or for ever. Exit status."""
    from .settings import boot

    booted = boot(config, ovpn, out)
    del boot
    unload("ovpnkx_device.settings")  # the one-time code leaves the heap before the first session
    unload("config")  # the parser's entry point: the parsed config (ovpnkx.clientconfig) is what stays
    if isinstance(booted, int):
        return booted
    settings, cfg, entropy = booted
    booted = None  # type: ignore[assignment]  # the source is the parked one's alone
    if getattr(entropy, "snapshot", None) is not None:  # the board's TRNG chain
        entropy = ParkedEntropy(entropy)
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
