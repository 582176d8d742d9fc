"""board_entropy(): the board's source, start-up tested; a failed source sends nothing."""

from ovpnkx.entropy import DeterministicEntropy, EntropyError, HostEntropy, TrngEntropy
from ovpnkx.errors import LocalProtocolError
from ovpnkx.noise import SimTrng
from ovpnkx.session import Session, SessionConfig
from ovpnkx_device.entropy_select import FailedEntropy, board_entropy, board_noise, describe

from _support import DATA_DIR, crypto_backend, raises

ROOT = DATA_DIR + "/../.."

# fault -> the health test that must catch it (with the sim board's claim of 0.5 bits)
FAULTS = (("stuck", "RCT"), ("stuck=1", "RCT"), ("bias=0.99", "RCT"), ("bias=0.01", "RCT"),
          ("repeat=64", "RCT"), ("correlated=0.995", "RCT"), ("bias=0.85", "APT"))


class SimNoiseModule:
    """boards/sim/noise.py as the ``noise`` module, over a deterministic physical source."""

    def __init__(self, seed=b"select"):
        self.ns = {}
        with open(ROOT + "/boards/sim/noise.py") as f:
            exec(f.read(), self.ns)
        self.seed = seed
        self.calls = []

    def make_entropy(self, fault=None):
        self.calls.append(fault)
        return self.ns["make_entropy"](fault=fault, source=DeterministicEntropy(self.seed).random_bytes)


class BrokenModule:
    def make_entropy(self):
        raise OSError(19)


def test_healthy_sim_source_is_started_at_once():
    mod = SimNoiseModule()
    e = board_entropy("sim", module=mod)
    assert mod.calls == [None]
    assert isinstance(e, TrngEntropy) and e.state == "ok" and e.error is None
    assert e.health.samples_tested >= 1024  # the start-up test ran before any request
    assert len(e.random_bytes(16)) == 16
    assert describe(e) == "TrngEntropy over SimTrng: ok"


def test_each_fault_leaves_an_error_state_naming_the_test():
    for fault, test in FAULTS:
        e = board_entropy("sim", fault, module=SimNoiseModule())
        assert e.state == "error", fault
        msg = str(raises(EntropyError, e.random_bytes, 8))
        assert msg.startswith("entropy source failed: ") and "(%s)" % test in msg, (fault, msg)
        assert msg == e.error and test in describe(e)
        raises(EntropyError, e.reseed)


def test_stuck_source_fails_in_the_startup_test():
    e = board_entropy("sim", "stuck", module=SimNoiseModule())
    assert "start-up test: repetition count test (RCT)" in e.error


def test_host_and_failures_to_make_a_source():
    assert isinstance(board_entropy("host"), HostEntropy)
    raises(LocalProtocolError, board_entropy, "host", "stuck")
    raises(LocalProtocolError, board_entropy, "sim", "melted", SimNoiseModule())
    e = board_entropy("rp2040", module=BrokenModule())
    assert isinstance(e, FailedEntropy) and e.state == "error"
    assert "rp2040" in e.error and "OSError" in e.error
    assert str(raises(EntropyError, e.random_bytes, 1)) == e.error
    raises(EntropyError, e.reseed)
    raises(EntropyError, e.startup)


class IdleTls:
    """A TLS engine that never says anything (enough to send a client's reset)."""

    handshake_complete = False

    def start(self):
        pass

    def pending_ciphertext(self):
        return b""

    def read(self):
        return None


def _no_tls():
    raise AssertionError("a TLS engine was made from a failed entropy source")


def test_client_session_cannot_start_from_a_failed_source():
    bad = board_entropy("sim", "stuck", module=SimNoiseModule())
    msg = str(raises(EntropyError, Session, SessionConfig(), bad, crypto_backend(), _no_tls, 0))
    assert "repetition count test (RCT)" in msg


def test_client_session_key_source_from_a_source_failing_at_reseed():
    # healthy for start-up and the first seed (2560 samples), stuck from 3000 on:
    # the session id comes out, the key_state's reseed fails, no Session exists
    e = TrngEntropy(SimTrng("stuck", fault_after=3000, source=DeterministicEntropy(b"r").random_bytes),
                    0.5, rct_cutoff=41, apt_cutoff=793)
    e.startup()
    msg = str(raises(EntropyError, Session, SessionConfig(), e, crypto_backend(), _no_tls, 0))
    assert "repetition count test (RCT)" in msg and e.state == "error"


def test_server_session_ends_without_sending_when_the_key_source_fails():
    client = Session(SessionConfig(), DeterministicEntropy(b"c"), crypto_backend(), IdleTls, 0)
    reset = client.packets_to_send(0)
    assert len(reset) == 1
    e = TrngEntropy(SimTrng("stuck", fault_after=3000, source=DeterministicEntropy(b"s").random_bytes),
                    0.5, rct_cutoff=41, apt_cutoff=793)
    server = Session(SessionConfig(is_server=True), e, crypto_backend(), _no_tls, 0)
    server.receive(reset[0], 5)
    assert server.closed and server.close_error
    assert "repetition count test (RCT)" in server.close_reason
    assert server.packets_to_send(10) == [] and server.channels == {} and server.key_sources == {}
    assert server.stats["packets_out"] == 0
    closed = [ev for ev in server.events() if ev.kind == "closed"]
    assert len(closed) == 1 and "RCT" in closed[0].reason


def test_board_noise_is_the_raw_source_under_board_entropy():
    noise = board_noise("sim", "stuck=1", module=SimNoiseModule())
    assert isinstance(noise, SimTrng) and noise.read_samples(100) == b"\x01" * 100  # untested, raw
    healthy = board_noise("sim", module=SimNoiseModule())
    assert set(healthy.read_samples(2000)) == {0, 1}
    raises(LocalProtocolError, board_noise, "host")
