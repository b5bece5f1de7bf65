"""Idempotent-producer state of every partition, loaded lazily, snapshotted on shutdown.

A partition's state is loaded the first time an idempotent batch arrives for it: the
snapshot in its directory (``producer.snapshot``, written on clean shutdown) plus the
headers of the batches the log holds past it. A crash leaves an older snapshot (or none),
and replaying the log from there rebuilds the exact state, so a producer retrying a batch
after a broker crash still gets its original offsets instead of a second copy.

Threads: ``check``, ``record``, ``expire`` and ``forget`` run on the log writer thread
(they go with the appends they judge); ``init_producer_id`` and ``ensure_loaded`` are
awaited on the event loop and do their file work in a worker thread. Files are written
through ``kafka.storage``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import NamedTuple

from streamsource.errors import CorruptStoreError
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.coordinator.producers import (
    InitProducerIdResult,
    PartitionProducerState,
    ProducerEntry,
    ProducerIdManager,
    SequenceOutcome,
)
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.records.header import BatchHeader
from streamsource.kafka.storage import StorageError, read_record_file, write_record_file

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "producer.snapshot"
SNAPSHOT_MAGIC = b"SSPSNP01"
IDS_FILE = "producer_ids"
IDS_MAGIC = b"SSPIDM01"


class Duplicate(NamedTuple):
    """A retried batch already in the log: answer with its original base offset."""

    base_offset: int


class ProducerRegistry:
    """Producer ids (InitProducerId) and per-partition sequence state."""

    def __init__(self, directory: Path, *, id_block_size: int = 1000) -> None:
        self._directory = directory
        self._id_block_size = id_block_size
        self._ids: ProducerIdManager | None = None
        self._states: dict[Partition, PartitionProducerState] = {}
        self._loading: dict[Partition, asyncio.Future[PartitionProducerState]] = {}
        self._allocating = asyncio.Lock()  # one id allocation (and its write) at a time

    def open(self) -> None:
        """Load the producer id state (blocking, at start-up); a damaged file is refused."""
        path = self._directory / IDS_FILE
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(self._directory, "cannot create", exc) from exc
        self._ids = ProducerIdManager(
            read_record_file(path, IDS_MAGIC), block_size=self._id_block_size
        )

    def close(self) -> None:
        """Snapshot every loaded partition state next to its log."""
        for partition, state in list(self._states.items()):
            if partition.closed:
                continue
            try:
                write_record_file(
                    partition.directory / SNAPSHOT_FILE,
                    SNAPSHOT_MAGIC,
                    state.to_snapshot(partition.high_watermark),
                )
            except StorageError as exc:
                log.warning(
                    "no producer snapshot for %s-%d: %s", partition.topic, partition.index, exc
                )
        self._states.clear()

    async def init_producer_id(
        self, transactional_id: str | None, producer_id: int, producer_epoch: int
    ) -> InitProducerIdResult:
        """Allocate (or bump) a producer id; a new id block is durable before it is used.

        Raises ``StorageError`` if the id state cannot be written: no id is handed out.
        """
        if self._ids is None:
            raise RuntimeError("the producer registry is not open")
        async with self._allocating:
            allocation = self._ids.init_producer_id(transactional_id, producer_id, producer_epoch)
            if allocation.payload is not None:
                await asyncio.to_thread(
                    write_record_file, self._directory / IDS_FILE, IDS_MAGIC, allocation.payload
                )
            return self._ids.apply(allocation)

    def check(self, partition: Partition, header: BatchHeader) -> Duplicate | ErrorCode:
        """Duplicate (with the original offset), NONE to append, or the error to answer."""
        verdict = self._state(partition).check(
            header.producer_id, header.producer_epoch, header.base_sequence, header.last_sequence
        )
        if verdict.outcome is SequenceOutcome.DUPLICATE and verdict.duplicate is not None:
            return Duplicate(verdict.duplicate.first_offset)
        return verdict.error_code

    def record(
        self, partition: Partition, header: BatchHeader, base_offset: int, now_ms: int
    ) -> None:
        """Note an appended idempotent batch."""
        self._state(partition).record(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.last_sequence,
            base_offset,
            base_offset + header.last_offset_delta,
            header.max_timestamp if header.max_timestamp >= 0 else now_ms,
        )

    def active(self, partition: Partition) -> list[ProducerEntry]:
        """The producers with state on the partition (on the log writer thread)."""
        return self._state(partition).entries()

    def expire(self, now_ms: int, max_idle_ms: int) -> int:
        """Forget producers idle for ``max_idle_ms`` (Kafka's producer.id.expiration.ms)."""
        return sum(state.expire(now_ms, max_idle_ms) for state in list(self._states.values()))

    def forget(self, partition: Partition) -> None:
        """Drop a deleted partition's state."""
        self._states.pop(partition, None)

    async def ensure_loaded(self, partition: Partition) -> None:
        """Load the partition's state in a worker thread unless it is loaded already.

        Replaying a long log tail takes a while; the event loop keeps serving meanwhile.
        Every idempotent produce to the partition awaits this first, so no idempotent batch
        is appended while the replay runs (other batches do not affect the state).
        """
        if partition in self._states:
            return
        loading = self._loading.get(partition)
        if loading is None:
            loading = asyncio.ensure_future(asyncio.to_thread(_load_state, partition))
            self._loading[partition] = loading
        try:
            state = await asyncio.shield(loading)
        finally:
            if loading.done():
                self._loading.pop(partition, None)
        if partition not in self._states and not partition.closed:
            self._states[partition] = state

    def _state(self, partition: Partition) -> PartitionProducerState:
        state = self._states.get(partition)
        if state is None:  # not preloaded (a caller that did not await ensure_loaded)
            state = self._states[partition] = _load_state(partition)
        return state


def _load_state(partition: Partition) -> PartitionProducerState:
    """The snapshot next to the log, brought up to date by the batches after it."""
    try:
        payload = read_record_file(partition.directory / SNAPSHOT_FILE, SNAPSHOT_MAGIC)
    except CorruptStoreError as exc:
        log.warning("%s: replaying the whole log instead: %s", partition.directory, exc)
        payload = None
    state = PartitionProducerState.from_snapshot(payload, partition.high_watermark)
    for batch in partition.log.iter_batch_headers(state.snapshot_offset):
        if batch.base_offset >= state.snapshot_offset:
            state.observe(batch)
    return state
