"""The long-polls waiting on one process, woken only when what they wait for has happened.

A long-poll `process/read` waits for an event with a seq above its `afterSeq` (or the close).
Rules:
- An event wakes exactly the waiters it satisfies: those whose `after_seq` is below the new
  last seq. Waiters with a higher `after_seq` are not touched, so 10 000 long-polls that wait
  past a chatty process's output cost nothing per line (waking them all on every event was a
  herd: every client's latency grew with their number).
- The close wakes every waiter (nothing newer will ever come).
- Waiters with the same `after_seq` share one event. A waiter that leaves (its deadline, a
  cancellation) removes its share; the heap of `after_seq` values is cleaned lazily and rebuilt
  when stale entries outnumber live ones, so it never grows beyond twice the live waiters.
"""

from __future__ import annotations

import heapq

import attrs
import trio


@attrs.define(eq=False)
class _Slot:
    event: trio.Event = attrs.field(factory=trio.Event)
    waiters: int = 0


@attrs.define(eq=False)
class SeqWaiters:
    """Invariants: every key of `_slots` is in `_heap`; `_heap` may also hold keys no longer
    in `_slots` (stale), at most `len(_slots) + _SLACK` of them after any removal."""

    _slots: dict[int, _Slot] = attrs.field(factory=dict)
    _heap: list[int] = attrs.field(factory=list)

    def __len__(self) -> int:
        return sum(slot.waiters for slot in self._slots.values())

    async def wait_past(self, after_seq: int) -> None:
        """Return once `wake` saw an event above `after_seq`, or `wake_all`.
        Cancellation: the waiter's share is removed; nothing else changes."""
        slot = self._slots.get(after_seq)
        if slot is None:
            slot = self._slots[after_seq] = _Slot()
            heapq.heappush(self._heap, after_seq)
        slot.waiters += 1
        try:
            await slot.event.wait()
        finally:
            slot.waiters -= 1
            if not slot.waiters and self._slots.get(after_seq) is slot:
                del self._slots[after_seq]
                if len(self._heap) > 2 * len(self._slots) + _SLACK:
                    self._heap = list(self._slots)
                    heapq.heapify(self._heap)

    def wake(self, last_seq: int) -> None:
        """An event with seq `last_seq` was recorded: wake the waiters below it."""
        while self._heap and self._heap[0] < last_seq:
            slot = self._slots.pop(heapq.heappop(self._heap), None)
            if slot is not None:
                slot.event.set()

    def wake_all(self) -> None:
        for slot in self._slots.values():
            slot.event.set()
        self._slots.clear()
        self._heap.clear()


_SLACK = 16
