"""Committed offsets made durable: the coordinator's ``OffsetTable`` on a ``RecordLog``.

Every change is written (group-committed, on the log's writer thread) before it is
applied in memory and before the request is answered, so an acknowledged commit survives
``kill -9`` and an OffsetFetch never shows an offset that is not on disk. The event loop
only waits in the awaiting handler; other connections go on meanwhile. When more than half
of what the file holds is superseded, it is rewritten with the live offsets only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from streamsource.kafka.coordinator.offsets import (
    Change,
    CommittedOffset,
    OffsetCommit,
    OffsetTable,
    TopicPartition,
)
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.storage import RecordLog, StorageError

log = logging.getLogger(__name__)

MAGIC = b"SSOFFS01"
COMPACT_MIN_BYTES = 1 << 20


class OffsetStore:
    """Committed offsets of every group, in memory and in one durable file."""

    def __init__(self, records: RecordLog, table: OffsetTable, *, compact_min_bytes: int) -> None:
        self._records = records
        self._table = table
        self._compact_min_bytes = compact_min_bytes
        self._in_flight = 0  # changes submitted and not yet applied
        self._compacting = False

    @classmethod
    def open(
        cls, path: Path, *, fsync: bool = True, compact_min_bytes: int = COMPACT_MIN_BYTES
    ) -> OffsetStore:
        """Open (creating) the file and replay it; blocking, for start-up."""
        records, payloads = RecordLog.open(path, MAGIC, fsync=fsync)
        try:
            table = OffsetTable.replay(payloads)
        except BaseException:
            records.close()
            raise
        return cls(records, table, compact_min_bytes=compact_min_bytes)

    @property
    def path(self) -> Path:
        return self._records.path

    @property
    def file_size(self) -> int:
        """Bytes the file holds (for monitoring and tests of compaction)."""
        return self._records.size

    # -- changes (awaited by handlers) ------------------------------------------------------

    async def commit(self, group: str, entries: Iterable[OffsetCommit]) -> list[ErrorCode]:
        """Store the offsets durably; an error code per entry.

        Raises ``StorageError`` when the file cannot be written: nothing is committed then.
        """
        codes, change = self._table.commit(group, entries)
        if change is not None:
            await self._store(change)
        return codes

    async def delete_group(self, group: str) -> bool:
        """Forget a group's offsets (DeleteGroups); False if it had none."""
        change = self._table.delete_group(group)
        if change is None:
            return False
        await self._store(change)
        return True

    async def delete_offsets(self, group: str, partitions: Iterable[TopicPartition]) -> None:
        """Forget some of a group's offsets (expiry); the group goes once it has none."""
        change = self._table.delete_offsets(group, partitions)
        if change is not None:
            await self._store(change)

    async def put_group_metadata(self, group: str, snapshot: bytes | None) -> None:
        """Record a group's membership durably (None: it has none any more)."""
        await self._store(self._table.put_group_metadata(group, snapshot))

    async def delete_topic(self, topic: str) -> None:
        """Forget every group's offsets for a deleted topic."""
        change = self._table.delete_topic(topic)
        if change is not None:
            await self._store(change)

    async def _store(self, change: Change) -> None:
        self._in_flight += 1
        try:
            await self._records.append([change.payload])
            self._table.apply(change)
        finally:
            self._in_flight -= 1
        await self._maybe_compact()

    async def _maybe_compact(self) -> None:
        # only with nothing in flight: the rewrite must hold every change submitted before it
        if (
            self._compacting
            or self._in_flight
            or self._records.size < self._compact_min_bytes
            or not self._table.mostly_superseded
        ):
            return
        self._compacting = True
        try:
            await self._records.rewrite(self._table.live_records())
        except StorageError as exc:
            log.warning("offsets not compacted: %s", exc)
        finally:
            self._compacting = False

    # -- queries ----------------------------------------------------------------------------

    def fetch(
        self, group: str, topic: str | None = None, partition: int | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        return self._table.fetch(group, topic, partition)

    def get(self, group: str, topic: str, partition: int) -> CommittedOffset | None:
        return self._table.get(group, topic, partition)

    def groups(self) -> list[str]:
        return self._table.groups()

    def group_metadata(self) -> dict[str, bytes]:
        return self._table.group_metadata()

    def close(self) -> None:
        """Finish pending writes and close the file."""
        self._records.close()
