"""`ovpnkx relay` opens a fresh connection for every new device session, tls-crypt-v2's
P_CONTROL_HARD_RESET_CLIENT_V3 included (the reset that carries the wrapped client key)."""

import asyncio
import socket

import pytest

from ovpnkx import packet as pk
from ovpnkx_host.relay import Relay


class _Link:
    def __init__(self) -> None:
        self.sent = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


@pytest.mark.parametrize("opcode", [pk.P_CONTROL_HARD_RESET_CLIENT_V2, pk.P_CONTROL_HARD_RESET_CLIENT_V3])
def test_a_client_reset_starts_a_relayed_session(opcode):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    events = []

    async def main():
        relay = Relay(_Link(), "127.0.0.1", server.getsockname()[1], "udp", events.append)
        reset = bytes([opcode << 3]) + b"\x01" * 8 + b"\x0f\x00\x00\x01" + bytes(60)
        relay.from_device(reset)
        for _ in range(50):
            await asyncio.sleep(0.01)
            if relay.side not in (None, "connecting"):
                break
        relay.close_side()
        return relay.counts

    try:
        counts = asyncio.run(main())
        got = server.recv(2048)
    finally:
        server.close()
    assert counts["sessions"] == 1 and counts["to_server"] == 1 and counts["dropped"] == 0, (counts, events)
    assert got[0] >> 3 == opcode
