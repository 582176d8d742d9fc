"""The words of a failed handshake follow what was seen (issue 8 item 6).

``hand_window_reason`` is given what the session and the transport counted: no
packet at all, bytes without one intact frame (a noisy serial line), ICMP port
unreachables, packets that all failed tls-auth, a handshake that stalled on a
noisy line. ``tls_error_reason`` reads a TLS alert the peer sent.
"""

from ovpnkx import keystate as ks
from ovpnkx.hints import hand_window_reason, tls_error_reason

W = 5000
SERIAL = {"where": "serial:uart1", "kind": "serial"}
UDP = {"where": "127.0.0.1:1194", "kind": "udp"}


class _State:
    def __init__(self, state):
        self.state = state


class _Channel:
    """What hand_window_reason reads of a key_state."""

    def __init__(self, state, peer_km2=None):
        self.state = _State(state)
        self.peer_km2 = peer_km2


def _reason(channel=None, wrap=None, heard=False, drop=None, packets_in=0, wrap_failures=0, link=None,
            server=False, p2mp=True):
    return hand_window_reason(W, channel, server, p2mp, wrap, heard, drop, packets_in, wrap_failures, link)


def _with(link, **more):
    d = dict(link)
    d.update(more)
    return d


def test_nothing_on_a_serial_line_blames_the_line_first():
    r = _reason(_Channel(ks.S_PRE_START), wrap="tls-auth", link=_with(SERIAL, bytes_in=0))
    assert r.startswith("TLS key negotiation failed to occur within 5 seconds (no answer from the peer; ")
    assert "no byte ever arrived on serial:uart1" in r and "ovpnkx serve --serial" in r and "baud rate" in r
    # a server that drops what fails tls-auth is silent too: said after the line
    assert r.index("baud rate") < r.index("nothing authenticated ever arrived either: check the tls-auth key")


def test_nothing_on_udp_names_the_remote():
    r = _reason(None, link=_with(UDP))
    assert "no packet ever arrived from 127.0.0.1:1194: is the server up" in r
    assert "tls-auth" not in r  # no tls-auth configured: not a suspect


def test_a_noisy_line_is_named_with_its_counts():
    r = _reason(_Channel(ks.S_PRE_START), wrap="tls-auth",
                link=_with(SERIAL, bytes_in=812, frame_errors={"crc": 6, "cobs": 0, "oversize": 1}))
    assert "812 bytes arrived on serial:uart1 but no frame was intact (crc=6, oversize=1)" in r
    assert "noisy" in r and "tls-auth" not in r


def test_bytes_without_frames_are_another_protocol():
    r = _reason(_Channel(ks.S_PRE_START), link=_with(SERIAL, bytes_in=40, frame_errors={"crc": 0}))
    assert "40 bytes arrived on serial:uart1 but not one frame" in r


def test_icmp_unreachable_means_nothing_listens():
    r = _reason(_Channel(ks.S_PRE_START), wrap="tls-auth", link=_with(UDP, refused=3))
    assert "ICMP port unreachable came back 3 times: nothing listens at 127.0.0.1:1194" in r
    assert "tls-auth" not in r


def test_packets_that_all_fail_tls_auth():
    r = _reason(_Channel(ks.S_PRE_START), wrap="tls-auth", packets_in=4, wrap_failures=4,
                drop="TLS Error: incoming packet authentication failed", link=_with(UDP))
    assert ("nothing authenticated ever arrived: 4 of 4 packets failed tls-auth authentication; check the "
            "tls-auth key and key-direction") in r
    assert r.endswith("last dropped packet: TLS Error: incoming packet authentication failed)")
    r = _reason(_Channel(ks.S_PRE_START), wrap="tls-crypt", packets_in=2, wrap_failures=2)
    assert "2 of 2 packets failed tls-crypt authentication; check the tls-crypt key" in r
    assert "key-direction" not in r


def test_a_handshake_that_stalls_on_a_noisy_line_does_not_blame_the_certificate():
    noisy = _reason(_Channel(ks.S_START), packets_in=5, heard=True,
                    link=_with(SERIAL, bytes_in=4000, frame_errors={"crc": 6}))
    assert "the handshake stalled while frames were damaged on serial:uart1 (crc=6)" in noisy
    assert "certificate" not in noisy
    clean = _reason(_Channel(ks.S_START), packets_in=5, heard=True, link=_with(SERIAL, bytes_in=4000))
    assert "refused our certificate" in clean


def test_later_states():
    r = _reason(_Channel(ks.S_ACTIVE, peer_km2=object()), packets_in=9, heard=True)
    assert r.endswith("(no PUSH_REPLY from the server)")
    assert _reason(_Channel(ks.S_ACTIVE, peer_km2=object()), packets_in=9, heard=True, p2mp=False) == \
        "TLS key negotiation failed to occur within 5 seconds"


def test_tls_alerts_from_the_peer_get_a_cause():
    # OpenSSL's words (CPython) and our mbedTLS engine's (MicroPython)
    for text, words in (("TLS error: sslv3 alert certificate expired", "as expired"),
                        ("TLS alert from peer: certificate_expired", "as expired"),
                        ("TLS error: tlsv1 alert unknown ca", "does not trust the CA"),
                        ("TLS alert from peer: bad_certificate", "refused our certificate"),
                        ("TLS error: tlsv13 alert certificate required", "wants a client certificate"),
                        ("TLS alert from peer: protocol_version", "no TLS version in common"),
                        ("TLS alert from peer: handshake_failure", "no TLS version, cipher suite or group"),
                        ("TLS alert from peer: alert 200", "its log says why")):
        r = tls_error_reason(text)
        assert r.startswith(text + " (the peer ended the TLS handshake with this alert"), r
        assert words in r, (text, r)


def test_other_errors_are_left_as_they_are():
    for text in ("certificate verify failed: certificate has expired", "TLS connection closed by peer (close_notify)",
                 "not a TLS record (type 153)", "auth failed: the server refused us"):
        assert tls_error_reason(text) == text
