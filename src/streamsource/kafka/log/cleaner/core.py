"""Which records log compaction keeps: pure functions over batches, no files.

The rules are Kafka's (``LogCleaner``):

* a record survives when its offset is at least the latest offset the ``OffsetMap`` holds
  for its key (keys the map does not hold survive: a later pass decides);
* a record without a key goes (a compacted topic refuses them at produce; older ones are
  dropped, as Kafka does);
* a tombstone (null value) survives until its batch's delete horizon has passed. The first
  cleaning that keeps a tombstone stamps the horizon, ``now + delete.retention.ms``, into
  the batch (KIP-534: attributes bit 6, the base timestamp field), so a consumer reading
  from the start has that long to see every delete, whatever the record timestamps say;
* records of aborted transactions go; a marker (control batch) stays while its
  transaction has records left in the log, then is stamped with a horizon and goes after
  it, as a tombstone does. An abort marker whose transaction has no batch left is
  reported (``Cleaner.dataless_aborts``) so that the partition's transaction index stops
  listing that transaction *before* the marker can go: a read_committed client told of an
  aborted transaction skips the producer's batches until it reads the abort marker, so an
  entry whose marker is gone would hide the producer's later, committed records;
* offsets never change: a rewritten batch keeps its base offset and its last offset delta
  (so its producer's sequence numbers stay right), and the last batch of each producer is
  kept, empty if need be, so producer state rebuilt from the log stays right.

``Cleaner.clean`` takes the batches of the cleaned range in offset order and returns each
one unchanged, rewritten or ``None`` (dropped).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import crc32c

from streamsource.kafka.records.batch import (
    Record,
    assemble_batch,
    encode_records,
    iter_batch_records,
)
from streamsource.kafka.records.compression import Compression, codec_of
from streamsource.kafka.records.errors import RecordError
from streamsource.kafka.records.header import (
    CONTROL,
    CRC_COVERED_FROM,
    CRC_OFFSET,
    TIMESTAMP_TYPE_LOG_APPEND,
    TRANSACTIONAL,
    BatchHeader,
    parse_header,
)

DELETE_HORIZON = 0x40  # attributes bit 6: baseTimestamp holds the delete horizon (KIP-534)
MARKER_ABORT = 0
MARKER_COMMIT = 1
# What one map entry costs in Python (a 16-byte digest key, an int, the dict slot), so that
# log.cleaner.dedupe.buffer.size bounds real memory, not Kafka's 24 bytes per entry.
MAP_ENTRY_BYTES = 160
_ATTRIBUTES = struct.Struct(">h")
_MARKER_KEY = struct.Struct(">hh")


class OffsetMap:
    """Key digest -> latest offset, holding at most ``capacity`` keys.

    Keys are stored as 16-byte BLAKE2b digests, so memory does not depend on key length
    (Kafka stores MD5 digests; a collision could drop a record, with odds around 2**-64 for
    a billion keys).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an offset map needs room for at least one key")
        self.capacity = capacity
        self._offsets: dict[bytes, int] = {}

    @classmethod
    def for_bytes(cls, buffer_bytes: int) -> OffsetMap:
        return cls(max(1, buffer_bytes // MAP_ENTRY_BYTES))

    @staticmethod
    def digest(key: bytes) -> bytes:
        return hashlib.blake2b(key, digest_size=16).digest()

    def put(self, key: bytes, offset: int) -> None:
        self._offsets[self.digest(key)] = offset

    def get(self, key: bytes) -> int:
        """The latest offset of ``key``, or -1."""
        return self._offsets.get(self.digest(key), -1)

    @property
    def free(self) -> int:
        return self.capacity - len(self._offsets)

    def __len__(self) -> int:
        return len(self._offsets)


@dataclass
class Transactions:
    """What the cleaner must know of the log's transactions, from one walk over headers.

    ``aborted`` holds, per producer, the offset ranges of aborted transactions (first
    record, marker); ``open_start`` is the first offset of the earliest transaction without
    a marker yet (nothing from there on may be cleaned, as Kafka cleans only below the last
    stable offset); ``last_batch`` is each producer's last batch in the log.
    """

    aborted: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    last_batch: dict[int, int] = field(default_factory=dict)
    _open: dict[int, int] = field(default_factory=dict)

    def observe(self, header: BatchHeader, marker: int | None = None) -> None:
        """Walk the log's batches in order; ``marker`` is a control batch's marker type."""
        pid = header.producer_id
        if pid < 0:
            return
        self.last_batch[pid] = header.base_offset
        if header.is_control:
            first = self._open.pop(pid, None)
            if first is not None and marker == MARKER_ABORT:
                self.aborted.setdefault(pid, []).append((first, header.base_offset))
        elif header.is_transactional:
            self._open.setdefault(pid, header.base_offset)

    @property
    def open_start(self) -> int | None:
        return min(self._open.values()) if self._open else None

    def is_aborted(self, producer_id: int, offset: int) -> bool:
        return any(first <= offset < end for first, end in self.aborted.get(producer_id, ()))

    def aborted_with_data(self, producer_id: int, marker_offset: int) -> bool:
        """Whether the abort marker at ``marker_offset`` ends a transaction that still had
        batches in the log when it was walked."""
        return any(end == marker_offset for _, end in self.aborted.get(producer_id, ()))


def marker_type(batch: bytes | bytearray | memoryview) -> int | None:
    """The control record type of a control batch (0 abort, 1 commit), None if unreadable."""
    try:
        for record in iter_batch_records(batch):
            if record.key is not None and len(record.key) >= _MARKER_KEY.size:
                return int(_MARKER_KEY.unpack_from(record.key)[1])
    except RecordError:  # a damaged marker: its transaction counts as committed
        return None
    return None


def map_batch(
    offset_map: OffsetMap, batch: bytes | bytearray | memoryview, transactions: Transactions
) -> bool:
    """Add the keys of one batch to the map; ``False`` (nothing added) if they may not fit.

    Control batches and aborted transactions' batches add nothing: their records are not
    values of their keys.
    """
    header = parse_header(batch)
    if header.is_control or (
        header.is_transactional and transactions.is_aborted(header.producer_id, header.base_offset)
    ):
        return True
    if header.record_count > offset_map.free:
        return False
    for record in iter_batch_records(batch):
        if record.key is not None:
            offset_map.put(record.key, record.offset)
    return True


class Cleaner:
    """Decides batch by batch, in offset order, what one cleaning pass keeps."""

    def __init__(
        self,
        offset_map: OffsetMap,
        transactions: Transactions,
        *,
        now_ms: int,
        delete_retention_ms: int,
    ) -> None:
        self._map = offset_map
        self._txns = transactions
        self._now = now_ms
        self._horizon = now_ms + delete_retention_ms
        self._txn_kept: dict[int, bool] = {}  # producer -> its open transaction kept records
        # (producer id, marker offset) of abort markers whose transaction has no batch left:
        # the transaction index must forget them before the markers may go
        self.dataless_aborts: list[tuple[int, int]] = []
        # the first delete horizon still ahead among the batches kept: when it passes, the
        # log is worth cleaning even without new data (its tombstones can go)
        self.earliest_horizon: int | None = None

    def clean(self, batch: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview | None:
        """The batch as it stays in the log: unchanged, rewritten, or ``None`` (dropped)."""
        kept = self._decide(batch)
        if kept is not None:
            header = parse_header(kept)
            horizon = header.base_timestamp
            if header.attributes & DELETE_HORIZON and horizon > self._now:
                self.earliest_horizon = min(horizon, self.earliest_horizon or horizon)
        return kept

    def _decide(
        self, batch: bytes | bytearray | memoryview
    ) -> bytes | bytearray | memoryview | None:
        header = parse_header(batch)
        pid = header.producer_id
        last_of_producer = pid >= 0 and self._txns.last_batch.get(pid) == header.base_offset
        if header.is_control:
            kept_records = self._txn_kept.pop(pid, False)
            kind = marker_type(batch)
            if kept_records or kind is None:
                return batch  # its transaction's records are still here (or it is unreadable)
            if kind == MARKER_ABORT:
                if self._txns.aborted_with_data(pid, header.base_offset):
                    return batch  # its records go in this cleaning; the marker in a later one
                self.dataless_aborts.append((pid, header.base_offset))
            if header.attributes & DELETE_HORIZON:
                if header.base_timestamp <= self._now and not last_of_producer:
                    return None
                return batch
            return _rewrite(header, list(iter_batch_records(batch)), self._horizon)
        if header.is_transactional and self._txns.is_aborted(pid, header.base_offset):
            kept: list[Record] = []
        else:
            expired = (
                bool(header.attributes & DELETE_HORIZON) and header.base_timestamp <= self._now
            )
            records = list(iter_batch_records(batch))
            kept = [
                r
                for r in records
                if r.key is not None
                and r.offset >= self._map.get(r.key)
                and (r.value is not None or not expired)
            ]
            if header.is_transactional and kept:
                self._txn_kept[pid] = True
            stamp = any(r.value is None for r in kept) and not header.attributes & DELETE_HORIZON
            if len(kept) == len(records) and not stamp:
                return batch
            if kept:
                return _rewrite(header, kept, self._horizon if stamp else None)
        if last_of_producer:
            return _rewrite(header, [], None)
        return None


def _rewrite(header: BatchHeader, records: Sequence[Record], horizon: int | None) -> bytes:
    """The batch with only ``records``, same base offset and last offset delta.

    With ``horizon`` the delete-horizon bit is set and the base timestamp holds it (record
    timestamps are kept: their deltas are re-based on it).
    """
    log_append = bool(header.attributes & TIMESTAMP_TYPE_LOG_APPEND)
    if (
        horizon is None
        and header.attributes & DELETE_HORIZON
        and (header.is_control or any(r.value is None for r in records))
    ):
        horizon = header.base_timestamp  # keep a horizon stamped before, while it matters
    if horizon is not None:
        base_timestamp = horizon
    elif records and not log_append:
        base_timestamp = records[0].timestamp
    else:
        base_timestamp = header.base_timestamp
    if log_append or not records:
        max_timestamp = header.max_timestamp
    else:
        max_timestamp = max(r.timestamp for r in records)
    codec = codec_of(header.attributes) if records else Compression.NONE
    rebuilt = bytearray(
        assemble_batch(
            encode_records(records, base_timestamp),
            record_count=len(records),
            last_offset_delta=header.last_offset_delta,
            base_timestamp=base_timestamp,
            max_timestamp=max_timestamp,
            base_offset=header.base_offset,
            compression=codec,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            transactional=bool(header.attributes & TRANSACTIONAL),
            control=bool(header.attributes & CONTROL),
            timestamp_type=1 if log_append else 0,
            partition_leader_epoch=header.partition_leader_epoch,
        )
    )
    if horizon is not None:
        (attributes,) = _ATTRIBUTES.unpack_from(rebuilt, CRC_COVERED_FROM)
        _ATTRIBUTES.pack_into(rebuilt, CRC_COVERED_FROM, attributes | DELETE_HORIZON)
        struct.pack_into(">I", rebuilt, CRC_OFFSET, crc32c.crc32c(rebuilt[CRC_COVERED_FROM:]))
    return bytes(rebuilt)


@dataclass(frozen=True)
class SegmentInfo:
    """What the cleaner's planning needs of one closed segment."""

    base_offset: int
    next_offset: int
    size: int
    max_timestamp: int


def cleanable_end(
    segments: Iterable[SegmentInfo],
    active_base: int,
    open_txn_start: int | None,
    *,
    first_dirty: int,
    now_ms: int,
    min_compaction_lag_ms: int,
) -> int:
    """The offset below which cleaning may go: never the active segment, never an open
    transaction, never a dirty segment holding records younger than the compaction lag."""
    end = active_base
    if open_txn_start is not None:
        end = min(end, open_txn_start)
    if min_compaction_lag_ms > 0:
        for segment in segments:
            if segment.next_offset > first_dirty and (
                segment.max_timestamp > now_ms - min_compaction_lag_ms
            ):
                end = min(end, segment.base_offset)
                break
    return end


def needs_cleaning(
    segments: Sequence[SegmentInfo],
    *,
    first_dirty: int,
    end: int,
    min_dirty_ratio: float,
    now_ms: int,
    max_compaction_lag_ms: int,
) -> bool:
    """Whether the dirty part of ``[start, end)`` is large enough to clean now (or old
    enough: ``max.compaction.lag.ms``)."""
    clean = dirty = 0
    overdue = False
    for segment in segments:
        if segment.base_offset >= end:
            break
        if segment.next_offset > first_dirty:
            dirty += segment.size
            if 0 <= segment.max_timestamp < now_ms - max_compaction_lag_ms:
                overdue = True
        else:
            clean += segment.size
    if dirty == 0:
        return False
    return overdue or dirty / (clean + dirty) >= min_dirty_ratio
