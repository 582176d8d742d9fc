from ovpnkx import keystate as ks
from ovpnkx import keystate_graph
from ovpnkx.errors import LocalProtocolError

from _support import raises

EVENTS = (ks.EV_RESET_QUEUED, ks.EV_RESET_SKIPPED, ks.EV_PEER_PACKET, ks.EV_RESET_ACKED,
          ks.EV_KEY_SENT, ks.EV_KEY_RECEIVED, ks.EV_SEND_ACKED, ks.EV_KEYS_GENERATED, ks.EV_ERROR)


def _run(is_server, events):
    k = ks.KeyState(0, is_server)
    for e in events:
        k.handle(e)
    return k


CLIENT_PATH = (ks.EV_RESET_QUEUED, ks.EV_RESET_ACKED, ks.EV_KEY_SENT, ks.EV_KEY_RECEIVED,
               ks.EV_SEND_ACKED, ks.EV_KEYS_GENERATED)
SERVER_PATH = (ks.EV_RESET_QUEUED, ks.EV_RESET_ACKED, ks.EV_KEY_RECEIVED, ks.EV_KEY_SENT,
               ks.EV_SEND_ACKED, ks.EV_KEYS_GENERATED)


def test_state_values_are_openvpn_26():
    assert (ks.S_ERROR, ks.S_UNDEF, ks.S_INITIAL, ks.S_PRE_START_SKIP, ks.S_PRE_START) == (-1, 0, 1, 2, 3)
    assert (ks.S_START, ks.S_SENT_KEY, ks.S_GOT_KEY, ks.S_ACTIVE, ks.S_GENERATED_KEYS) == (4, 5, 6, 7, 8)
    assert len(ks.STATE_NAMES) == 10
    assert ks.STATE_NAMES[ks.S_PRE_START_SKIP] == "S_PRE_START_SKIP"
    for e in EVENTS:
        assert ks.EVENT_NAMES[e].startswith("EV_")


def test_client_order():
    k = ks.KeyState(0, False)
    assert k.state == ks.S_INITIAL
    seen = [k.handle(e) for e in CLIENT_PATH]
    assert seen == [ks.S_PRE_START, ks.S_START, ks.S_SENT_KEY, ks.S_GOT_KEY, ks.S_ACTIVE, ks.S_GENERATED_KEYS]
    assert k.history == [ks.S_INITIAL] + seen
    assert k.state_name == "S_GENERATED_KEYS"


def test_server_order():
    k = ks.KeyState(0, True)
    seen = [k.handle(e) for e in SERVER_PATH]
    assert seen == [ks.S_PRE_START, ks.S_START, ks.S_GOT_KEY, ks.S_SENT_KEY, ks.S_ACTIVE, ks.S_GENERATED_KEYS]


def test_server_stateless_cookie_path():
    k = ks.KeyState(0, True)
    assert k.handle(ks.EV_RESET_SKIPPED) == ks.S_PRE_START_SKIP
    assert k.handle(ks.EV_PEER_PACKET) == ks.S_PRE_START
    assert k.handle(ks.EV_RESET_ACKED) == ks.S_START
    # a client never skips its reset
    c = ks.KeyState(0, False)
    raises(LocalProtocolError, c.handle, ks.EV_RESET_SKIPPED)


def test_roles_cannot_take_each_others_order():
    c = _run(False, (ks.EV_RESET_QUEUED, ks.EV_RESET_ACKED))
    exc = raises(LocalProtocolError, c.handle, ks.EV_KEY_RECEIVED)
    assert "EV_KEY_RECEIVED" in str(exc) and "S_START" in str(exc)
    assert c.state == ks.S_START
    s = _run(True, (ks.EV_RESET_QUEUED, ks.EV_RESET_ACKED))
    raises(LocalProtocolError, s.handle, ks.EV_KEY_SENT)
    assert s.state == ks.S_START


def test_keys_need_both_key_method2_messages():
    for is_server, path in ((False, CLIENT_PATH), (True, SERVER_PATH)):
        for stop in range(4):  # INITIAL, PRE_START, START, one key message only
            k = _run(is_server, path[:stop])
            raises(LocalProtocolError, k.handle, ks.EV_KEYS_GENERATED)
        for stop in (4, 5):  # both key messages known (2.4/2.5 timing), S_ACTIVE (2.6)
            k = _run(is_server, path[:stop])
            assert k.handle(ks.EV_KEYS_GENERATED) == ks.S_GENERATED_KEYS
            # late acks are not reported any more
            raises(LocalProtocolError, k.handle, ks.EV_SEND_ACKED)
    early = _run(False, CLIENT_PATH[:4])
    assert early.state == ks.S_GOT_KEY
    early = _run(True, SERVER_PATH[:4])
    assert early.state == ks.S_SENT_KEY
    raises(LocalProtocolError, _run(True, SERVER_PATH[:3]).handle, ks.EV_KEYS_GENERATED)


def test_forbidden_pairs_raise_and_keep_state():
    allowed = set()
    for role, s, e, n in keystate_graph.edges():
        allowed.add((role, s, e))
    for is_server in (False, True):
        role = "server" if is_server else "client"
        for state in ks.STATE_NAMES:
            for event in EVENTS:
                k = ks.KeyState(0, is_server)
                k.state = state
                key_r = (role, ks.STATE_NAMES[state], ks.EVENT_NAMES[event])
                key_b = ("both", ks.STATE_NAMES[state], ks.EVENT_NAMES[event])
                if key_r in allowed or key_b in allowed:
                    k.handle(event)
                    continue
                exc = raises(LocalProtocolError, k.handle, event)
                assert ks.EVENT_NAMES[event] in str(exc) and ks.STATE_NAMES[state] in str(exc)
                assert k.state == state


def test_error_from_every_state():
    for is_server in (False, True):
        for state in ks.STATE_NAMES:
            k = ks.KeyState(0, is_server)
            k.state = state
            assert k.handle(ks.EV_ERROR) == ks.S_ERROR
    k = ks.KeyState(0, False)
    k.handle(ks.EV_RESET_QUEUED)
    assert k.handle(ks.EV_ERROR) == ks.S_ERROR
    assert k.handle(ks.EV_ERROR) == ks.S_ERROR
    assert k.history == [ks.S_INITIAL, ks.S_PRE_START, ks.S_ERROR]
    raises(LocalProtocolError, k.handle, ks.EV_RESET_ACKED)


def test_edges_are_the_table():
    e = keystate_graph.edges()
    assert ("client", "S_START", "EV_KEY_SENT", "S_SENT_KEY") in e
    assert ("server", "S_START", "EV_KEY_RECEIVED", "S_GOT_KEY") in e
    assert ("server", "S_INITIAL", "EV_RESET_SKIPPED", "S_PRE_START_SKIP") in e
    assert ("both", "S_ACTIVE", "EV_KEYS_GENERATED", "S_GENERATED_KEYS") in e
    assert ("client", "S_GOT_KEY", "EV_KEYS_GENERATED", "S_GENERATED_KEYS") in e
    assert ("server", "S_SENT_KEY", "EV_KEYS_GENERATED", "S_GENERATED_KEYS") in e
    assert ("client", "S_SENT_KEY", "EV_KEYS_GENERATED", "S_GENERATED_KEYS") not in e
    assert len([x for x in e if x[2] == "EV_ERROR"]) == len(ks.STATE_NAMES)
    assert len(e) == 13 + len(ks.STATE_NAMES)
    assert ks.next_state(False, ks.S_SENT_KEY, ks.EV_KEY_RECEIVED) == ks.S_GOT_KEY
    d = keystate_graph.dot(True)
    assert "S_START -> S_GOT_KEY" in d and "S_START -> S_SENT_KEY" not in d
    assert "S_START -> S_SENT_KEY" in keystate_graph.dot(False)


def test_constructor_checks():
    raises(LocalProtocolError, ks.KeyState, 8, False)
    raises(LocalProtocolError, ks.KeyState, -1, False)
    k = ks.KeyState(7, True)
    assert k.key_id == 7 and k.is_server and "server" in repr(k)


def test_next_key_id_sequence():
    seq = [0]
    for _ in range(16):
        seq.append(ks.next_key_id(seq[-1]))
    assert seq == [0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1, 2]
    assert 0 not in seq[1:]
    raises(LocalProtocolError, ks.next_key_id, 8)
    raises(LocalProtocolError, ks.next_key_id, -1)


def test_the_table_names_each_pair_once_per_role():
    # next_state takes the first entry that matches: an entry for both roles and one for a
    # role, or two for one role, on the same (state, event) would make the order matter
    seen = {}
    for role, state, event, _ in ks._TRANSITIONS:
        roles = seen.setdefault((state, event), [])
        assert ks.BOTH not in roles and role not in roles and not (role == ks.BOTH and roles)
        roles.append(role)
    assert (ks.S_GOT_KEY, ks.EV_KEYS_GENERATED) in seen and (ks.S_START, ks.EV_KEY_SENT) in seen
