"""One partition as the broker sees it: its log, its producers' state, its waiting fetches.

The log (``kafka.log``) does the file work; this class adds what only a running server
needs: futures of long-polling fetches to wake on append, and the idempotent-producer state
that decides whether a batch is new, a retried duplicate or out of order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from streamsource.kafka.log import AppendInfo, LogClosed, LogConfig, PartitionLog


class Partition:
    """A topic partition led by this broker (there is only one broker)."""

    def __init__(self, topic: str, index: int, directory: Path, log: PartitionLog) -> None:
        self.topic = topic
        self.index = index
        self.directory = directory
        self.log = log
        self._waiters: set[asyncio.Future[None]] = set()
        self.closed = False

    @classmethod
    def open(
        cls,
        topic: str,
        index: int,
        directory: Path,
        settings: LogConfig,
    ) -> Partition:
        """Open (and recover) the partition's log, creating it if new."""
        log = PartitionLog.open(directory, settings, now_ms=time.time_ns() // 1_000_000)
        return cls(topic, index, directory, log)

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def high_watermark(self) -> int:
        """With one replica and no transactions: the log end offset (also the LSO)."""
        return self.log.log_end_offset

    def append(self, batches: Sequence[bytearray], now_ms: int) -> AppendInfo:
        """Append validated v2 batches, then wake the fetches waiting for data."""
        info = self.log.append(batches, now_ms=now_ms, leader_epoch=0)
        self.wake_waiters()
        return info

    def enforce_retention(self, now_ms: int) -> int:
        """Delete segments past the topic's retention; returns how many went."""
        if self.closed:
            return 0
        try:
            return self.log.enforce_retention(now_ms)
        except LogClosed:  # deleted meanwhile (retention runs in a worker thread)
            return 0

    def close(self) -> None:
        """Flush and close the log (idempotent)."""
        if not self.closed:
            self.closed = True
            self.log.close()

    def delete(self) -> None:
        """Close the log and remove its files (topic deletion)."""
        self.closed = True
        self.log.delete()
        self.wake_waiters()

    # -- long-poll wake-ups ---------------------------------------------------------------

    @property
    def waiting_fetches(self) -> int:
        """How many long-polling fetches wait for an append here."""
        return len(self._waiters)

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.add(waiter)

    def discard_waiter(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)

    def wake_waiters(self) -> None:
        """Called after an append (or a delete): every waiting fetch re-checks its offsets."""
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()
