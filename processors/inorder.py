"""Acks handed out in offset order per partition, however the work finishes.

The worker handles many entries at once, and they finish in any order. Kafka commits one
offset per partition, meaning "everything before this is done", so an entry may only be
acked once every earlier entry of its partition is done too. Faust tracks gaps itself, but
faust-streaming 0.11 skips that check while the group has no committed offset yet, and would
then commit past entries still in flight (lost on a crash). This keeps the order here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class InOrderAcks(Generic[T]):
    """Tracks work items per partition in the order they were read (no I/O).

    ``track`` is called in read order; ``done`` returns the items that may now be acked:
    the longest run of finished items at the head of that partition, oldest first."""

    def __init__(self) -> None:
        self._queues: dict[Hashable, deque[list]] = {}
        self._slots: dict[tuple[Hashable, int], list] = {}

    def track(self, partition: Hashable, offset: int, item: T) -> None:
        known = self._slots.get((partition, offset))
        if known is not None:
            # The same offset handed out again while its first copy is still in flight (seen
            # after a kill -9 and restart): one slot for both, done when either is, so the
            # partition's acks never wait on a slot nobody will finish.
            known[1].append(item)
            return
        slot = [offset, [item], False]
        self._queues.setdefault(partition, deque()).append(slot)
        self._slots[(partition, offset)] = slot

    def done(self, partition: Hashable, offset: int) -> list[T]:
        slot = self._slots.pop((partition, offset), None)
        if slot is None:  # not tracked (already released): nothing to ack
            return []
        slot[2] = True
        queue = self._queues[partition]
        ready: list[T] = []
        while queue and queue[0][2]:
            ready.extend(queue.popleft()[1])
        if not queue:
            del self._queues[partition]
        return ready

    def pending(self) -> int:
        """Items tracked and not yet handed out (finished or not)."""
        return sum(len(q) for q in self._queues.values())

    def forget(self, partition: Hashable) -> None:
        """Drop a partition that was taken away: its unacked items are read again by the
        new owner, so nothing of them may be acked here any more."""
        for slot in self._queues.pop(partition, ()):
            self._slots.pop((partition, slot[0]), None)
