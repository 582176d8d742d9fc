"""UDP transport of the device loop on real 127.0.0.1 sockets (both runtimes).

- receive() takes a bounded batch: a flood waits in the socket, not in the heap;
- an ICMP port unreachable (ECONNREFUSED) is counted and reported once, never
  the end of the transport (openvpn goes on retrying too).
"""

import socket

from ovpnkx_device.transport import MAX_BATCH, UdpTransport


def _addr(port):
    return socket.getaddrinfo("127.0.0.1", port, 0, socket.SOCK_DGRAM)[0][-1]


def _peer():
    """A UDP socket bound to some free port of 127.0.0.1 (the unix port has no getsockname)."""
    for port in range(47311, 47511):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(_addr(port))
        except OSError:
            s.close()
            continue
        return s, port
    raise AssertionError("no free UDP port")


def _drain(t):
    sizes, got = [], []
    for _ in range(1000):
        batch = t.receive()
        if not batch:
            break
        sizes.append(len(batch))
        got += batch
    return sizes, got


def test_udp_receive_takes_a_bounded_batch():
    peer, port = _peer()
    t = UdpTransport("127.0.0.1", port)
    try:
        t.send(b"hello")
        data, addr = peer.recvfrom(100)
        assert data == b"hello"
        n = 3 * MAX_BATCH + 5
        for i in range(n):
            peer.sendto(bytes([i]) * 10, addr)
        sizes, got = _drain(t)
    finally:
        t.close()
        peer.close()
    assert got == [bytes([i]) * 10 for i in range(n)]
    assert max(sizes) == MAX_BATCH and len(sizes) == 4, sizes


def test_udp_port_unreachable_is_counted_not_fatal():
    peer, port = _peer()
    peer.close()  # nothing listens there now: sends come back as ICMP port unreachable
    t = UdpTransport("127.0.0.1", port)
    try:
        t.send(b"first")
        assert t.receive() == []
        t.send(b"second")  # may itself report the first ICMP; never raises
        assert t.receive() == []
        assert t.refused >= 1
        assert len(t.warnings) == 1 and "ICMP port unreachable" in t.warnings[0], t.warnings
        # the server comes up: its answers get through, and a later refusal is reported again
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(_addr(port))
        t.send(b"third")
        data, addr = peer.recvfrom(100)
        assert data == b"third"
        peer.sendto(b"answer", addr)
        assert t.receive() == [b"answer"]
        peer.close()
        t.send(b"fourth")
        t.receive()
        t.send(b"fifth")
        t.receive()
        assert len(t.warnings) == 2
    finally:
        t.close()
