"""Idempotent producers: durable producer-id allocation and per-partition sequence checks.

``ProducerIdManager`` answers InitProducerId. Ids are handed out from blocks; the end of
the current block is made durable by the broker before any id of it is used, so after a
restart allocation resumes past every id that may have been given out: ids never repeat.

``PartitionProducerState`` is what the broker consults before appending an idempotent
batch to a partition, following Kafka's ``ProducerStateManager``: per producer id it keeps
the epoch and the last 5 batches (a client has at most 5 in flight), so a retried batch is
recognised and answered with its original offsets instead of being appended twice. It is
sans-I/O: ``to_snapshot``/``from_snapshot`` encode it, the broker's storage writes it;
after loading, the broker feeds ``observe`` the headers of the batches the log holds past
the snapshot, which rebuilds the exact state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import msgspec

from streamsource.errors import CorruptStoreError
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.records.header import BatchHeader

INT32_MAX = 0x7FFFFFFF
MAX_EPOCH = 0x7FFF - 1  # Kafka keeps Short.MaxValue free; the next bump takes a new id
CACHED_BATCHES = 5  # Kafka's max.in.flight.requests.per.connection limit for idempotence


# -- producer ids ---------------------------------------------------------------------------


class InitProducerIdResult(NamedTuple):
    """The InitProducerId response values."""

    error_code: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1


class _IdState(msgspec.Struct, array_like=True):
    next_block_start: int
    transactional: dict[str, tuple[int, int]]


class IdAllocation(NamedTuple):
    """What InitProducerId answers, and the state to make durable before answering.

    ``payload`` is None when nothing new must be written (an id from the current block);
    otherwise the broker writes it and only then calls ``ProducerIdManager.apply``.
    """

    result: InitProducerIdResult
    payload: bytes | None
    state: _IdState
    next_id: int


class ProducerIdManager:
    """Allocates producer ids that are never reused, even across restarts.

    Sans-I/O: ``init_producer_id`` plans an allocation without changing anything; the
    broker persists ``payload`` (if any), then ``apply``s it. One allocation at a time.
    """

    def __init__(
        self,
        payload: bytes | None = None,
        *,
        block_size: int = 1000,
        max_transactional_ids: int = 10_000,
    ) -> None:
        self._block_size = block_size
        self._max_transactional_ids = max_transactional_ids
        self._state = _IdState(0, {})
        if payload is not None:
            try:
                self._state = msgspec.msgpack.decode(payload, type=_IdState)
            except msgspec.DecodeError as exc:
                # guessing here could hand out an id twice: refuse instead
                raise CorruptStoreError(f"the producer id state does not decode: {exc}") from exc
        self._next_id = self._state.next_block_start  # a block in use at a crash is skipped

    def init_producer_id(
        self, transactional_id: str | None = None, producer_id: int = -1, producer_epoch: int = -1
    ) -> IdAllocation:
        """InitProducerId: a fresh id for an idempotent producer; for a transactional id,
        the same id with the epoch bumped (fencing the previous incarnation)."""
        block_end = self._state.next_block_start
        next_id = self._next_id
        transactional = self._state.transactional

        def allocate() -> int:
            nonlocal block_end, next_id
            if next_id >= block_end:
                block_end = next_id + self._block_size
            pid = next_id
            next_id += 1
            return pid

        if not transactional_id:
            # Kafka gives a producer without transactional id a new id every time
            result = InitProducerIdResult(ErrorCode.NONE, allocate(), 0)
        else:
            current = transactional.get(transactional_id)
            if current is None:
                pid, epoch = allocate(), 0
            else:
                pid, epoch = current
                if producer_id >= 0 and (producer_id, producer_epoch) != (pid, epoch):
                    return IdAllocation(
                        InitProducerIdResult(ErrorCode.INVALID_PRODUCER_EPOCH),
                        None,
                        self._state,
                        self._next_id,
                    )
                if epoch >= MAX_EPOCH:
                    pid, epoch = allocate(), 0
                else:
                    epoch += 1
            transactional = dict(transactional)
            transactional.pop(transactional_id, None)  # re-insert: dict order is recency
            transactional[transactional_id] = (pid, epoch)
            while len(transactional) > self._max_transactional_ids:
                del transactional[next(iter(transactional))]
            result = InitProducerIdResult(ErrorCode.NONE, pid, epoch)
        state = _IdState(block_end, transactional)
        changed = block_end != self._state.next_block_start or transactional is not (
            self._state.transactional
        )
        payload = msgspec.msgpack.encode(state) if changed else None
        return IdAllocation(result, payload, state, next_id)

    def apply(self, allocation: IdAllocation) -> InitProducerIdResult:
        """Take the allocation (its payload, if any, is durable now); returns its result."""
        self._state = allocation.state
        self._next_id = allocation.next_id
        return allocation.result


# -- per-partition sequences ----------------------------------------------------------------


class BatchMetadata(NamedTuple):
    """Where an idempotent batch went: its sequences, offsets and timestamp."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    """One producer's state on one partition."""

    producer_id: int
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=CACHED_BATCHES))
    last_timestamp: int = -1

    @property
    def last_seq(self) -> int:
        """The last sequence written (-1 when none is known)."""
        return self.batches[-1].last_seq if self.batches else -1


class SequenceOutcome(Enum):
    """What the broker should do with an idempotent batch."""

    ACCEPT = "accept"
    DUPLICATE = "duplicate"  # answer with the original offsets, append nothing
    OUT_OF_ORDER_SEQUENCE = "out_of_order_sequence"
    INVALID_PRODUCER_EPOCH = "invalid_producer_epoch"
    UNKNOWN_PRODUCER_ID = (
        "unknown_producer_id"  # kept for completeness; Kafka 2.5+ no longer sends it
    )


_OUTCOME_CODES = {
    SequenceOutcome.ACCEPT: ErrorCode.NONE,
    SequenceOutcome.DUPLICATE: ErrorCode.NONE,  # the client sees success, with the old offsets
    SequenceOutcome.OUT_OF_ORDER_SEQUENCE: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    SequenceOutcome.INVALID_PRODUCER_EPOCH: ErrorCode.INVALID_PRODUCER_EPOCH,
    SequenceOutcome.UNKNOWN_PRODUCER_ID: ErrorCode.UNKNOWN_PRODUCER_ID,
}


class SequenceCheck(NamedTuple):
    """The verdict on a batch; ``duplicate`` holds the original batch for DUPLICATE."""

    outcome: SequenceOutcome
    duplicate: BatchMetadata | None = None

    @property
    def error_code(self) -> ErrorCode:
        """The Produce partition error code to answer with."""
        return _OUTCOME_CODES[self.outcome]


_ACCEPT = SequenceCheck(SequenceOutcome.ACCEPT)
_OUT_OF_ORDER = SequenceCheck(SequenceOutcome.OUT_OF_ORDER_SEQUENCE)
_BAD_EPOCH = SequenceCheck(SequenceOutcome.INVALID_PRODUCER_EPOCH)


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class _SnapshotBatch(msgspec.Struct, array_like=True):
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


class _SnapshotEntry(msgspec.Struct, array_like=True):
    producer_id: int
    epoch: int
    last_timestamp: int
    batches: list[_SnapshotBatch]


class _Snapshot(msgspec.Struct, array_like=True):
    log_end_offset: int
    entries: list[_SnapshotEntry]


class PartitionProducerState:
    """Idempotent-producer state of one partition."""

    def __init__(self, *, max_producers: int = 100_000) -> None:
        self._producers: dict[int, ProducerEntry] = {}  # dict order: least recently used first
        self._max_producers = max_producers
        # where ``observe`` must resume after ``load``: the snapshot's log end offset
        self.snapshot_offset = 0

    def check(
        self, producer_id: int, producer_epoch: int, base_sequence: int, last_sequence: int
    ) -> SequenceCheck:
        """May this batch be appended? (Kafka's duplicate, epoch and sequence checks.)"""
        if producer_id < 0:
            return _ACCEPT  # not an idempotent producer
        entry = self._producers.get(producer_id)
        if entry is None:
            # no state (new producer, or expired): Kafka accepts whatever sequence comes
            return _ACCEPT
        if producer_epoch < entry.epoch:
            return _BAD_EPOCH
        if producer_epoch > entry.epoch:
            return _ACCEPT if base_sequence == 0 else _OUT_OF_ORDER
        for batch in entry.batches:
            if batch.first_seq == base_sequence and batch.last_seq == last_sequence:
                return SequenceCheck(SequenceOutcome.DUPLICATE, batch)
        if not entry.batches or _in_sequence(entry.last_seq, base_sequence):
            return _ACCEPT
        return _OUT_OF_ORDER

    def record(
        self,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        last_sequence: int,
        base_offset: int,
        last_offset: int,
        timestamp: int,
    ) -> None:
        """Note an appended batch (after ``check`` said ACCEPT)."""
        if producer_id < 0 or base_sequence < 0:
            return
        entry = self._entry_for(producer_id, producer_epoch)
        entry.batches.append(
            BatchMetadata(base_sequence, last_sequence, base_offset, last_offset, timestamp)
        )
        entry.last_timestamp = timestamp

    def _entry_for(self, producer_id: int, producer_epoch: int) -> ProducerEntry:
        entry = self._producers.pop(producer_id, None)
        if entry is None or producer_epoch > entry.epoch:
            entry = ProducerEntry(producer_id, producer_epoch)  # a new epoch starts afresh
        self._producers[producer_id] = entry
        while len(self._producers) > self._max_producers:
            del self._producers[next(iter(self._producers))]
        return entry

    def observe(self, header: BatchHeader) -> None:
        """Replay a batch read back from the log (rebuilding state after ``load``)."""
        if header.producer_id < 0:
            return
        if header.is_control:
            # a transaction marker carries the epoch but no sequences
            entry = self._entry_for(header.producer_id, header.producer_epoch)
            entry.last_timestamp = max(entry.last_timestamp, header.max_timestamp)
            return
        self.record(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.last_sequence,
            header.base_offset,
            header.last_offset,
            header.max_timestamp,
        )

    def entry(self, producer_id: int) -> ProducerEntry | None:
        """The state kept for one producer (None when unknown)."""
        return self._producers.get(producer_id)

    def entries(self) -> list[ProducerEntry]:
        """Every producer with state here (DescribeProducers)."""
        return list(self._producers.values())

    def __len__(self) -> int:
        return len(self._producers)

    def expire(self, now_ms: int, max_idle_ms: int = 86_400_000) -> int:
        """Forget producers idle longer than ``max_idle_ms`` (Kafka's
        producer.id.expiration.ms, 1 day); returns how many were dropped."""
        stale = [
            pid for pid, e in self._producers.items() if e.last_timestamp + max_idle_ms <= now_ms
        ]
        for pid in stale:
            del self._producers[pid]
        return len(stale)

    # -- snapshots -------------------------------------------------------------------------

    def to_snapshot(self, log_end_offset: int) -> bytes:
        """The state as of ``log_end_offset``, encoded (the broker writes it to a file)."""
        snap = _Snapshot(
            log_end_offset,
            [
                _SnapshotEntry(
                    e.producer_id,
                    e.epoch,
                    e.last_timestamp,
                    [_SnapshotBatch(*b) for b in e.batches],
                )
                for e in self._producers.values()
            ],
        )
        return msgspec.msgpack.encode(snap)

    @classmethod
    def from_snapshot(
        cls,
        payload: bytes | None,
        log_end_offset: int | None = None,
        *,
        max_producers: int = 100_000,
    ) -> PartitionProducerState:
        """The state ``to_snapshot`` encoded; then ``observe`` the log from ``snapshot_offset``.

        A missing or undecodable snapshot, or one taken past ``log_end_offset`` (the log
        lost its tail in a crash), gives an empty state with ``snapshot_offset`` 0:
        replaying the whole log rebuilds the state just the same, only slower.
        """
        state = cls(max_producers=max_producers)
        if payload is None:
            return state
        try:
            snap = msgspec.msgpack.decode(payload, type=_Snapshot)
        except msgspec.DecodeError:
            return state
        if log_end_offset is not None and snap.log_end_offset > log_end_offset:
            return state
        for e in snap.entries[-max_producers:]:
            entry = ProducerEntry(e.producer_id, e.epoch, last_timestamp=e.last_timestamp)
            entry.batches.extend(BatchMetadata(*msgspec.structs.astuple(b)) for b in e.batches)
            state._producers[e.producer_id] = entry
        state.snapshot_offset = snap.log_end_offset
        return state
