"""SerialTransport: one packet per serialframe frame over any byte port."""

from ovpnkx.linkmsg import time_reply
from ovpnkx.serialframe import encode_frame
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


def test_send_writes_one_frame_per_packet():
    port = FakePort(write_limit=5)  # a port that takes a few bytes per write
    t = SerialTransport(port, "serial:test")
    t.send(b"\x38" + bytes(range(256)))
    t.send(b"")
    assert bytes(port.written) == encode_frame(b"\x38" + bytes(range(256))) + encode_frame(b"")
    assert t.bytes_out == len(port.written) and t.name == "serial:test"


def test_receive_reassembles_across_chunks_and_drops_damage():
    a, b = encode_frame(b"first packet"), encode_frame(b"\x38second\x00")
    damaged = bytearray(encode_frame(b"damaged"))
    damaged[3] ^= 0x01
    # a link message (ovpnkx.linkmsg: payload starting with 0x00) is kept aside, not a packet
    when = encode_frame(time_reply(1796083200))
    stream = a + bytes(damaged) + when + b + encode_frame(b"x" * 1000)
    chunks = [stream[i:i + 7] for i in range(0, len(stream), 7)]
    t = SerialTransport(FakePort(chunks))
    assert t.host_time is None
    got = []
    for _ in range(len(chunks)):
        got.extend(t.receive())
    assert got == [b"first packet", b"\x38second\x00", b"x" * 1000]
    assert t.host_time == 1796083200
    assert t.decoder.errors["crc"] == 1 and t.bytes_in == len(stream)
    assert t.receive() == []


def test_wait_returns_on_an_unpollable_port():
    t = SerialTransport(FakePort())
    t.wait(1)
    t.wait(0)
    t.close()
