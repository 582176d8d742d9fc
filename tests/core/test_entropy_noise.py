"""Noise sources with fake registers, and the boards' entropy files."""

from ovpnkx.entropy import DeterministicEntropy, EntropyError, TrngEntropy
from ovpnkx.health_cutoff import apt_cutoff, rct_cutoff
from ovpnkx.errors import LocalProtocolError
from ovpnkx.noise import (
    RNG_DATA_ESP32,
    ROSC_BASE_RP2040,
    TRNG_BASE_RP2350,
    Esp32Rng,
    HostNoise,
    Rp2040Rosc,
    Rp2350Trng,
    SimTrng,
)

from _support import DATA_DIR, raises

ROOT = DATA_DIR + "/../.."


class FakeRegs:
    """``read``/``write`` over a dict; ``feeds`` maps an address to a function giving each read."""

    def __init__(self, feeds=None, values=None):
        self.feeds = feeds or {}
        self.values = dict(values or {})
        self.reads = []
        self.writes = []

    def read(self, addr):
        if len(self.reads) < 64:  # keep the log small (MicroPython heap)
            self.reads.append(addr)
        if addr in self.feeds:
            return self.feeds[addr]()
        return self.values.get(addr, 0)

    def write(self, addr, value):
        self.writes.append((addr, value))
        self.values[addr] = value


def _words(seed):
    d = DeterministicEntropy(seed)
    return lambda: int.from_bytes(d.random_bytes(4), "little")


def test_esp32_refuses_while_rf_is_off():
    regs = FakeRegs({RNG_DATA_ESP32: _words(b"esp")})
    rng = Esp32Rng(regs=regs, rf_active=lambda: False)
    exc = raises(EntropyError, rng.read_samples, 8)
    assert "Wi-Fi" in str(exc) and "pseudo-random" in str(exc)
    assert regs.reads == []  # refused before touching the register


def test_esp32_allow_pseudo_warns_on_every_read():
    warnings = []
    rng = Esp32Rng(regs=FakeRegs({RNG_DATA_ESP32: lambda: 0x04030201}), rf_active=lambda: False,
                   allow_pseudo=True, warn=warnings.append)
    assert rng.read_samples(6) == b"\x01\x02\x03\x04\x01\x02"
    rng.read_samples(1)
    assert len(warnings) == 2 and "NOT safe" in warnings[0] and rng.pseudo_reads == 2


def test_esp32_reads_the_rng_data_register():
    assert RNG_DATA_ESP32 == 0x3FF75144
    regs = FakeRegs({RNG_DATA_ESP32: lambda: 0xDDCCBBAA})
    rng = Esp32Rng(regs=regs, rf_active=lambda: True)
    assert rng.read_samples(5) == b"\xaa\xbb\xcc\xdd\xaa"
    assert regs.reads == [RNG_DATA_ESP32, RNG_DATA_ESP32]
    assert (rng.bits_per_sample, rng.binary) == (8, False)


def test_esp32_stuck_register_fails_the_rct():
    e = TrngEntropy(Esp32Rng(regs=FakeRegs({RNG_DATA_ESP32: lambda: 0}), rf_active=lambda: True), 2.0)
    assert "repetition count test (RCT)" in str(raises(EntropyError, e.random_bytes, 1))


def test_rp2040_rosc_reads_randombit():
    bits = [1, 0, 0, 1, 1, 1, 0]
    it = iter(bits)
    status = ROSC_BASE_RP2040 + 0x18
    regs = FakeRegs({ROSC_BASE_RP2040 + 0x1C: lambda: 0xFFFFFFFE | next(it)}, {status: 0x80001000})
    rosc = Rp2040Rosc(regs=regs)
    assert ROSC_BASE_RP2040 + 0x1C == 0x4006001C
    assert rosc.read_samples(len(bits)) == bytes(bits)
    assert (rosc.bits_per_sample, rosc.binary) == (1, True)


def test_rp2040_rosc_not_running_is_refused():
    rosc = Rp2040Rosc(regs=FakeRegs(values={ROSC_BASE_RP2040 + 0x18: 0x00001000}))
    assert "not running" in str(raises(EntropyError, rosc.read_samples, 4))


def _rp2350_regs(words):
    regs = FakeRegs(values={TRNG_BASE_RP2350 + 0x110: 1})
    it = iter(words)
    for i in range(6):
        regs.feeds[TRNG_BASE_RP2350 + 0x114 + 4 * i] = lambda: next(it)
    return regs


def test_rp2350_trng_setup_and_ehr_bits():
    words = [0x00000005, 0, 0, 0, 0, 0x80000000, 0xFFFFFFFF, 0, 0, 0, 0, 0] + [0] * 6
    regs = _rp2350_regs(words)
    trng = Rp2350Trng(regs=regs, sample_cnt1=300)
    out = trng.read_samples(200)
    b = TRNG_BASE_RP2350
    assert b == 0x400F0000
    assert regs.writes == [(b + 0x12C, 0), (b + 0x10C, 0), (b + 0x130, 300), (b + 0x138, 0x0E),
                           (b + 0x108, 0xFFFFFFFF), (b + 0x12C, 1)]
    assert out[:4] == b"\x01\x00\x01\x00"  # LSB first from EHR_DATA0
    assert out[191] == 1 and sum(out[:192]) == 3  # bit 31 of EHR_DATA5
    assert out[192:200] == b"\x01" * 8
    trng.read_samples(1)
    assert len(regs.writes) == 6  # configured once


def test_rp2350_trng_that_never_fills_is_refused():
    trng = Rp2350Trng(regs=FakeRegs())
    assert "did not fill" in str(raises(EntropyError, trng.read_samples, 1))
    raises(LocalProtocolError, Rp2350Trng, FakeRegs(), -1)


def test_sim_trng_model():
    bits = SimTrng(source=DeterministicEntropy(b"m").random_bytes).read_samples(20000)
    assert set(bits) == {0, 1}
    ones = sum(bits)
    assert 10000 < ones < 10900  # P(1) = 0.52 plus a little stickiness
    assert SimTrng("stuck=1", source=DeterministicEntropy(b"m").random_bytes).read_samples(50) == b"\x01" * 50
    rep = SimTrng("repeat=3", source=DeterministicEntropy(b"m").random_bytes).read_samples(300)
    assert all(rep[i] == rep[i + 1] == rep[i + 2] for i in range(0, 300, 3))
    later = SimTrng("stuck", fault_after=100, source=DeterministicEntropy(b"m").random_bytes)
    first = later.read_samples(100)
    assert 0 < sum(first) < 100 and later.read_samples(50) == bytes(50)
    for bad in ("melted", "bias=2", "repeat=0", "correlated=x"):
        raises(LocalProtocolError, SimTrng, bad)


def test_host_noise():
    n = HostNoise()
    assert len(n.read_samples(100)) == 100 and (n.bits_per_sample, n.binary) == (8, False)


def _board(name):
    ns = {}
    with open(ROOT + "/boards/" + name + "/noise.py") as f:
        exec(f.read(), ns)
    return ns


def test_board_constants_match_the_computed_cutoffs():
    for name, window in (("sim", 1024), ("esp32", 512), ("rp2040", 1024), ("rp2350", 1024)):
        b = _board(name)
        h = b["MIN_ENTROPY_CLAIM"]
        assert b["RCT_CUTOFF"] == rct_cutoff(h), name
        assert b["APT_CUTOFF"] == apt_cutoff(h, window), name
    assert _board("esp32")["MIN_ENTROPY_CLAIM"] == Esp32Rng.MIN_ENTROPY_CLAIM
    assert _board("rp2040")["MIN_ENTROPY_CLAIM"] == Rp2040Rosc.MIN_ENTROPY_CLAIM
    assert _board("rp2350")["MIN_ENTROPY_CLAIM"] == Rp2350Trng.MIN_ENTROPY_CLAIM
    assert _board("sim")["MIN_ENTROPY_CLAIM"] == SimTrng.MIN_ENTROPY_CLAIM


def test_board_make_entropy_with_fake_hardware():
    sim = _board("sim")["make_entropy"](source=DeterministicEntropy(b"b").random_bytes)
    assert len(sim.random_bytes(32)) == 32
    assert "RCT" in str(raises(EntropyError, _board("sim")["make_entropy"]("stuck").random_bytes, 1))
    esp = _board("esp32")["make_entropy"](regs=FakeRegs({RNG_DATA_ESP32: _words(b"e")}), rf_active=lambda: True,
                                          personalization=b"x")
    assert len(esp.random_bytes(32)) == 32 and esp.health.window == 512
    off = _board("esp32")["make_entropy"](regs=FakeRegs(), rf_active=lambda: False, personalization=b"x")
    raises(EntropyError, off.startup)
    d = DeterministicEntropy(b"rosc")
    regs = FakeRegs({ROSC_BASE_RP2040 + 0x1C: lambda: d.random_bytes(1)[0] & 1},
                    {ROSC_BASE_RP2040 + 0x18: 0x80001000})
    rp = _board("rp2040")["make_entropy"](regs=regs, personalization=b"x")
    rp.startup()
    assert rp.health.samples_tested == 1024 + 2560 + 1280 and len(rp.random_bytes(8)) == 8
    words = _words(b"trng")
    regs = FakeRegs(values={TRNG_BASE_RP2350 + 0x110: 1})
    for i in range(6):
        regs.feeds[TRNG_BASE_RP2350 + 0x114 + 4 * i] = words
    assert len(_board("rp2350")["make_entropy"](regs=regs, personalization=b"x").random_bytes(8)) == 8
