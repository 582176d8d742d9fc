"""``socket`` for the simulated board: the unix port's sockets, loopback only.

Safety rule of the simulator: every address a socket connects, binds or sends to
must be 127.0.0.1; anything else raises OSError naming the address. Tuples
("127.0.0.1", port) are accepted like on lwIP boards. A board without Wi-Fi has no
``socket`` module (ImportError), as on a Pico without W.
"""

import simboard

if not simboard.has_wifi():
    raise ImportError("no module named 'socket' (board %s has no Wi-Fi)" % simboard.name())

import usocket as _u
from usocket import *  # noqa: F401,F403 constants

_LOCAL = ("127.0.0.1", "localhost")


def _refuse(what):
    raise OSError("simulated board: only 127.0.0.1 is reachable, not %r" % (what,))


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """Resolves only 127.0.0.1 and localhost."""
    if isinstance(host, bytes):
        host = host.decode()
    if host not in _LOCAL:
        _refuse(host)
    return [(AF_INET, t, p, "", _u.getaddrinfo("127.0.0.1", port)[0][-1])
            for (t, p) in ((SOCK_STREAM, 6), (SOCK_DGRAM, 17))
            if not type or t == type]


def _sockaddr(addr):
    # Accept lwIP-style (host, port) tuples; check raw sockaddr_in bytes.
    if isinstance(addr, tuple):
        return getaddrinfo(addr[0], addr[1])[0][-1]
    b = bytes(addr)
    family = b[0] | (b[1] << 8)
    if family != AF_INET or len(b) < 8 or b[4:8] != b"\x7f\x00\x00\x01":
        if family == AF_INET and len(b) >= 8:
            _refuse("%d.%d.%d.%d" % (b[4], b[5], b[6], b[7]))
        _refuse(b)
    return addr


class socket(_u.socket):
    """A unix-port socket that refuses every address but 127.0.0.1."""

    def connect(self, addr):
        return super().connect(_sockaddr(addr))

    def bind(self, addr):
        return super().bind(_sockaddr(addr))

    def sendto(self, data, addr):
        return super().sendto(data, _sockaddr(addr))
