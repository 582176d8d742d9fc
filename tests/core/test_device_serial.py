"""SerialTransport: packets over seriallink fragments on any byte port."""

from ovpnkx.linkmsg import time_reply
from ovpnkx.seriallink import Link
from ovpnkx_device.serial import SerialTransport


class FakePort:
    """A UART stand-in: ``incoming`` chunks are returned by read(), writes collected."""

    def __init__(self, chunks=(), write_limit=0):
        self.incoming = list(chunks)
        self.written = bytearray()
        self.write_limit = write_limit

    def read(self, n):
        if not self.incoming:
            return None
        chunk = self.incoming.pop(0)
        if len(chunk) > n:
            self.incoming.insert(0, chunk[n:])
            chunk = chunk[:n]
        return chunk

    def write(self, data):
        data = bytes(data)
        if self.write_limit:
            data = data[:self.write_limit]
        self.written += data
        return len(data)


class FakeClock:
    def __init__(self):
        self.t = 0

    def now_ms(self):
        return self.t


def test_packets_cross_between_two_transports():
    """Device and host ends (here two transports over fake ports): packets of any
    size arrive whole, in small frames, through a port that takes a few bytes a write."""
    clock = FakeClock()
    port_a, port_b = FakePort(write_limit=5), FakePort()
    a = SerialTransport(port_a, "serial:test", epoch=1, clock=clock)
    b = SerialTransport(port_b, "serial:peer", epoch=2, clock=clock)
    sent = [b"\x38" + bytes(range(256)), b"", b"x" * 1300]
    for p in sent[:2]:
        a.send(p)
    # a link message (ovpnkx.linkmsg: a packet starting with 0x00) is kept aside, not a packet
    a.send(time_reply(1796083200))
    a.send(sent[2])
    assert b.host_time is None
    got = []
    for _ in range(200):
        port_b.incoming.append(bytes(port_a.written))
        port_a.written = bytearray()
        got += b.receive()
        port_a.incoming.append(bytes(port_b.written))
        port_b.written = bytearray()
        a.receive()
        clock.t += 10
        if len(got) == len(sent) and a.link.idle:
            break
    assert got == sent and a.name == "serial:test" and b.host_time == 1796083200
    assert a.bytes_out > sum(len(p) for p in sent) and a.link.stats["fragments_out"] > 20


def test_receive_reads_a_bounded_amount_and_drops_damage():
    link = Link(9)
    wire = bytearray()
    for p in (b"first packet", b"\x00second\x00", b"x" * 1000):
        link.send(p, 0)
    while True:
        out = link.bytes_to_send(0)
        if not out:
            break
        wire += out
    damaged = bytearray(wire)
    damaged[5] ^= 0x01  # inside the first fragment
    chunks = [bytes(damaged[i:i + 7]) for i in range(0, len(damaged), 7)]
    t = SerialTransport(FakePort(chunks), epoch=3, clock=FakeClock())
    got = t.receive()  # one call reads at most 8 x 512 bytes, whatever waits
    assert t.bytes_in == min(len(damaged), 8 * 7)  # the fake port hands out 7 bytes a read
    for _ in range(len(chunks)):
        got += t.receive()
    assert t.decoder.errors["crc"] + t.decoder.errors["cobs"] == 1 and t.bytes_in == len(damaged)
    # the damaged first fragment is missing: nothing before it is delivered until resent
    assert got == [] and t.link.stats["fragments_in"] >= 10
    assert t.receive() == []


def test_wait_returns_on_an_unpollable_port():
    t = SerialTransport(FakePort(), epoch=0)
    t.wait(1)
    t.wait(0)
    t.close()
