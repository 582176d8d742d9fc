"""``select`` for the simulated board: the unix port's, aware of sim sockets.

The sim's ``socket.socket`` is a Python subclass of the native socket (to refuse
addresses other than 127.0.0.1), and the unix port's ``poll`` does not see a
subclass's readiness. On a board, ``poll.register(sock)`` just works; here the
registration goes through the socket's file descriptor so device code stays as
it is on hardware.
"""

import uselect as _u
from uselect import *  # noqa: F401,F403 constants


class poll:
    """``select.poll`` that maps sim sockets to their file descriptors."""

    def __init__(self):
        self._p = _u.poll()
        self._objs = {}
        # ipoll's iterator, made once: the native poll object is its own iterator, re-armed by
        # each ipoll(), and map() runs in C, so that an iteration that finds nothing ready
        # allocates nothing, as on a board (a Python __next__ would make its StopIteration)
        self._ready = map(self._pair, self._p)

    def _pair(self, fd_event):
        return (self._objs.get(fd_event[0], fd_event[0]), fd_event[1])

    def register(self, obj, mask=POLLIN | POLLOUT):  # noqa: F405
        fd = obj.fileno() if hasattr(obj, "fileno") else obj
        self._objs[fd] = obj
        self._p.register(fd, mask)

    def modify(self, obj, mask):
        self._p.modify(obj.fileno() if hasattr(obj, "fileno") else obj, mask)

    def unregister(self, obj):
        fd = obj.fileno() if hasattr(obj, "fileno") else obj
        self._objs.pop(fd, None)
        self._p.unregister(fd)

    def poll(self, timeout=-1):
        ready = self._p.poll(timeout)
        if not ready:  # the empty list, as a board's poll makes it: no second one
            return ready
        return [(self._objs.get(fd, fd), ev) for fd, ev in ready]

    def ipoll(self, timeout=-1, flags=0):
        """As a board's: an iterator over the (obj, event) pairs ready; neither the wait nor
        an iteration that finds nothing allocates (a device's loop calls it at every turn)."""
        self._p.ipoll(timeout, flags)
        return self._ready
