"""Session behaviour on both runtimes, with the runtime's own TLS engine and crypto."""

from _sessions import Pair, kinds


def test_pair_exchanges_keys_and_pings():
    pair = Pair()
    assert pair.pings_both_ways(2)
    keys = [kinds(pair.events[side], "keys") for side in ("client", "server")]
    assert keys[0][0].key_id == keys[1][0].key_id == 0
    assert pair.client.stats["decrypt_errors"] == pair.server.stats["decrypt_errors"] == 0
