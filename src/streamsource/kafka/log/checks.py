"""What ``append`` checks and stamps on a batch on its way into the log.

The broker validates produced data fully (CRC, records) before appending; these checks are
only the structure the log itself relies on (a v2 header whose length matches the buffer),
plus the ``LogAppendTime`` stamp, which changes the batch and so re-computes its CRC.
"""

from __future__ import annotations

import struct

import crc32c

from streamsource.kafka.log.errors import BatchTooLarge, InvalidBatch
from streamsource.kafka.log.segment import MAGIC_V2, MIN_BATCH_LENGTH
from streamsource.kafka.records.header import (
    CRC_COVERED_FROM,
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    TIMESTAMP_TYPE_LOG_APPEND,
    BatchHeader,
    parse_header,
)

_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35


def checked_header(batch: bytes | bytearray | memoryview, max_message_bytes: int) -> BatchHeader:
    """The batch's header, after the structural checks the log relies on."""
    if len(batch) < HEADER_SIZE:
        raise InvalidBatch(f"a record batch needs at least {HEADER_SIZE} bytes, got {len(batch)}")
    header = parse_header(batch)
    if header.magic != MAGIC_V2:
        raise InvalidBatch(f"the log stores magic 2 batches only, got magic {header.magic}")
    if header.batch_length < MIN_BATCH_LENGTH or LOG_OVERHEAD + header.batch_length != len(batch):
        raise InvalidBatch(
            f"batch length field {header.batch_length} does not match its {len(batch)} bytes"
        )
    if header.last_offset_delta < 0:
        raise InvalidBatch(f"negative last offset delta {header.last_offset_delta}")
    if len(batch) > max_message_bytes:
        raise BatchTooLarge(
            f"a batch of {len(batch)} bytes exceeds max.message.bytes={max_message_bytes}"
        )
    return header


def stamp_log_append_time(batch: bytes | bytearray | memoryview, now_ms: int) -> bytearray:
    """A copy (or the bytearray itself) stamped with LogAppendTime, its CRC recomputed."""
    stamped = batch if isinstance(batch, bytearray) else bytearray(batch)
    (attributes,) = struct.unpack_from(">h", stamped, _ATTRIBUTES_AT)
    struct.pack_into(">h", stamped, _ATTRIBUTES_AT, attributes | TIMESTAMP_TYPE_LOG_APPEND)
    struct.pack_into(">q", stamped, _MAX_TIMESTAMP_AT, now_ms)
    crc = crc32c.crc32c(memoryview(stamped)[CRC_COVERED_FROM:])
    struct.pack_into(">I", stamped, CRC_OFFSET, crc)
    return stamped
