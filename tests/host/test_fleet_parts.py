"""The parts of a fleet server and of `ovpnkx load`, without sockets.

Timer heap, the shared limits (max-clients, connect-freq-initial, the ifconfig
pool) across forked workers, the pool's addresses as openvpn 2.6 hands them
out, the config directives they come from, the cookie secret file, the event
writer's whole-line writes, and load's statistics.
"""

import asyncio
import json
import os
import threading
import time

import pytest

from ovpnkx.config import ConfigError, parse_config
from ovpnkx_host.admission import Admission
from ovpnkx_host.ifpool import IfconfigPool
from ovpnkx_host.load import percentile
from ovpnkx_host.loadgen import _missed, cause_of
from ovpnkx_host.eventwriter import EventWriter
from ovpnkx_host.serve import read_cookie_secret
from ovpnkx_host.timerheap import TimerHeap


def test_timer_heap_keeps_the_earliest_deadline_per_key():
    t = TimerHeap()
    assert t.arm("a", 50) and t.arm("b", 20)
    assert not t.arm("a", 80)  # later than armed: the 50 entry fires first, the owner re-arms then
    assert t.arm("a", 10)  # earlier: a new entry
    assert t.next_deadline() == 10
    assert t.pop_due(15) == ["a"]
    assert t.pop_due(15) == []  # disarmed; its stale 50 entry is skipped later
    t.cancel("b")
    assert t.next_deadline() is None and t.pop_due(1000) == []
    assert len(t) == 0


def _forked(fn) -> int:
    """Run ``fn`` in a forked child; its return value (0..255) as exit status."""
    pid = os.fork()
    if pid == 0:
        code = 255
        try:
            code = int(fn())
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_max_clients_holds_across_workers_and_a_dead_workers_share_comes_back():
    adm = Admission(3, (100, 10), 0, workers=2)
    try:
        adm.worker = 0
        assert adm.admit() and adm.admit()

        def worker1():
            adm.worker = 1
            return adm.admit() + 2 * adm.admit()  # only one slot left: 1 + 0

        assert _forked(worker1) == 1
        assert adm.clients() == 3 and not adm.admit()
        assert adm.reclaim(1) == 1 and adm.clients() == 2
        adm.release()
        assert adm.clients() == 1
    finally:
        adm.close()


def test_connect_freq_initial_counts_replies_and_proven_cookies_give_theirs_back():
    adm = Admission(10, (3, 10), 0)
    try:
        assert [adm.initial_allowed(100) for _ in range(4)] == [True, True, True, False]
        adm.initial_proven()
        adm.initial_proven()
        assert adm.initial_allowed(105) and not adm.initial_allowed(110)  # count 3, then 4 > 3
        assert adm.initial_allowed(111)  # a new period (openvpn: now > start + period)
    finally:
        adm.close()


def test_pool_entries_are_owned_once_across_workers():
    adm = Admission(10, (100, 10), 4, workers=2)
    try:
        got = [adm.acquire_address(), adm.acquire_address()]

        def worker1():
            adm.worker = 1
            return adm.acquire_address() * 10 + adm.acquire_address() + 100

        assert _forked(worker1) == 100 + 23  # entries 2 and 3
        assert adm.acquire_address() == -1
        adm.release_address(got[0])
        assert adm.acquire_address() == got[0]
        adm.reclaim(1)
        assert sorted([adm.acquire_address(), adm.acquire_address()]) == [2, 3]
    finally:
        adm.close()


def test_pool_addresses_as_openvpn_hands_them_out():
    # openvpn 2.6.14: server 10.9.0.0 255.255.255.0 -> pool 10.9.0.4 .. 10.9.0.251 (net30 by default)
    net30 = IfconfigPool("10.9.0.0", "255.255.255.0", "net30")
    assert net30.push == ["route 10.9.0.1", "topology net30"]
    assert net30.size == 62
    assert net30.ifconfig(0) == "ifconfig 10.9.0.6 10.9.0.5"
    assert net30.ifconfig(61) == "ifconfig 10.9.0.250 10.9.0.249"
    subnet = IfconfigPool("10.8.0.0", "255.255.0.0", "subnet")
    assert subnet.push == ["route-gateway 10.8.0.1", "topology subnet"]
    assert subnet.size == 65533  # 10.8.0.2 .. 10.8.255.254
    assert subnet.ifconfig(0) == "ifconfig 10.8.0.2 255.255.0.0"
    assert subnet.address(65532) == "10.8.255.254"
    p2p = IfconfigPool("10.7.0.0", "255.255.255.248", "p2p")  # a /29 keeps no reserve
    assert p2p.size == 4 and p2p.ifconfig(3) == "ifconfig 10.7.0.7 10.7.0.1"
    with pytest.raises(IndexError):
        subnet.ifconfig(65533)


def test_server_directives():
    text = ("server 10.8.0.0 255.255.0.0\ntopology subnet\nmax-clients 5000\nduplicate-cn\n"
            "connect-freq-initial 20 5\nca a\ncert b\nkey c\n")
    blobs = {"a": "-----BEGIN CERTIFICATE-----\n", "b": "-----BEGIN CERTIFICATE-----\n",
             "c": "-----BEGIN PRIVATE KEY-----\n"}
    cfg = parse_config(text, "s.conf", blobs.__getitem__, server=True)
    assert (cfg.server_network, cfg.server_netmask, cfg.topology) == ("10.8.0.0", "255.255.0.0", "subnet")
    assert cfg.max_clients == 5000 and cfg.duplicate_cn and cfg.connect_freq_initial == (20, 5)
    plain = parse_config("server 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\n", "s.conf", blobs.__getitem__,
                         server=True)
    assert plain.topology == "net30" and plain.max_clients == 1024 and not plain.duplicate_cn
    assert plain.connect_freq_initial == (100, 10)
    nopool = parse_config("server 10.8.0.0 255.255.255.0 nopool\nca a\ncert b\nkey c\n", "s.conf",
                          blobs.__getitem__, server=True)
    assert nopool.server_nopool and not plain.server_nopool
    for bad, words in [("server 10.8.0.1 255.255.255.0", "not a network"),
                       ("server 10.8.0.0 255.0.255.0", "not a network"),
                       ("server 10.0.0.0 255.0.0.0", "between /16 and /29"),
                       ("server 10.8.0.0 255.255.255.252", "between /16 and /29"), ("server 10.8.0.0", "server"),
                       ("topology star", "net30, p2p or subnet"), ("max-clients 0", "max-clients"),
                       ("connect-freq-initial 10", "connect-freq-initial")]:
        with pytest.raises(ConfigError) as err:
            parse_config(bad + "\nca a\ncert b\nkey c\n", "s.conf", blobs.__getitem__, server=True)
        assert "s.conf:1:" in str(err.value) and words in str(err.value), (bad, str(err.value))


def test_cookie_secret_file(tmp_path):
    hexfile = tmp_path / "cookie.hex"
    hexfile.write_text("00112233445566778899aabbccddeeff\n0011\n")
    assert read_cookie_secret(str(hexfile)) == bytes.fromhex("00112233445566778899aabbccddeeff0011")
    short = tmp_path / "short"
    short.write_text("0011")
    with pytest.raises(Exception, match="at least 16"):
        read_cookie_secret(str(short))
    junk = tmp_path / "junk"
    junk.write_text("not a key")
    with pytest.raises(Exception, match="not hex and not an OpenVPN static key"):
        read_cookie_secret(str(junk))


def test_event_writer_never_blocks_the_loop_and_writes_whole_lines():
    """A reader that does not read: the event loop goes on, lines beyond the limit are
    dropped and counted; once it reads, every write was whole lines of <= PIPE_BUF."""
    r, w = os.pipe()
    writer = EventWriter(True, {"keys"}, fd=w)
    writer.LIMIT = 200_000  # the pipe holds 64 KiB: the rest waits in the buffer, then is dropped

    async def burst() -> float:
        t0 = time.monotonic()
        for i in range(6000):
            writer({"event": "keys" if i % 2 else "ping", "peer": "127.0.0.1:%d" % i, "n": "x" * 40})
        return time.monotonic() - t0

    took = asyncio.run(burst())
    assert took < 2, "emitting stalled for %.1f s on a full pipe" % took
    data = bytearray()
    done = threading.Event()

    def drain():
        while not done.is_set():
            try:
                chunk = os.read(r, 65536)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            data.extend(chunk)

    os.set_blocking(r, False)
    t = threading.Thread(target=drain)
    t.start()
    writer.flush(10)
    time.sleep(0.1)  # the reader takes the last bytes
    done.set()
    t.join(10)
    os.close(r)
    os.close(w)
    lines = bytes(data).splitlines()
    keys = [json.loads(x) for x in lines if b'"keys"' in x]
    dropped = [json.loads(x) for x in lines if b"dropped_events" in x]
    assert keys and not any(b'"ping"' in x for x in lines)  # filtered
    # every line is written or counted as dropped (once or in several notes, as the writer ran)
    assert dropped and len(keys) + sum(d["count"] for d in dropped) == 3000, (len(keys), dropped)
    assert [k["peer"] for k in keys] == sorted((k["peer"] for k in keys), key=lambda p: int(p.split(":")[1]))


def test_event_writer_chunks_are_whole_lines_of_at_most_pipe_buf(monkeypatch):
    writes = []
    writer = EventWriter(True, None)
    monkeypatch.setattr(writer, "fd", 99)
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append((fd, data)) or len(data))
    writer._write([("x" * n + "\n").encode() for n in (100, 3000, 2000, 4000, 10)])
    assert [len(d) for _, d in writes] == [3102, 2001, 4012]
    assert all(fd == 99 and d.endswith(b"\n") for fd, d in writes)


def test_load_statistics():
    assert percentile([], 0.5) is None
    assert percentile(list(range(1, 101)), 0.5) == 50 and percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([7], 0.99) == 7
    # pings every 10 s: a gap up to 15 s is on time; each further interval is one ping missed
    assert [_missed(g, 10000) for g in (9000, 15000, 15001, 25000, 25001, 60000)] == [0, 0, 1, 1, 2, 5]
    assert _missed(60000, 0) == 0
    assert cause_of("TLS key negotiation failed to occur within 20 seconds (no answer from the peer)") == \
        "TLS key negotiation failed to occur within N seconds"
    assert cause_of("ping-restart: nothing from the peer for 60 s") == "ping-restart"


def test_udp_datagrams_wait_for_a_full_send_buffer_instead_of_being_dropped():
    """A send buffer that is full (EAGAIN): serve queues what it sends, bounded, in order,
    and sends it when the socket is writable again."""
    import socket

    from ovpnkx_host.server import UdpListener

    class _Server:
        udp = None

    class _FullSocket:
        """A real UDP socket's descriptor (always writable) whose sendto is full until told."""

        def __init__(self) -> None:
            self.real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.full = True
            self.sent: list = []

        def fileno(self) -> int:
            return self.real.fileno()

        def sendto(self, data: bytes, addr) -> int:
            if self.full:
                raise BlockingIOError(11, "full")
            self.sent.append(data)
            return len(data)

    sock = _FullSocket()

    async def run() -> UdpListener:
        listener = UdpListener(_Server(), sock)  # type: ignore[arg-type]
        listener.BACKLOG = 150
        listener.start(asyncio.get_running_loop())
        for i in range(200):
            listener.sendto(b"%05d" % i, ("127.0.0.1", 9))
        assert len(listener.backlog) == 150 and listener.dropped == 50 and not sock.sent
        sock.full = False  # room again: the loop sees the socket writable
        for _ in range(100):
            if not listener.backlog:
                break
            await asyncio.sleep(0.01)
        listener.sendto(b"later", ("127.0.0.1", 9))  # straight out once the queue is empty
        return listener

    listener = asyncio.run(run())
    sock.real.close()
    assert sock.sent == [b"%05d" % i for i in range(150)] + [b"later"]
    assert listener.stats() == {"queued": 150, "dropped": 50}
