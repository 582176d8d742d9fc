"""The client loop (ovpnkx_device.runner) against an in-process server Session, in real time.

The transport hands the client's packets to the server session and the server's
back, and can duplicate or corrupt the server's data packets on the way.
"""

import time

from ovpnkx.config import parse_config
from ovpnkx.entropy import DeterministicEntropy
from ovpnkx_device.runner import run_client

from _sessions import is_data, read, server_config, server_session, tls_factory
from _support import crypto_backend


class _Loop:
    """A transport whose far end is a server Session; ``mangle(packet)`` -> packets."""

    name = "loop"

    def __init__(self, server, mangle=None):
        self.server = server
        self.mangle = mangle
        self.t0 = time.time()
        self.closed = False

    def _now(self):
        return int((time.time() - self.t0) * 1000)

    def send(self, packet):
        self.server.receive(packet, self._now())

    def wait(self, timeout_ms):
        t = self.server.get_timer()
        wait = timeout_ms if t is None else max(0, min(timeout_ms, t - self._now()))
        time.sleep(min(wait, 50) / 1000)

    def receive(self):
        out = []
        for p in self.server.packets_to_send(self._now()):
            out.extend(self.mangle(p) if self.mangle else [p])
        return out

    def close(self):
        self.closed = True


def _client_cfg():
    text = "client\nremote 127.0.0.1 1194 udp\nremote-cert-tls server\nhand-window 20\n"
    for tag, name in (("ca", "ca.crt"), ("cert", "client.crt"), ("key", "client.key")):
        text += "<%s>\n%s</%s>\n" % (tag, read(name).decode(), tag)
    return parse_config(text, "client.ovpn")


def _run(mangle, pings=2):
    server = server_session(server_config(ping_ms=1000, ping_restart_ms=10000), seed=b"runner/s", now=0)
    transport = _Loop(server, mangle)
    records = []
    code = run_client(_client_cfg(), DeterministicEntropy(b"runner/c"), crypto_backend(), tls_factory(False),
                      pings=pings, timeout_s=30, emit=records.append, transport=transport)
    return code, records


def test_a_duplicated_and_a_corrupted_data_packet_do_not_fail_the_run():
    seen = []

    def mangle(p):
        if not is_data(p):
            return [p]
        seen.append(p)
        if len(seen) == 1:
            return [p, p]  # a duplicate: a replay to the client
        if len(seen) == 2:
            return [p[:-1] + bytes((p[-1] ^ 1,)), p]  # a corrupted copy (bad tag), then the real one
        return [p]

    code, records = _run(mangle)
    result = records[-1]
    assert result["event"] == "result" and result["ok"], result
    assert code == 0
    assert result["decrypt_errors"] == 2, result  # dropped and counted, as openvpn does
    assert result["pings_received"] >= 2 and result["pings_sent"] >= 2
    assert len([r for r in records if r["event"] == "decrypt_error"]) == 2
