"""The two error classes of the core, as in h11.

``LocalProtocolError``: we were misused (a call out of order, a bad argument).
``RemoteProtocolError``: the peer sent something wrong. Every parser raises only
this for bad input, and leaves its object as it was.

Messages name what was wrong; they never carry key material.

On a board, a message is a number and its arguments (``RemoteProtocolError(12,
name)``): the flash build moves the texts out of the code into ``messages.txt``
beside this module (tools/message_catalog.py), so that they take flash, not heap.
``str(exc)`` reads the text back and formats it, and so gives what the source says.
A text that is not an error's (a session's end reason, a warning) is marked with
``message()`` to move the same way.
"""

from ._compat import MICROPYTHON


def _catalog_text(args: tuple) -> str:
    """The text of message ``args[0]`` from the board's catalog, formatted with the rest."""
    try:
        with open(__file__.rsplit("/", 1)[0] + "/messages.txt") as f:
            for i, line in enumerate(f):
                if i == args[0]:  # as the source's "text % right": one argument is the right side
                    text = line.rstrip("\n")
                    return text % args[1] if len(args) == 2 else text % args[1:] if len(args) > 2 else text
    except (OSError, MemoryError, TypeError, ValueError):
        pass
    return "message %d (messages.txt unreadable) %r" % (args[0], args[1:])


def message(*args: object) -> str:
    """A text the flash build may move to the catalog: ``message("no answer from %s" % where)``.

    In the source (CPython, tests, frozen builds) it is the text itself; in a board's
    build, its number and arguments, read back here. For texts made once, when something
    ends or fails: a board reads the catalog file for each call."""
    return _catalog_text(args) if type(args[0]) is int else args[0]  # type: ignore[return-value]


class ProtocolError(Exception):
    """Base of both error classes."""

    def __str__(self) -> str:
        args = self.args
        if args and type(args[0]) is int:  # a message moved to the catalog
            return _catalog_text(args)
        return str(args[0]) if len(args) == 1 else str(args) if args else ""

    if MICROPYTHON:  # its traceback prints repr(): "RemoteProtocolError: <the text>", not the number

        def __repr__(self) -> str:
            return "%s: %s" % (type(self).__name__, self)


class LocalProtocolError(ProtocolError):
    """The caller used the core wrongly."""


class RemoteProtocolError(ProtocolError):
    """The peer (or a byte stream) sent something malformed or refused."""


class EntropyError(LocalProtocolError):
    """The entropy source failed (a health test, or the source refused).

    The message names the failed test, e.g.
    ``"entropy source failed: repetition count test (RCT): ..."``.
    """
