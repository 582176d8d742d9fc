"""The client's connection list: openvpn 2.6's order, retries and pauses (init.c)."""

from ovpnkx.connlist import ConnectionList, ConnectionListExhausted
from ovpnkx.errors import LocalProtocolError

from _support import raises

A, B, C = ("a", 1194, "udp"), ("b", 1194, "tcp"), ("c", 443, "tcp")


def test_entries_in_order_wrapping_around():
    cl = ConnectionList([A, B, C])
    assert [cl.next() for _ in range(7)] == [A, B, C, A, B, C, A]
    assert cl.unsuccessful_attempts == 7


def test_a_completed_connection_is_retried_first_and_resets_the_count():
    cl = ConnectionList([A, B])
    assert cl.next() == A and cl.next() == B
    cl.connected()  # B got data keys
    assert cl.unsuccessful_attempts == 0
    assert cl.next() == B  # the restart after it (ping-restart): the same remote
    assert cl.next() == A  # then on through the list
    assert cl.unsuccessful_attempts == 1


def test_connect_retry_max_gives_up_after_n_rounds():
    cl = ConnectionList([A, B], connect_retry_max=2)
    assert [cl.next() for _ in range(4)] == [A, B, A, B]
    e = raises(ConnectionListExhausted, cl.next)
    assert "connect-retry-max (2)" in str(e)
    one = ConnectionList([A], connect_retry_max=1)
    assert one.next() == A
    raises(ConnectionListExhausted, one.next)


def test_restart_pause_backs_off_after_five_rounds():
    cl = ConnectionList([A, B], connect_retry=(1, 300))
    pauses = []
    for _ in range(24):
        cl.next()
        pauses.append(cl.restart_pause_s())
    # 1 s for the first 5 rounds of the list (10 attempts), then doubling per round, capped at 300
    assert pauses[:9] == [1] * 9
    assert pauses[9:] == [2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256], pauses
    cl2 = ConnectionList([A], connect_retry=(5, 20))
    got = []
    for _ in range(8):
        cl2.next()
        got.append(cl2.restart_pause_s())
    assert got == [5, 5, 5, 5, 10, 20, 20, 20], got
    assert cl2.restart_pause_s(no_pause=True) == 0  # after a server poll timeout
    zero = ConnectionList([A], connect_retry=(0, 300))
    for _ in range(4):
        zero.next()
    assert zero.restart_pause_s() == 0  # connect-retry 0: no pause at first
    zero.next()
    assert zero.restart_pause_s() == 2  # max(sec, 1) << backoff


def test_remote_random_shuffles_once_with_the_given_bytes():
    def fixed(n):
        return bytes(n)  # every j = 0: a known permutation

    cl = ConnectionList([A, B, C], remote_random=True, random_bytes=fixed)
    # i=0 swaps 0 with 0, i=1 swaps 1 with 0, i=2 swaps 2 with 0
    assert cl.entries == [C, A, B]
    assert [cl.next() for _ in range(3)] == [C, A, B]
    assert ConnectionList([A, B, C]).entries == [A, B, C]  # not asked: not shuffled
    raises(LocalProtocolError, ConnectionList, [A, B], True)  # no source of randomness


def test_bad_settings_are_refused():
    raises(LocalProtocolError, ConnectionList, [])
    raises(LocalProtocolError, ConnectionList, [A], connect_retry=(10, 5))
    raises(LocalProtocolError, ConnectionList, [A], connect_retry_max=-1)
