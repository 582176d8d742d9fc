"""``network`` for the simulated board: Wi-Fi modelled by the host's loopback.

On a board without Wi-Fi (Pico, no W) there is no ``network`` module at all, as on
the real firmware, so importing it raises ImportError. With Wi-Fi, WLAN.connect()
"associates" at once and the interface's address is 127.0.0.1; sockets (the sim's
``socket`` module) only reach 127.0.0.1.
"""

import simboard

if not simboard.has_wifi():
    raise ImportError("no module named 'network' (board %s has no Wi-Fi)" % simboard.name())

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = -3
STAT_NO_AP_FOUND = -2
STAT_CONNECT_FAIL = -1
STAT_GOT_IP = 3

_hostname = "ovpnkx-sim"


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


def country(code=None):
    return "XX" if code is None else None


class WLAN:
    """Station/AP interface; connect() succeeds immediately, address 127.0.0.1."""

    IF_STA = STA_IF
    IF_AP = AP_IF

    _state = {}  # interface -> [active, ssid]: one interface per id, as on a board

    def __init__(self, interface=STA_IF):
        self._if = interface
        self._state.setdefault(interface, [False, None])

    @property
    def _active(self):
        return self._state[self._if][0]

    @_active.setter
    def _active(self, value):
        self._state[self._if][0] = value

    @property
    def _ssid(self):
        return self._state[self._if][1]

    @_ssid.setter
    def _ssid(self, value):
        self._state[self._if][1] = value

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not self._active:
            self._ssid = None

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._active:
            raise OSError("WLAN not active")
        self._ssid = ssid or "sim-loopback"

    def disconnect(self):
        self._ssid = None

    def isconnected(self) -> bool:
        return self._active and self._ssid is not None

    def status(self, param=None):
        if param == "rssi":
            return -40
        return STAT_GOT_IP if self.isconnected() else STAT_IDLE

    def ifconfig(self, config=None):
        if config is None:
            return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def ipconfig(self, key):
        return {"addr4": ("127.0.0.1", "255.0.0.0"), "gw4": "127.0.0.1", "dhcp4": True}.get(key)

    def config(self, *args, **kwargs):
        if args:
            key = args[0]
            if key == "mac":
                import machine

                return b"\x02" + machine.unique_id()[:5]
            if key in ("ssid", "essid"):
                return self._ssid or ""
            if key == "hostname":
                return _hostname
            raise ValueError("unknown config param")

    def scan(self):
        return [(b"sim-loopback", b"\x02\x00\x00\x00\x00\x01", 1, -40, 3, False)]
