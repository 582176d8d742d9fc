"""Deadlines of many sessions in one heap (``serve`` workers, ``ovpnkx load``).

One heap per event loop instead of one timer handle per session: arming costs
a push only when the new deadline is earlier than the one already armed; a
later deadline waits until the earlier entry fires, when the owner looks at its
session again and re-arms. Entries that no longer match are skipped when popped.
"""

import heapq
import itertools


class TimerHeap:
    """``arm(key, when)``, ``cancel(key)``, ``pop_due(now)``, ``next_deadline()``."""

    def __init__(self) -> None:
        self._heap: list = []
        self._armed: dict = {}  # key -> the earliest armed deadline
        self._seq = itertools.count()  # ties: first armed, first due; keys are never compared

    def __len__(self) -> int:
        return len(self._armed)

    def arm(self, key, when: int) -> bool:
        """Make sure ``key`` is due no later than ``when``; True if a new entry was pushed."""
        armed = self._armed.get(key)
        if armed is not None and armed <= when:
            return False
        self._armed[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        return True

    def cancel(self, key) -> None:
        """Forget ``key`` (its entries are skipped when they come up)."""
        self._armed.pop(key, None)

    def pop_due(self, now: int) -> list:
        """Keys whose deadline is ``now`` or earlier, each once, earliest first; they are disarmed."""
        heap, armed, out = self._heap, self._armed, []
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if armed.get(key) == when:
                del armed[key]
                out.append(key)
        return out

    def next_deadline(self) -> "int | None":
        """The earliest live deadline, or None."""
        heap, armed = self._heap, self._armed
        while heap and armed.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
