"""FaultProxy: the seeded UDP proxy of the link-fault bench and the path-drop tests."""

import select
import socket
import time

import pytest

from ovpnkx_host.faultproxy import FaultProxy


class Echo:
    """A UDP server on 127.0.0.1 that answers every datagram with itself."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got: list = []

    def serve(self, until: float) -> None:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            if not select.select([self.sock], [], [], left)[0]:
                continue
            data, addr = self.sock.recvfrom(2048)
            self.got.append(data)
            self.sock.sendto(data, addr)


def _exchange(seed: int, **faults) -> tuple:
    """200 datagrams through a proxy; (what the server got, what came back, stats)."""
    echo = Echo()
    with FaultProxy(echo.port, seed=seed, **faults) as proxy:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect(("127.0.0.1", proxy.port))
        client.setblocking(False)
        back: list = []

        def drain() -> None:
            try:
                while True:
                    back.append(client.recv(2048))
            except BlockingIOError:
                pass
        for i in range(200):
            client.send(b"%03d" % i + bytes(20))
            echo.serve(time.monotonic() + 0.002)
            drain()
        echo.serve(time.monotonic() + 0.2)
        drain()
        client.close()
        stats = proxy.stats()
    echo.sock.close()
    return echo.got, back, stats


def test_faults_follow_the_seed():
    a = _exchange(7, drop=0.2, dup=0.1, corrupt=0.1)
    b = _exchange(7, drop=0.2, dup=0.1, corrupt=0.1)
    assert a[0] == b[0] and a[2] == b[2]  # the same seed, the same pattern
    c = _exchange(8, drop=0.2, dup=0.1, corrupt=0.1)
    assert c[0] != a[0]
    up = a[2]["to_server"]
    assert up["in"] == 200 and 20 < up["dropped"] < 60 and 5 < up["duplicated"] < 40 and 5 < up["corrupted"] < 40
    assert up["out"] == up["in"] - up["dropped"] + up["duplicated"] == len(a[0])
    sent = {b"%03d" % i + bytes(20) for i in range(200)}
    damaged = [d for d in a[0] if d not in sent]
    assert 0 < len(set(damaged)) <= up["corrupted"]  # (a corrupted datagram may be doubled too)
    assert all(len(d) == 23 for d in damaged)


def test_reorder_swaps_neighbours():
    got, _, stats = _exchange(3, reorder=0.3)
    order = [int(d[:3]) for d in got]
    assert sorted(order) == list(range(200)) and order != list(range(200))
    assert stats["to_server"]["reordered"] > 20


@pytest.mark.parametrize("seconds", [0.3])
def test_outage_refuses_then_recovers(seconds):
    echo = Echo()
    with FaultProxy(echo.port) as proxy:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect(("127.0.0.1", proxy.port))
        client.settimeout(0.2)
        client.send(b"before")
        echo.serve(time.monotonic() + 0.05)
        assert client.recv(100) == b"before"
        proxy.outage(seconds)
        client.send(b"during")
        with pytest.raises(ConnectionRefusedError):  # the ICMP port unreachable
            client.recv(100)
        time.sleep(seconds + 0.1)
        client.send(b"after")
        echo.serve(time.monotonic() + 0.05)
        assert client.recv(100) == b"after"
        assert proxy.stats()["outages"] == 1 and echo.got == [b"before", b"after"]
        client.close()
    echo.sock.close()
