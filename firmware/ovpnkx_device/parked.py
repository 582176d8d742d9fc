"""The calls of ``ovpnkx_device.app.ParkedEntropy`` into the board's TRNG chain: the source
restored from its snapshot, the call made, the state kept again, and the chain's code let
go. A module of its own, small, so that what a call holds in the heap besides the chain
is this alone (``entropy_select``, which made the source at boot, is more than twice it).
"""

from ovpnkx._compat import TYPE_CHECKING, const, unload

if TYPE_CHECKING:
    from typing import Any

_AHEAD = const(160)  # a key_state's draws: a session id 8, a client's key source 112, reneg jitter 4


def park_call(parked: "Any", entropy: "Any", method: str, *args: "Any") -> "Any":
    """``method`` of ``parked``'s source (``entropy``, or the one its snapshot restores), run,
    and the source's state kept again in ``parked``; the chain's code then leaves the heap.

    ``"reseed"`` (a key_state's) also draws that key_state's bytes right after the reseed
    (``parked._ahead``), so that its draws need no second call; ``"reseed_ahead"`` does the
    same for the next key_state before a session starts (its ``reseed`` is then this one)."""
    if method in ("reseed", "reseed_ahead", "reset"):  # what was drawn ahead is for no key_state now
        parked._ahead = b""
        parked._reseeded = False
    if entropy is None:
        from ovpnkx.entropy import restore

        entropy = restore(parked._snapshot)
    try:
        if method in ("reseed", "reseed_ahead"):
            entropy.reseed()
            parked._ahead = entropy.random_bytes(_AHEAD)
            parked._reseeded = method == "reseed_ahead"
        elif method:
            return getattr(entropy, method)(*args)
    finally:  # an error state is kept too: the source stays failed
        parked._snapshot = entropy.snapshot()
        parked.state = entropy.state
        parked.error = entropy.error
        parked.reseed_count = entropy.reseed_count
        if entropy.state == "error":  # a failed source gives nothing more, not even what it drew before
            parked._ahead = b""
            parked._reseeded = False
        entropy = None
        unload("entropy")
        unload("drbg")
    return None
