"""SP 800-90B §4.4 health tests: cutoffs and the RCT/APT state machines."""

from ovpnkx.entropy import EntropyError, HealthTests
from ovpnkx.health_cutoff import apt_cutoff, rct_cutoff
from ovpnkx.errors import LocalProtocolError

from _support import raises

# SP 800-90B cutoffs at alpha = 2^-20: RCT C = 1 + ceil(20 / H) and APT
# C = 1 + CRITBINOM(W, 2^-H, 1 - alpha), W = 1024 for binary sources and 512
# for others. Checked against 80-digit arithmetic on the host.
RCT_TABLE = {0.2: 101, 0.4: 51, 0.5: 41, 0.6: 35, 0.8: 26, 1: 21, 2: 11, 3: 8, 4: 6, 5: 5, 6: 5, 7: 4, 8: 4}
APT_TABLE_1024 = {0.2: 941, 0.4: 840, 0.5: 793, 0.6: 748, 0.8: 664, 1: 589}
APT_TABLE_512 = {0.5: 410, 1: 311, 2: 177, 3: 103, 4: 62, 5: 39, 6: 25, 7: 18, 8: 13}

# jitterentropy's published tables (alpha = 2^-30 and 2^-60, W = 512,
# H = 1/osr, the corrected count "C = 2 + qbinom(1 - alpha, 511, 2^-H)"):
# an independent check of the binomial computation.
JENT_APT = [325, 422, 459, 477, 488, 494, 499, 502, 505, 507, 508, 509, 510, 511, 512]
JENT_APT_PERMANENT = [355, 447, 479, 494, 502, 507, 510, 512, 512, 512, 512, 512, 512, 512, 512]


def test_rct_cutoffs():
    for h, c in RCT_TABLE.items():
        assert rct_cutoff(h) == c, (h, rct_cutoff(h), c)
    assert rct_cutoff(2.0) == 11  # the standard's worked example


def test_apt_cutoffs_standard_formula():
    for h, c in APT_TABLE_1024.items():
        assert apt_cutoff(h, 1024) == c, (h, apt_cutoff(h, 1024), c)
    for h, c in APT_TABLE_512.items():
        assert apt_cutoff(h, 512) == c, (h, apt_cutoff(h, 512), c)


def test_apt_cutoffs_reproduce_jitterentropy_tables():
    assert [apt_cutoff(1 / osr, 512, 30, True) for osr in range(1, 16)] == JENT_APT
    assert [apt_cutoff(1 / osr, 512, 60, True) for osr in range(1, 16)] == JENT_APT_PERMANENT


def test_corrected_cutoff_is_zero_or_one_higher():
    for h in (0.2, 0.5, 1, 2, 4, 8):
        for w in (512, 1024):
            d = apt_cutoff(h, w, corrected=True) - apt_cutoff(h, w)
            assert d in (0, 1), (h, w, d)


def test_cutoff_arguments():
    raises(LocalProtocolError, rct_cutoff, 0)
    raises(LocalProtocolError, rct_cutoff, -1.0)
    raises(LocalProtocolError, apt_cutoff, 0, 512)
    raises(LocalProtocolError, apt_cutoff, 1.0, 1)
    assert apt_cutoff(32, 512) == 2  # one match already fails
    assert apt_cutoff(32, 512, corrected=True) == 2


def test_rct_fires_exactly_at_cutoff():
    t = HealthTests(1.0, True)
    assert t.rct_cutoff == 21 and t.window == 1024 and t.apt_cutoff == 589
    t.feed(b"\x00\x01" + b"\x01" * 19)  # a run of 20 ones
    exc = raises(EntropyError, t.feed, b"\x01")
    assert str(exc).startswith("entropy source failed: repetition count test (RCT)"), str(exc)
    assert "21 identical samples" in str(exc)


def test_rct_run_is_broken_by_any_other_value():
    t = HealthTests(1.0, True)
    for _ in range(100):
        t.feed(b"\x01" * 20 + b"\x00" * 20)
    assert t.failure is None and t.samples_tested == 4000


def test_apt_fires_on_a_too_common_value():
    t = HealthTests(1.0, True)
    pattern = b"\x01\x01\x00" * 400  # two thirds ones, runs of two: the RCT stays quiet
    exc = raises(EntropyError, t.feed, pattern)
    assert "adaptive proportion test (APT)" in str(exc) and "RCT" not in str(exc), str(exc)


def test_apt_counts_the_first_sample_of_each_window():
    t = HealthTests(1.0, True)
    # each window: first sample 1, then 587 more ones among 1023: count 588 < 589
    window = b"\x01" + b"\x01\x01\x00" * 151 + b"\x01\x00" * 285
    assert len(window) == 1024 and sum(window) == 588
    for _ in range(5):
        t.feed(window)
    assert t.failure is None
    one_more = b"\x01" + b"\x01\x01\x00" * 152 + b"\x01\x00" * 283 + b"\x01"
    assert len(one_more) == 1024 and sum(one_more) == 589
    exc = raises(EntropyError, t.feed, one_more)
    assert "seen 589 times" in str(exc), str(exc)


def test_non_binary_window_and_phase_in_message():
    t = HealthTests(2.0, False)
    assert t.window == 512 and t.apt_cutoff == 177 and t.rct_cutoff == 11
    # 0x00 every other sample, the others all distinct: APT, never RCT
    samples = bytearray()
    for i in range(256):
        samples.append(0)
        samples.append(1 + i % 255)
    exc = raises(EntropyError, t.feed, bytes(samples), "start-up test")
    assert str(exc).startswith("entropy source failed: start-up test: adaptive proportion test (APT)"), str(exc)


def test_failure_is_sticky():
    t = HealthTests(1.0, True)
    first = raises(EntropyError, t.feed, b"\x00" * 21)
    again = raises(EntropyError, t.feed, b"\x00\x01")
    assert str(first) == str(again) == t.failure


def test_cutoff_overrides_are_checked():
    t = HealthTests(0.5, True, rct=41, apt=793)
    assert (t.rct_cutoff, t.apt_cutoff) == (41, 793)
    raises(LocalProtocolError, HealthTests, 0.5, True, 1, 793)
    raises(LocalProtocolError, HealthTests, 0.5, True, 41, 1025)
