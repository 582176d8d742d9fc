"""A faulty TRNG sends nothing: `ovpnkx connect --runtime micropython --trng-fault X` vs `ovpnkx serve`.

The MicroPython client draws from the sim board's modelled TRNG through the
whole chain. With a fault the health tests must stop it before its first
packet (its session id is the first draw): the client fails naming the test
and the server never sees a packet (no "session" event, which `serve` prints
for the first datagram of a peer or an accepted TCP connection).
"""

import pytest

from ovpnkx_host import openvpn as ov

from harness import OvpnkxServer, run_connect, server_config

# fault -> health tests that may catch it first (sim board's claim: 0.5 bits/sample)
# Faults the health tests catch before the first output with practical certainty. A milder
# bias (0.85 against the sim's 0.5-bit claim) is caught only with high probability: the
# ~2560 samples before the first output hold two APT windows, each missed when its first
# sample is the rare value (0.15^2), and no RCT run of 41 (p ~ 0.6): SP 800-90B's health
# tests bound false alarms, not misses. `ovpnkx entropy` is the tool for such sources.
FAULTS = [("stuck", "RCT"), ("stuck=1", "RCT"), ("bias=0.99", "RCT|APT"), ("bias=0.02", "RCT|APT"),
          ("repeat=64", "RCT"), ("correlated=0.995", "RCT|APT"), ("bias=0.95", "RCT|APT")]
TESTS = {"RCT": "repetition count test (RCT)", "APT": "adaptive proportion test (APT)"}


def _run(pki, tmp_path, proto, extra, pings):
    conf = tmp_path / "server.conf"
    conf.write_text(server_config(pki, proto=proto))
    server = OvpnkxServer(str(conf))
    try:
        port = server.listening[proto]
        client = tmp_path / "client.ovpn"
        client.write_text(ov.client_config(pki, port, mode="p2mp", proto=proto))
        code, events, stderr = run_connect(str(client), "micropython", pings=pings, extra=extra)
    finally:
        served = server.stop()
    return code, events, stderr, served


@pytest.mark.parametrize("fault,tests", FAULTS, ids=[f for f, _ in FAULTS])
def test_faulty_trng_sends_nothing(pki, tmp_path, fault, tests):
    code, events, stderr, served = _run(pki, tmp_path, "udp", ("--trng-fault", fault), 1)
    assert code == 1, (events, stderr)
    assert "Traceback" not in stderr, stderr
    entropy, result = events[0], events[-1]
    assert entropy["event"] == "entropy" and entropy["fault"] == fault and entropy["state"] == "error"
    assert result["event"] == "result" and not result["ok"]
    reason = result["reason"]
    assert reason.startswith("entropy source failed: ")
    assert any(TESTS[t] in reason for t in tests.split("|")), reason
    assert [e["event"] for e in events] == ["entropy", "result"]  # not even "connecting"
    assert [e for e in served if e["event"] != "listening"] == [], served


def test_faulty_trng_opens_no_tcp_connection(pki, tmp_path):
    code, events, stderr, served = _run(pki, tmp_path, "tcp", ("--trng-fault", "stuck"), 1)
    assert code == 1 and TESTS["RCT"] in events[-1]["reason"], (events, stderr)
    assert not any(e["event"] == "session" for e in served), served


def test_healthy_sim_trng_completes(pki, tmp_path):
    code, events, stderr, served = _run(pki, tmp_path, "udp", (), 2)
    result = events[-1]
    assert code == 0, (result, stderr)
    assert events[0] == {"event": "entropy", "at_ms": 0, "source": "sim", "fault": None, "state": "ok",
                         "detail": "TrngEntropy over SimTrng: ok"}
    assert result["pings_received"] >= 2 and result["pings_sent"] >= 2
    assert [e["event"] for e in served].count("session") == 1


def test_bad_fault_and_cpython_are_refused(pki, tmp_path):
    client = tmp_path / "client.ovpn"
    client.write_text(ov.client_config(pki, 1, mode="p2mp", proto="udp"))
    code, events, stderr = run_connect(str(client), "micropython", extra=("--trng-fault", "melted"))
    assert code == 2 and "unknown SimTrng fault 'melted'" in stderr and events == []
    code, events, stderr = run_connect(str(client), "cpython", extra=("--trng-fault", "stuck"))
    assert code == 2 and "need --runtime micropython" in stderr and events == []
