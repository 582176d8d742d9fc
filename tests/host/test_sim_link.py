"""The uart link model alone, on a fake clock (no processes, no PTYs)."""

import pytest

from ovpnkx_sim.launcher import parse_trng_fault
from ovpnkx_sim.link import LinkModel
from ovpnkx_sim.boards import list_boards, load_board


def test_clean_line_delivers_everything_in_order():
    link = LinkModel(baud=0)
    link.feed(b"hello", 0.0)
    assert link.take(0.0) == b"hello"
    assert link.stats == {"in": 5, "out": 5, "dropped": 0, "duplicated": 0, "corrupted": 0}


def test_baud_paces_bytes_at_ten_bits_each():
    link = LinkModel(baud=115200)
    link.feed(b"x" * 1152, 0.0)  # 1152 bytes * 10 bits = 0.1 s
    assert link.take(0.0) == b""
    assert len(link.take(0.0999)) == 1150  # byte k arrives at k / 11520 s
    assert len(link.take(0.1001)) == 2
    assert link.next_due() is None


def test_bytes_entering_a_busy_line_queue_behind():
    link = LinkModel(baud=10000)  # 1 ms a byte
    link.feed(b"ab", 0.0)
    link.feed(b"c", 0.0005)
    assert link.next_due() == pytest.approx(0.001)
    assert link.take(0.0025) == b"ab"
    assert link.take(0.0031) == b"c"


def test_latency_delays_the_first_byte():
    link = LinkModel(baud=0, latency_ms=20)
    link.feed(b"z", 1.0)
    assert link.take(1.019) == b""
    assert link.take(1.0201) == b"z"


def test_drop_dup_corrupt_extremes():
    assert _run(drop=1.0) == b""
    assert _run(dup=1.0) == b"aabbcc"
    out = _run(corrupt=1.0)
    assert len(out) == 3
    for got, want in zip(out, b"abc"):
        assert bin(got ^ want).count("1") == 1  # exactly one bit flipped


def _run(**kw):
    link = LinkModel(baud=0, seed=1, **kw)
    link.feed(b"abc", 0.0)
    return link.take(1.0)


def test_same_seed_same_noise():
    data = bytes(range(256)) * 8
    runs = []
    for _ in range(2):
        link = LinkModel(baud=0, drop=0.1, dup=0.1, corrupt=0.1, seed=42)
        link.feed(data, 0.0)
        runs.append((link.take(1.0), dict(link.stats)))
    assert runs[0] == runs[1]
    out, stats = runs[0]
    assert len(out) == len(data) - stats["dropped"] + stats["duplicated"]
    assert stats["dropped"] and stats["duplicated"] and stats["corrupted"]


def test_settings_are_validated():
    link = LinkModel()
    for bad in ({"drop": 1.5}, {"dup": -0.1}, {"baud": -1}, {"latency_ms": -1}, {"speed": 1}):
        with pytest.raises(ValueError):
            link.set(**bad)
    link.set(drop=0.5, baud=9600)
    assert link.settings()["drop"] == 0.5 and link.byte_time == pytest.approx(10 / 9600)


def test_trng_fault_forms():
    for ok in ("stuck", "stuck=1", "bias=0.7", "repeat=4", "correlated=0.3"):
        assert parse_trng_fault(ok) == ok
    for bad in ("stuck=2", "bias=1.5", "repeat=0", "repeat=x", "noisy", "bias"):
        with pytest.raises(ValueError):
            parse_trng_fault(bad)
    assert parse_trng_fault(None) is None


def test_board_descriptions():
    names = list_boards()
    assert {"esp32", "rp2040", "rp2040w", "rp2350", "rp2350w", "sim"} <= set(names)
    for name in names:
        b = load_board(name)
        assert b["name"] == name and isinstance(b["heap"], int) and b["heap"] > 32 * 1024
        assert isinstance(b["wifi"], bool) and b["trng"]["source"] and b["serial"]
        assert b["heap_source"]
    assert load_board("rp2040")["wifi"] is False and load_board("rp2040w")["wifi"] is True
    assert load_board("rp2040w")["heap"] < load_board("rp2040")["heap"]
    from ovpnkx_sim.boards import refusal, supported_boards

    assert set(supported_boards()) == {"esp32", "rp2040w", "rp2350w", "sim"}
    assert "no `tls` module" in refusal(load_board("rp2040")) and "use rp2040w" in refusal(load_board("rp2040"))
    assert refusal(load_board("rp2040w")) is None
    with pytest.raises(KeyError):
        load_board("nosuchboard")


def test_manifests_name_existing_files():
    import os

    for name in list_boards():
        board = load_board(name)
        path = os.path.join(board["dir"], board["manifest"])
        seen = []

        def package(pkg, base_path="."):
            seen.append(os.path.join(board["dir"], base_path, pkg))

        def module(mod, base_path="."):
            seen.append(os.path.join(board["dir"], base_path, mod))

        with open(path) as f:
            exec(f.read(), {"include": lambda p: None, "package": package, "module": module,
                            "require": lambda *a, **k: None})
        assert seen, path
        for p in seen:
            assert os.path.exists(p), "%s names missing %s" % (path, p)
