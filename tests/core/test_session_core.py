"""Session behaviour on both runtimes, with the runtime's own TLS engine and crypto."""

from ovpnkx import keystate as ks
from ovpnkx import packet as pk
from ovpnkx.cookie import encode_tlvs

from _sessions import Pair, client_session, kinds


def test_pair_exchanges_keys_and_pings():
    pair = Pair()
    assert pair.pings_both_ways(2)
    keys = [kinds(pair.events[side], "keys") for side in ("client", "server")]
    assert keys[0][0].key_id == keys[1][0].key_id == 0
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0


# -- peer input before our TLS engine started (item 9 of issue 9) ------------------------------

SERVER_SID = b"\x51" * 8


def _from_server(client, opcode, message_id, payload=b"", acks=()):
    p = pk.ControlPacket(opcode, 0, SERVER_SID, acks, client.session_id if acks else None, message_id, payload)
    return p.to_bytes()


def test_control_before_our_reset_is_acked_waits_for_the_tls_engine():
    c = client_session()
    c.packets_to_send(0)  # our reset, unacked
    c.receive(_from_server(c, pk.P_CONTROL_HARD_RESET_SERVER_V2, 0), 10)  # acks nothing
    c.receive(_from_server(c, pk.P_CONTROL_V1, 1, b"\x17\x03\x03\x00\x05hello"), 20)
    c.packets_to_send(20)
    assert not c.closed, c.close_reason  # was: "feed() before start()" (a local-misuse error)
    assert c.channels[0].state.state == ks.S_PRE_START
    # the ack arrives: the engine starts and reads what waited, a TLS record it refuses
    c.receive(_from_server(c, pk.P_ACK_V1, None, acks=(0,)), 30)
    c.packets_to_send(30)
    assert c.closed and c.close_error
    assert "feed()" not in c.close_reason and "TLS" in c.close_reason, c.close_reason


def test_held_control_goes_to_the_tls_engine_in_order():
    # the server's ClientHello reply races ahead of its ack of our reset: the handshake still completes
    pair = Pair()
    held = []

    def server_to_client(p):
        op = p[0] >> 3
        if op == pk.P_CONTROL_HARD_RESET_SERVER_V2 and not held:
            q = pk.parse_control(p)
            held.append(pk.ControlPacket(op, 0, q.session_id, (), None, 0, b"").to_bytes())
            return [held[0]]  # its reset without the ack of ours
        return [p]

    pair.to_client = server_to_client
    assert pair.pings_both_ways(1)


# -- the burst (reliable_schedule_now) -----------------------------------------------------

def test_first_packet_of_the_peer_resends_our_unacked_reset_at_once():
    c = client_session()
    assert len(c.packets_to_send(0)) == 1
    c.packets_to_send(1000)  # timeout_ms 1000: resent, next after 2 s more
    c.packets_to_send(3000)
    assert c.get_timer() == 7000
    c.receive(_from_server(c, pk.P_CONTROL_HARD_RESET_SERVER_V2, 0), 3500)  # a peer that came up late
    out = [pk.parse_control(p) for p in c.packets_to_send(3500)]
    assert [p.opcode for p in out if p.message_id == 0] == [pk.P_CONTROL_HARD_RESET_CLIENT_V2]
    assert c.get_timer() == 3500 + 1000  # backoff back at the initial timeout


# -- the early-negotiation TLVs of a 2.6 hard reset (ssl.c parse_early_negotiation_tlvs) -----

def test_hard_reset_payload_is_read_as_tlvs():
    c = client_session()
    c.packets_to_send(0)
    flags = encode_tlvs([(pk.TLV_TYPE_EARLY_NEG_FLAGS, b"\x00\x01"), (0x7777, b"skipped")])
    c.receive(_from_server(c, pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, flags, acks=(0,)), 10)
    c.packets_to_send(10)
    assert not c.closed and c.channels[0].peer_reset_seen  # read (the session's _early_negotiation)


def test_truncated_tlv_in_a_hard_reset_ends_the_key_state():
    c = client_session()
    c.packets_to_send(0)
    c.receive(_from_server(c, pk.P_CONTROL_HARD_RESET_SERVER_V2, 0, b"\x00\x01\x00\x05ab", acks=(0,)), 10)
    assert c.closed and c.close_error and "TLV" in c.close_reason, c.close_reason
