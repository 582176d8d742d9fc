"""key_state: the states of one key negotiation, as one transition table.

State values are OpenVPN 2.6.14's (ssl_common.h); ``/usr/sbin/openvpn`` 2.6.14
carries the name S_PRE_START_SKIP, and has no S_ERROR_PRE (that is 2.7).

What OpenVPN 2.6 does, read from ssl.c (tls_process_state, tls_multi_process,
session_move_pre_start, session_skip_to_pre_start, tls_pre_decrypt):

* key_state_init leaves S_INITIAL. session_move_pre_start queues our reset as
  msg packet-id 0 and moves to S_PRE_START; the deadline (must_negotiate =
  now + hand-window) is set there.
* The 2.6 UDP server answers the first client reset statelessly (HMAC cookie)
  and creates state only on the client's second packet: session_skip_to_pre_start
  marks its reset as sent-and-done and moves to S_PRE_START_SKIP; the next
  accepted control packet of that session moves it to S_PRE_START.
* S_PRE_START -> S_START when our reset is acked (send queue empty).
* key method 2 writes happen at (client, S_START) and (server, S_GOT_KEY) and
  move to S_SENT_KEY; reads at (client, S_SENT_KEY) and (server, S_START) move
  to S_GOT_KEY. So client START -> SENT_KEY -> GOT_KEY, server START -> GOT_KEY
  -> SENT_KEY.
* (client, S_GOT_KEY) and (server, S_SENT_KEY) -> S_ACTIVE once the send queue
  is fully acked (session_move_active clears must_negotiate).
* Data channel keys are made only from S_ACTIVE in 2.6, never from S_GOT_KEY or
  S_SENT_KEY: key_method_2_write/read no longer generate keys (2.4/2.5 did);
  tls_session_generate_data_channel_keys sets S_GENERATED_KEYS and is called
  from tls_multi_process (state S_ACTIVE, authenticated, connect done: the p2mp
  server and every renegotiation) and from do_up via
  tls_session_update_crypto_params (p2mp client after PUSH_REPLY, p2p). Control
  messages such as PUSH_REPLY are only read at S_ACTIVE (tls_rec_payload).
  ovpnkx also allows it one step earlier, as soon as both key method 2
  messages are known: (client, S_GOT_KEY) and (server, S_SENT_KEY). That is
  what 2.4/2.5 did and it is wire-compatible: a peer drops data packets for a
  key it has not made yet ("Key ... not initialized (yet), dropping packet").
  Never from the state with only one key method 2 message, which cannot
  derive keys. Once at S_GENERATED_KEYS, EV_SEND_ACKED is refused like any
  pair not in the table: the caller stops reporting it.
* Any failure sets S_ERROR. The hand-window (must_negotiate) is the session's
  to check: ``control.KeyStateChannel.hand_deadline_ms``, which runs until data keys
  exist (a p2mp client waits for PUSH_REPLY past S_ACTIVE), and
  ``hints.hand_window_reason`` for OpenVPN's words.

A soft reset (renegotiation) starts a fresh KeyState with the next key_id and
walks the same states.
"""

from .errors import LocalProtocolError

S_ERROR = -1
S_UNDEF = 0
S_INITIAL = 1
S_PRE_START_SKIP = 2
S_PRE_START = 3
S_START = 4
S_SENT_KEY = 5
S_GOT_KEY = 6
S_ACTIVE = 7
S_GENERATED_KEYS = 8

# names for messages, in one string: a board then interns neither them nor the constants'
# names (the board's build writes each constant as its number, tools/const_inline.py)
STATE_NAMES = dict(zip((
    S_ERROR, S_UNDEF, S_INITIAL, S_PRE_START_SKIP, S_PRE_START, S_START, S_SENT_KEY, S_GOT_KEY,
    S_ACTIVE, S_GENERATED_KEYS),
    "S_ERROR S_UNDEF S_INITIAL S_PRE_START_SKIP S_PRE_START S_START S_SENT_KEY "
    "S_GOT_KEY S_ACTIVE S_GENERATED_KEYS".split()))

EV_RESET_QUEUED = 1    # our hard/soft reset is queued as msg packet-id 0
EV_RESET_SKIPPED = 2   # server: our reset went out statelessly (2.6 cookie)
EV_PEER_PACKET = 3     # a control packet of the peer was accepted
EV_RESET_ACKED = 4     # the peer acked our reset
EV_KEY_SENT = 5        # our key method 2 message was written
EV_KEY_RECEIVED = 6    # the peer's key method 2 message was read
EV_SEND_ACKED = 7      # everything we queued has been acked
EV_KEYS_GENERATED = 8  # data channel keys exist
EV_ERROR = 9           # anything fatal for this key_state

# names for messages, in one string (as STATE_NAMES)
EVENT_NAMES = dict(zip((
    EV_RESET_QUEUED, EV_RESET_SKIPPED, EV_PEER_PACKET, EV_RESET_ACKED, EV_KEY_SENT,
    EV_KEY_RECEIVED, EV_SEND_ACKED, EV_KEYS_GENERATED, EV_ERROR),
    "EV_RESET_QUEUED EV_RESET_SKIPPED EV_PEER_PACKET EV_RESET_ACKED EV_KEY_SENT "
    "EV_KEY_RECEIVED EV_SEND_ACKED EV_KEYS_GENERATED EV_ERROR".split()))

CLIENT = "client"
SERVER = "server"
BOTH = "both"

# (role, state, event, new state). Every pair not here is refused, but EV_ERROR, which
# any state takes to S_ERROR. A tuple of constant tuples, read in order: a board builds
# it once as it loads the module, where a dict of tuple keys took ~1 KB more of its heap.
# ``keystate_graph`` (host-only) lists it as edges and draws it.
_TRANSITIONS = (
    (BOTH, S_INITIAL, EV_RESET_QUEUED, S_PRE_START),
    (SERVER, S_INITIAL, EV_RESET_SKIPPED, S_PRE_START_SKIP),
    (SERVER, S_PRE_START_SKIP, EV_PEER_PACKET, S_PRE_START),
    (BOTH, S_PRE_START, EV_RESET_ACKED, S_START),
    (CLIENT, S_START, EV_KEY_SENT, S_SENT_KEY),
    (CLIENT, S_SENT_KEY, EV_KEY_RECEIVED, S_GOT_KEY),
    (CLIENT, S_GOT_KEY, EV_SEND_ACKED, S_ACTIVE),
    (SERVER, S_START, EV_KEY_RECEIVED, S_GOT_KEY),
    (SERVER, S_GOT_KEY, EV_KEY_SENT, S_SENT_KEY),
    (SERVER, S_SENT_KEY, EV_SEND_ACKED, S_ACTIVE),
    (BOTH, S_ACTIVE, EV_KEYS_GENERATED, S_GENERATED_KEYS),
    (CLIENT, S_GOT_KEY, EV_KEYS_GENERATED, S_GENERATED_KEYS),  # earlier than 2.6, see above
    (SERVER, S_SENT_KEY, EV_KEYS_GENERATED, S_GENERATED_KEYS),  # earlier than 2.6, see above
)


def next_state(is_server: bool, state: int, event: int) -> int:
    """The table lookup: new state, or LocalProtocolError naming the pair."""
    role = SERVER if is_server else CLIENT
    if event == EV_ERROR and state in STATE_NAMES:
        return S_ERROR
    for who, old, ev, new in _TRANSITIONS:
        if old == state and ev == event and (who == role or who == BOTH):
            return new
    raise LocalProtocolError("key_state %s: event %s not allowed in %s" % (
        role, EVENT_NAMES.get(event, repr(event)), STATE_NAMES.get(state, repr(state))))


def next_key_id(key_id: int) -> int:
    """key_id of the next renegotiation: 0 is the first key only, then 1..7, 1..7, ..."""
    if not isinstance(key_id, int) or not 0 <= key_id <= 7:
        raise LocalProtocolError("key_id must be 0..7, not %r" % (key_id,))
    return key_id + 1 if key_id < 7 else 1


class KeyState:
    """The state of one key_id's negotiation, driven by events (``history``: every state
    it went through, for the session's state events)."""

    def __init__(self, key_id: int, is_server: bool) -> None:
        if not isinstance(key_id, int) or not 0 <= key_id <= 7:
            raise LocalProtocolError("key_id must be 0..7, not %r" % (key_id,))
        self.key_id = key_id
        self.is_server = bool(is_server)
        self.state = S_INITIAL
        self.history = [S_INITIAL]

    def handle(self, event: int) -> int:
        """Apply ``event``; return the new state. LocalProtocolError if not allowed."""
        new = next_state(self.is_server, self.state, event)
        if new != self.state:
            self.history.append(new)
        self.state = new
        return new

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    def __repr__(self) -> str:
        return "KeyState(key_id=%d, %s, %s)" % (
            self.key_id, SERVER if self.is_server else CLIENT, STATE_NAMES[self.state])
