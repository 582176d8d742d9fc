"""Device-side adapters around the sans-IO core: clock, sockets, the session loop.

These modules move bytes and read clocks, nothing more; they run on MicroPython
(boards and the unix port) and on CPython, so the host's `ovpnkx connect
--runtime cpython` and the simulated device share one loop.
"""


class TransportError(Exception):
    """The transport failed (refused, reset, closed by the peer, a UART that cannot open).

    Defined here, not in ``transport``: a serial-only session must not load the socket
    transports (their code would sit in a board's heap for nothing)."""
