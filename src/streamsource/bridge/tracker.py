"""The relay's acknowledgement bookkeeping (sans-I/O): which position is safe to checkpoint.

The producer acknowledges events per partition, so acknowledgements of events in different
partitions arrive out of order. The checkpoint may only move to a position P when every
event up to P was acknowledged (or deliberately skipped): the lowest contiguous
acknowledged position. After a crash the relay resends from there, so the only duplicates
are events that were sent but not yet covered by the checkpoint.
"""

from __future__ import annotations

from collections import deque


class AckTracker:
    """Positions sent in increasing order; acks in any order; the safe checkpoint."""

    def __init__(self, checkpoint: int) -> None:
        self._checkpoint = checkpoint  # every position <= this one is acknowledged
        self._pending: deque[int] = deque()  # sent or skipped, not yet below the checkpoint
        self._acked: set[int] = set()  # members of _pending that are acknowledged

    @property
    def checkpoint(self) -> int:
        """The highest position P such that every event at or below P is acknowledged."""
        return self._checkpoint

    @property
    def pending(self) -> int:
        """Positions held (sent or skipped) that the checkpoint has not passed yet."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Events sent and not yet acknowledged."""
        return len(self._pending) - len(self._acked)

    def sent(self, position: int) -> None:
        """An event was handed to the producer; positions must increase."""
        self._check_order(position)
        self._pending.append(position)

    def skipped(self, position: int) -> None:
        """An event was read but is not published (filtered out): nothing to wait for."""
        self._check_order(position)
        if not self._pending:
            self._checkpoint = position
            return
        self._pending.append(position)
        self._acked.add(position)

    def acked(self, position: int) -> None:
        """The broker acknowledged the event at ``position``; advance what is contiguous."""
        if position <= self._checkpoint:
            return  # a late ack of something already covered (after a reset)
        self._acked.add(position)
        pending, acked = self._pending, self._acked
        while pending and pending[0] in acked:
            head = pending.popleft()
            acked.discard(head)
            self._checkpoint = head

    def _check_order(self, position: int) -> None:
        last = self._pending[-1] if self._pending else self._checkpoint
        if position <= last:
            raise ValueError(f"position {position} is not after {last}")
