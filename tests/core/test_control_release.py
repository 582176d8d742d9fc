"""A key_state whose exchange is over can lose its TLS engine (the session's
``release_tls``): the reliable layer stays, so a control packet that still arrives is
acked and dropped."""

from ovpnkx import packet as pk
from ovpnkx.control import KeyStateChannel
from ovpnkx.cookie import session_skip_to_pre_start


class _FakeTls:
    """Just enough of a TLS engine: a finished handshake that echoes nothing."""

    def __init__(self):
        self.handshake_complete = True
        self.fed = []

    def start(self):
        pass

    def feed(self, data):
        self.fed.append(bytes(data))

    def pending_ciphertext(self):
        return b""

    def read(self):
        return b""

    def write(self, data):
        pass


def _control(message_id, payload, acks=()):
    return pk.ControlPacket(pk.P_CONTROL_V1, 0, b"C" * 8, acks, b"S" * 8 if acks else None, message_id, payload)


def test_released_tls_late_control_is_acked_and_dropped():
    tls = _FakeTls()
    ch = KeyStateChannel(0, True, tls, 0, initial_packet_id=1)
    session_skip_to_pre_start(ch)
    ch.receive(_control(1, b"\x17\x03\x03early"), 0)
    assert tls.fed == [b"\x17\x03\x03early"]
    ch.tls = None  # what Session does with release_tls once the exchange is over
    ch.receive(_control(2, b"\x17\x03\x03late"), 10)
    assert tls.fed == [b"\x17\x03\x03early"]  # not fed: there is no engine any more
    acked = [acks for _, _, _, acks in ch.packets_to_send(20)]
    assert acked and 2 in acked[0]  # the peer hears it arrived, and stops resending
    ch.receive(_control(2, b"\x17\x03\x03late"), 30)  # its resend: acked again, nothing else
    assert 2 in [acks for _, _, _, acks in ch.packets_to_send(40)][0]
