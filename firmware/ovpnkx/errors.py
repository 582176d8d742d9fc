"""The two error classes of the core, as in h11.

``LocalProtocolError``: we were misused (a call out of order, a bad argument).
``RemoteProtocolError``: the peer sent something wrong. Every parser raises only
this for bad input, and leaves its object as it was.

Messages name what was wrong; they never carry key material.
"""


class ProtocolError(Exception):
    """Base of both error classes."""


class LocalProtocolError(ProtocolError):
    """The caller used the core wrongly."""


class RemoteProtocolError(ProtocolError):
    """The peer (or a byte stream) sent something malformed or refused."""


class EntropyError(LocalProtocolError):
    """The entropy source failed (a health test, or the source refused).

    The message names the failed test, e.g.
    ``"entropy source failed: repetition count test (RCT): ..."``.
    """
