"""One side's key source (OpenVPN's struct key_source), drawn when a key_state opens,
and the content of a key method 2 message.

Apart from ``keymethod2`` (which writes and reads the message inside the TLS channel),
so that a board's session holds these small classes only: the wire code loads once the
TLS handshake is done and leaves with the keys.
"""

from ._compat import TYPE_CHECKING
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from typing import Optional

PRE_MASTER_LEN = 48
RANDOM_LEN = 32


class KeySource:
    """One side's key source (OpenVPN's struct key_source).

    ``pre_master`` (48 bytes) is sent by the client only and is None on the
    server side; ``random1`` and ``random2`` are 32 bytes each.
    """

    def __init__(self, pre_master: "Optional[bytes]", random1: bytes, random2: bytes) -> None:
        if pre_master is not None:
            pre_master = _exact("pre_master", pre_master, PRE_MASTER_LEN)
        self.pre_master = pre_master
        self.random1 = _exact("random1", random1, RANDOM_LEN)
        self.random2 = _exact("random2", random2, RANDOM_LEN)

    @classmethod
    def generate(cls, entropy: object, is_client: bool) -> "KeySource":
        """Draw a fresh key source from ``entropy.random_bytes(n)``, in OpenVPN's
        order: pre_master (client only), random1, random2."""
        draw = entropy.random_bytes  # type: ignore[attr-defined]
        pre_master = _exact("entropy output", draw(PRE_MASTER_LEN), PRE_MASTER_LEN) if is_client else None
        random1 = _exact("entropy output", draw(RANDOM_LEN), RANDOM_LEN)
        random2 = _exact("entropy output", draw(RANDOM_LEN), RANDOM_LEN)
        return cls(pre_master, random1, random2)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, KeySource) and self.pre_master == other.pre_master
                and self.random1 == other.random1 and self.random2 == other.random2)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __repr__(self) -> str:
        return "<KeySource %s (key material not shown)>" % ("client" if self.pre_master else "server")


def _exact(what: str, value: object, n: int) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != n:
        raise LocalProtocolError("%s must be %d bytes" % (what, n))
    return bytes(value)


class KeyMethod2Message:
    """The content of a key method 2 message.

    ``username``/``password``/``peer_info`` None means "absent" (written as
    ``00 00``); an empty str is written as ``00 01 00``. ``options`` is always
    a str (a length-0 options field reads as "").
    """

    def __init__(self, key_source: KeySource, options: str = "", username: "Optional[str]" = None,
                 password: "Optional[str]" = None, peer_info: "Optional[str]" = None) -> None:
        self.key_source = key_source
        self.options = options
        self.username = username
        self.password = password
        self.peer_info = peer_info

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, KeyMethod2Message) and self.key_source == other.key_source
                and self.options == other.options and self.username == other.username
                and self.password == other.password and self.peer_info == other.peer_info)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __repr__(self) -> str:
        return "<KeyMethod2Message options=%r username=%s peer_info=%r>" % (
            self.options, "set" if self.username is not None else "None", self.peer_info)
