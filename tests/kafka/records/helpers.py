"""Building record data with kafka-python, an independent implementation of the formats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from streamsource.kafka.records import Compression

CODECS = list(Compression)
LEGACY_CODECS = [c for c in Compression if c is not Compression.ZSTD]  # zstd needs magic 2


def kafka_python_batch(
    codec: Compression, entries: Sequence[tuple[int, bytes | None, bytes | None, Any]]
) -> bytes:
    """A v2 batch from kafka-python's builder: entries are (timestamp, key, value, headers)."""
    builder = MemoryRecordsBuilder(2, int(codec), 1 << 22)
    for timestamp, key, value, headers in entries:
        builder.append(timestamp, key, value, headers)
    builder.close()
    return bytes(builder.buffer())


def kafka_python_legacy(
    magic: int, codec: Compression, entries: list[tuple[int, bytes | None, bytes | None]]
) -> bytes:
    """A legacy magic 0/1 message set: entries are (timestamp, key, value)."""
    builder = LegacyRecordBatchBuilder(magic, int(codec), 1 << 22)
    for offset, (timestamp, key, value) in enumerate(entries):
        builder.append(offset, timestamp if magic else None, key, value)
    return bytes(builder.build())


def read_with_kafka_python(data: bytes) -> list[tuple[Any, ...]]:
    """(offset, timestamp, key, value, headers) of every record kafka-python reads in data."""
    records = MemoryRecords(data)
    out = []
    while records.has_next():
        batch = records.next_batch()
        if batch is None:
            break
        if hasattr(batch, "validate_crc"):
            assert batch.validate_crc()
        for r in batch:
            out.append((r.offset, r.timestamp, r.key, r.value, list(r.headers)))
    return out
