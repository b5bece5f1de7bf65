"""One partition as the broker sees it: its log, its transactions, its waiting fetches.

The log (``kafka.log``) does the file work; this class adds what only a running server
needs: futures of long-polling fetches to wake on append, and the transaction index that
gives the last stable offset and the aborted transactions read_committed consumers skip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from streamsource.kafka.log import AppendInfo, LogClosed, LogConfig, PartitionLog
from streamsource.kafka.log.txn_index import TransactionIndex
from streamsource.kafka.records.control import build_marker
from streamsource.observability import metrics


class Partition:
    """A topic partition led by this broker (there is only one broker)."""

    def __init__(
        self,
        topic: str,
        index: int,
        directory: Path,
        log: PartitionLog,
        txns: TransactionIndex | None = None,
    ) -> None:
        self.topic = topic
        self.index = index
        self.directory = directory
        self.log = log
        self.txns = txns or TransactionIndex.open(
            directory, log.log_start_offset, log.log_end_offset
        )
        self._waiters: set[asyncio.Future[bool | None]] = set()  # None: woken by an append
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
        """With one replica: the log end offset."""
        return self.log.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        """Below every open transaction: how far read_committed consumers may read."""
        return self.txns.last_stable_offset(self.log.log_end_offset)

    def append(
        self,
        batches: Sequence[bytes | bytearray | memoryview],
        now_ms: int,
        *,
        transactional_producer: int = -1,
    ) -> AppendInfo:
        """Append validated v2 batches (on the log writer thread; the event loop then calls
        ``wake_waiters``).

        ``transactional_producer``: the producer id of transactional batches, whose open
        transaction in this partition then starts at the first (if it did not already).
        """
        if transactional_producer >= 0:
            # noted before the data is written (appends come from one thread, so the log's
            # end is where it lands): should the index write fail, nothing uncommitted is
            # ever visible; should the append fail, the index holds back the LSO only
            # until the transaction ends
            self.txns.begin(transactional_producer, self.log.log_end_offset)
        info = self.log.append(batches, now_ms=now_ms, leader_epoch=0)
        instruments = metrics.INSTRUMENTS
        if instruments is not None:
            child = instruments.child
            child(instruments.broker_produced_records, self.topic).inc(
                info.last_offset - info.base_offset + 1
            )
            child(instruments.broker_produced_bytes, self.topic).inc(sum(map(len, batches)))
        return info

    def append_marker(
        self, producer_id: int, producer_epoch: int, *, commit: bool, now_ms: int
    ) -> int:
        """End the producer's transaction here with a control batch; returns its offset.

        On the log writer thread, like ``append``; the event loop then wakes the fetches.
        """
        marker = build_marker(producer_id, producer_epoch, commit=commit, timestamp_ms=now_ms)
        info = self.log.append([marker], now_ms=now_ms, leader_epoch=0)
        self.txns.end(producer_id, info.base_offset, aborted=not commit)
        return info.base_offset

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
            try:
                self.txns.close()
            finally:
                self.log.close()

    def delete(self) -> None:
        """Close the log and remove its files (topic deletion). Waiting fetches find out at
        the end of their wait (the log is closed), so this may run off the event loop."""
        self.closed = True
        self.txns.close()
        self.log.delete()

    # -- long-poll wake-ups ---------------------------------------------------------------

    @property
    def waiting_fetches(self) -> int:
        """How many long-polling fetches wait for an append here."""
        return len(self._waiters)

    def add_waiter(self, waiter: asyncio.Future[bool | None]) -> None:
        self._waiters.add(waiter)

    def discard_waiter(self, waiter: asyncio.Future[bool | None]) -> None:
        self._waiters.discard(waiter)

    def wake_waiters(self) -> None:
        """Called after an append (or a delete): every waiting fetch re-checks its offsets."""
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()
