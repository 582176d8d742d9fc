"""The device application's settings (/ovpnkx.json) and its boot-time error reports."""

import os

from ovpnkx.config import ConfigError
from ovpnkx_device.app import DEFAULTS, SettingsError, check_settings, load_ovpn, load_settings, main

from _support import raises

TMP = "/tmp"
# this run's own names (two runs at once share no file); each test removes what it wrote
_RUN = str(int.from_bytes(os.urandom(4), "big"))
_written = []


def _path(name):
    return "%s/ovpnkx-app-test-%s-%s" % (TMP, _RUN, name)


def _write(name, text):
    path = _path(name)
    with open(path, "w") as f:
        f.write(text)
    _written.append(path)
    return path


def _remove_written():
    while _written:
        try:
            os.remove(_written.pop())
        except OSError:
            pass


def test_defaults_fill_in():
    s = check_settings({"transport": "serial"})
    assert s["transport"] == "serial" and s["uart"] is None and s["baud"] == 115200
    assert s["pings"] == 0 and s["reconnect"] is True and s["backoff_s"] == [1, 30] and s["entropy"] == "board"
    assert sorted(s) == sorted(DEFAULTS)


def test_every_documented_value_is_accepted():
    s = check_settings({"transport": "tcp", "uart": "repl", "baud": 9600, "pings": 3, "reconnect": False,
                        "backoff_s": [0.5, 0.5], "entropy": "host", "wifi": {"ssid": "x", "password": "y"},
                        "compact_gcm": True,
                        "board": "rp2040", "data_uart": {"id": 1, "tx": 4, "rx": 5}})
    assert s["uart"] == "repl" and s["backoff_s"] == [0.5, 0.5]
    assert check_settings({"transport": "udp", "uart": 2})["uart"] == 2


def test_wrong_settings_name_the_key():
    cases = [({"transport": "carrier-pigeon"}, "transport must be"),
             ({}, "transport must be"),
             ({"transport": "serial", "uart": "usb"}, "uart must be"),
             ({"transport": "serial", "uart": True}, "uart must be"),
             ({"transport": "serial", "baud": 0}, "baud must be"),
             ({"transport": "serial", "pings": -1}, "pings must be"),
             ({"transport": "serial", "pings": False}, "pings must be"),
             ({"transport": "serial", "reconnect": 1}, "reconnect must be"),
             ({"transport": "serial", "backoff_s": [5, 1]}, "backoff_s must be"),
             ({"transport": "serial", "backoff_s": [0, 1]}, "backoff_s must be"),
             ({"transport": "serial", "entropy": "urandom"}, "entropy must be"),
             ({"transport": "serial", "wifi": "home"}, "wifi must be"),
             ({"transport": "serial", "compact_gcm": 1}, "compact_gcm must be"),
             ({"transport": "serial", "pigs": 2}, "unknown key 'pigs'")]
    for raw, words in cases:
        exc = raises(SettingsError, check_settings, raw)
        assert words in str(exc), (raw, str(exc))
    assert "JSON object" in str(raises(SettingsError, check_settings, ["serial"]))
    assert issubclass(SettingsError, ConfigError)


def test_load_settings_reports_missing_and_bad_json():
    try:
        assert "cannot read" in str(raises(SettingsError, load_settings, _path("none.json")))
        bad = _write("bad.json", "{transport: serial")
        assert "not valid JSON" in str(raises(SettingsError, load_settings, bad))
        good = _write("good.json", '{"transport": "udp", "pings": 2}')
        assert load_settings(good)["pings"] == 2
    finally:
        _remove_written()


def test_ovpn_files_are_read_beside_it():
    try:
        missing = _write("missing.ovpn", "client\nremote 127.0.0.1 1194\nca nowhere.crt\ncert c\nkey k\n")
        exc = raises(ConfigError, load_ovpn, missing)
        assert "nowhere.crt" in str(exc)
        assert "cannot read" in str(raises(ConfigError, load_ovpn, _path("absent.ovpn")))
    finally:
        _remove_written()


def test_main_reports_boot_then_config_error():
    try:
        out = []
        bad = _write("main.json", '{"transport": "serial", "baud": "fast"}')
        assert main(bad, _path("absent.ovpn"), out.append) == 2
        assert [e["event"] for e in out] == ["boot", "config_error"]
        assert out[0]["transport"] is None and "baud must be" in out[1]["reason"]
        out = []
        ok = _write("main2.json", '{"transport": "serial"}')
        assert main(ok, _path("absent.ovpn"), out.append) == 2
        assert out[0]["transport"] == "serial" and "cannot read" in out[1]["reason"]
    finally:
        _remove_written()


def test_crypto_backend_loads_when_a_key_needs_it():
    import sys

    from ovpnkx_device.app import LazyCrypto

    if sys.implementation.name != "micropython":
        return  # crypto_mp is MicroPython's backend (cryptolib): this runs on the MicroPython unix port
    sys.modules.pop("ovpnkx.crypto_mp", None)
    crypto = LazyCrypto(True)
    assert crypto.supports("AES-256-GCM") and crypto.supports("AES-128-CBC") and not crypto.supports("BF-CBC")
    # asked only which ciphers it has, it keeps no backend and its code leaves (a board's heap)
    assert crypto.backend is None and "ovpnkx.crypto_mp" not in sys.modules
    key = bytes(range(32))
    sealed = crypto.aead("AES-256-GCM", key).seal(bytes(12), b"ping", b"ad")
    assert crypto.backend is not None and crypto.backend.compact_gcm is True and "ovpnkx.crypto_mp" in sys.modules
    assert crypto.name == "micropython-cryptolib" and crypto.supports("AES-128-GCM")
    assert crypto.aead("AES-256-GCM", key).open(bytes(12), sealed, b"ad") == b"ping"


def _trng(seed):
    from ovpnkx.entropy import TrngEntropy
    from ovpnkx.hostentropy import DeterministicEntropy
    from ovpnkx.noise import SimTrng

    source = TrngEntropy(SimTrng(source=DeterministicEntropy(seed).random_bytes), 0.5)
    source.startup()
    return source


def test_parked_entropy_draws_what_the_source_would_with_its_code_out_of_the_heap():
    import sys

    from ovpnkx.entropy import EntropyError
    from ovpnkx_device.app import ParkedEntropy

    twin = _trng(b"a")
    parked = ParkedEntropy(_trng(b"a"))
    parked.reseed_ahead()  # before a session: the next key_state's reseed, and its first bytes
    twin.reseed()
    ahead = twin.random_bytes(160)
    twin.park(_Loader(b"n"))
    parked.park(_Loader(b"n"))  # as prepare does next: the noise side goes, the bytes drawn ahead stay
    if sys.implementation.name == "micropython":  # unload() acts on MicroPython only
        assert "ovpnkx.entropy" not in sys.modules and "ovpnkx.drbg" not in sys.modules
    assert parked.random_bytes(8) == ahead[:8]  # the session id
    parked.reseed()  # the first key_state's: made ahead
    assert parked.reseed_count == twin.reseed_count == 1
    assert parked.random_bytes(112) == ahead[8:120]  # its key source
    assert parked.random_bytes(64) == twin.random_bytes(64)  # more than is left: from the DRBG
    parked.reseed()  # a later key_state: a real reseed, what was left ahead dropped, its own drawn
    twin.reseed()
    ahead = twin.random_bytes(160)
    assert parked.random_bytes(112) == ahead[:112] and parked.reseed_count == 2
    assert parked.random_bytes(4) == ahead[112:116]  # its reneg jitter: no call into the chain
    assert parked.random_bytes(64) == twin.random_bytes(64)
    # a source that fails at a reseed gives nothing more
    stuck = ParkedEntropy(_trng(b"b"))
    stuck.reseed_ahead()
    stuck.park(_Loader(b"c", fault="stuck"))
    stuck.reseed()  # made ahead
    stuck.random_bytes(8)
    err = raises(EntropyError, stuck.reseed_ahead)  # the noise side comes back stuck
    assert stuck.state == "error" and "start-up" in stuck.error and str(err) == stuck.error
    assert str(raises(EntropyError, stuck.random_bytes, 8)) == stuck.error


class _Loader:
    """A parked source's loader: a new modelled TRNG from ``seed`` for each reseed."""

    def __init__(self, seed, fault=None):
        self.seed = seed
        self.fault = fault

    def load(self):
        from ovpnkx.hostentropy import DeterministicEntropy
        from ovpnkx.noise import SimTrng

        return SimTrng(fault=self.fault, source=DeterministicEntropy(self.seed).random_bytes)

    def release(self):
        pass
