"""HMAC_DRBG (SHA-256) against NIST CAVP answers, and its reseed counter."""

from ovpnkx.drbg import restore
from ovpnkx.entropy import HmacDrbg, ReseedRequired
from ovpnkx.errors import LocalProtocolError

from _support import load_json, raises, unhex

E32 = bytes(range(32))
N16 = bytes(range(100, 116))


def _run_case(case):
    drbg = HmacDrbg(unhex(case["entropy_input"]), unhex(case["nonce"]), unhex(case["personalization"]))
    if "entropy_input_reseed" in case:
        drbg.reseed(unhex(case["entropy_input_reseed"]), unhex(case["additional_input_reseed"]))
    first, second = case["additional_input"]
    drbg.generate(128, unhex(first))  # CAVP discards the first output
    return drbg.generate(128, unhex(second))


def _cases(file):
    return [c for c in load_json("hmac_drbg_cavp.json")["cases"] if c["file"] == file]


def test_cavp_no_reseed():
    cases = _cases("drbgvectors_no_reseed/HMAC_DRBG.rsp")
    assert len(cases) == 9
    for case in cases:
        assert _run_case(case) == unhex(case["returned_bits"]), (case["group"], case["count"])


def test_cavp_pr_false_with_reseed():
    cases = _cases("drbgvectors_pr_false/HMAC_DRBG.rsp")
    assert len(cases) == 6
    for case in cases:
        assert _run_case(case) == unhex(case["returned_bits"]), (case["group"], case["count"])


def test_cavp_groups_cover_personalization_and_additional_input():
    groups = set(c["file"] + c["group"] for c in load_json("hmac_drbg_cavp.json")["cases"])
    assert len(groups) == 8  # 2 files x (0|256 personalization) x (0|256 additional input)


def test_reseed_counter_and_interval():
    drbg = HmacDrbg(E32, N16, reseed_interval=2)
    assert drbg.reseed_counter == 1 and not drbg.reseed_required
    drbg.generate(10)
    drbg.generate(10)
    assert drbg.reseed_counter == 3 and drbg.reseed_required
    exc = raises(ReseedRequired, drbg.generate, 10)
    assert "reseed required" in str(exc)
    assert isinstance(exc, LocalProtocolError)
    drbg.reseed(bytes(32))
    assert drbg.reseed_counter == 1
    assert len(drbg.generate(10)) == 10


def test_a_snapshot_goes_on_where_the_drbg_stopped():
    drbg = HmacDrbg(bytes(32), bytes(16), b"p", reseed_interval=3)
    drbg.generate(40)
    snapshot = drbg.snapshot()
    expected = [drbg.generate(48), drbg.generate(16)]
    again = restore(snapshot)
    assert type(again) is HmacDrbg and [again.generate(48), again.generate(16)] == expected
    raises(ReseedRequired, again.generate, 1)  # the reseed counter came along
    again.reseed(bytes(range(32)))
    assert len(again.generate(8)) == 8


def test_outputs_differ_and_chain():
    drbg = HmacDrbg(E32, N16)
    a = drbg.generate(32)
    b = drbg.generate(32)
    assert a != b
    other = HmacDrbg(E32, N16, b"personal")
    assert other.generate(32) != a
    again = HmacDrbg(E32, N16)
    assert again.generate(32) == a and again.generate(32, b"extra") != b


def test_lengths():
    drbg = HmacDrbg(E32, N16)
    assert drbg.generate(0) == b""
    assert len(drbg.generate(1)) == 1
    assert len(drbg.generate(33)) == 33
    assert len(drbg.generate(65536)) == 65536


def test_misuse_is_local_error():
    raises(LocalProtocolError, HmacDrbg, bytes(31), N16)
    raises(LocalProtocolError, HmacDrbg, E32, bytes(15))
    raises(LocalProtocolError, HmacDrbg, E32, N16, b"", 0)
    drbg = HmacDrbg(E32, N16)
    raises(LocalProtocolError, drbg.generate, -1)
    raises(LocalProtocolError, drbg.generate, 65537)
    raises(LocalProtocolError, drbg.reseed, bytes(16))
    drbg.clear()
    raises(LocalProtocolError, drbg.generate, 1)
    raises(LocalProtocolError, drbg.reseed, bytes(32))
