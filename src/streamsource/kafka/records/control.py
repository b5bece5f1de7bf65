"""Control batches: the COMMIT/ABORT markers that end a transaction in each partition.

A marker is a v2 batch with the transactional and control attributes set, the producer's
id and epoch, no sequence (-1), and one record whose key is ``version int16 (0) | type
int16`` (0 abort, 1 commit) and whose value is ``version int16 (0) | coordinator epoch
int32`` (Kafka's ``EndTransactionMarker``). Consumers never hand control records to the
application; read_committed consumers use abort markers to stop dropping a producer's data.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from streamsource.kafka.records.batch import Record, build_batch
from streamsource.kafka.records.errors import InvalidRecordError

ABORT = 0
COMMIT = 1
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


class Marker(NamedTuple):
    """What a control record says."""

    commit: bool
    coordinator_epoch: int


def build_marker(
    producer_id: int,
    producer_epoch: int,
    *,
    commit: bool,
    timestamp_ms: int,
    coordinator_epoch: int = 0,
) -> bytearray:
    """A control batch ending ``producer_id``'s transaction (base offset 0: the log sets it)."""
    key = _KEY.pack(0, COMMIT if commit else ABORT)
    value = _VALUE.pack(0, coordinator_epoch)
    return bytearray(
        build_batch(
            [Record(0, timestamp_ms, key, value)],
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=-1,
            transactional=True,
            control=True,
        )
    )


def parse_marker(key: bytes | None, value: bytes | None) -> Marker:
    """Read a control record; InvalidRecordError for one that is not a v0 commit/abort."""
    if key is None or len(key) < _KEY.size:
        raise InvalidRecordError("control record key too short")
    version, kind = _KEY.unpack_from(key)
    if version != 0 or kind not in (ABORT, COMMIT):
        raise InvalidRecordError(f"unknown control record version {version} type {kind}")
    epoch = _VALUE.unpack_from(value)[1] if value is not None and len(value) >= 6 else -1
    return Marker(kind == COMMIT, epoch)
