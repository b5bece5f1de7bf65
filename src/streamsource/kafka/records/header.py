"""The fixed 61-byte header of a v2 record batch (KIP-98), the unit the log stores.

Layout (big-endian)::

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 |
    crc uint32 | attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 |
    maxTimestamp int64 | producerId int64 | producerEpoch int16 | baseSequence int32 |
    recordCount int32

The CRC-32C covers everything from ``attributes`` to the end of the batch, so the broker can
patch ``baseOffset`` and ``partitionLeaderEpoch`` without recomputing it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: bytes before the part batchLength counts
CRC_OFFSET = 17  # where the crc field starts
CRC_COVERED_FROM = 21  # the crc covers attributes .. end
MAGIC_OFFSET = 16

_HEADER = struct.Struct(">qiibIhiqqqhii")

# attributes bits
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_LOG_APPEND = 0x08
TRANSACTIONAL = 0x10
CONTROL = 0x20


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int  # bytes after the batchLength field
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch, header included."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


@dataclass(slots=True)
class ValidatedBatch:
    """A checked v2 batch: its header and its bytes (a private ``bytearray`` copy ready for
    ``patch_base_offset``, unless validated with ``copy=False``)."""

    header: BatchHeader
    data: bytearray | memoryview


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the header at ``pos``; raises ``struct.error`` if fewer than 61 bytes remain."""
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def patch_base_offset(
    batch: bytearray | memoryview, base_offset: int, leader_epoch: int | None = None
) -> None:
    """Set ``baseOffset`` (and ``partitionLeaderEpoch``) in place; the CRC stays valid."""
    struct.pack_into(">q", batch, 0, base_offset)
    if leader_epoch is not None:
        struct.pack_into(">i", batch, 12, leader_epoch)
