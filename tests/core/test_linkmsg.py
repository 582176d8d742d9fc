"""The serial link's own messages: the time request and reply (ovpnkx.linkmsg)."""

from _support import raises

from ovpnkx.errors import RemoteProtocolError
from ovpnkx.linkmsg import TIME_REQUEST, is_link_message, is_time_request, parse_time_reply, time_reply


def test_time_round_trip():
    reply = time_reply(1796083200)  # 2026-12-01
    assert reply == b"\x00TIME" + (1796083200).to_bytes(8, "big")
    assert is_link_message(reply) and not is_time_request(reply)
    assert parse_time_reply(reply) == 1796083200


def test_request_is_no_reply_and_no_openvpn_packet():
    assert is_link_message(TIME_REQUEST) and is_time_request(TIME_REQUEST)
    assert parse_time_reply(TIME_REQUEST) is None
    # every OpenVPN packet has an opcode of 1 or more in its top 5 bits
    for opcode in range(1, 12):
        assert not is_link_message(bytes([opcode << 3]) + b"TIME")
    assert not is_link_message(b"")


def test_malformed_and_implausible_replies_are_refused():
    raises(RemoteProtocolError, parse_time_reply, b"\x00TIME" + bytes(7))
    raises(RemoteProtocolError, parse_time_reply, b"\x00TIME" + bytes(9))
    raises(RemoteProtocolError, parse_time_reply, time_reply(1609459200))  # 2021-01-01: a reset RTC
    raises(RemoteProtocolError, parse_time_reply, b"\x00TIME" + b"\xff" * 8)
    assert parse_time_reply(b"\x00OTHER") is None
