"""Building and reading v2 record batches (magic 2, KIP-98).

A record inside a batch (all ints zig-zag varints)::

    length | attributes int8 | timestampDelta | offsetDelta | keyLength | key |
    valueLength | value | headerCount | (headerKeyLength | headerKey | valueLength | value)*
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import crc32c

from streamsource.kafka.records.compression import (
    MAX_DECOMPRESSED_BYTES,
    Compression,
    as_compression,
    codec_of,
    compress,
    decompress,
)
from streamsource.kafka.records.errors import CorruptRecordError, InvalidRecordError
from streamsource.kafka.records.header import (
    CONTROL,
    CRC_COVERED_FROM,
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    TIMESTAMP_TYPE_LOG_APPEND,
    TRANSACTIONAL,
    BatchHeader,
    parse_header,
)

CREATE_TIME = 0
LOG_APPEND_TIME = 1
NO_TIMESTAMP = -1

_Buffer = bytes | bytearray | memoryview
_U32 = struct.Struct(">I")
_FROM_ATTRIBUTES = struct.Struct(">hiqqqhii")  # attributes .. recordCount
_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD


class Record(NamedTuple):
    """One record. ``offset`` is absolute when read from a batch (-1 when building)."""

    offset_delta: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()
    offset: int = -1


# -- varints ------------------------------------------------------------------------------


def encode_varint(value: int, out: bytearray) -> None:
    """Append ``value`` as a zig-zag varint (Kafka's varint and varlong alike)."""
    zz = (value << 1) ^ (value >> 63)
    while zz > 0x7F:
        out.append((zz & 0x7F) | 0x80)
        zz >>= 7
    out.append(zz)


def decode_varint(buf: _Buffer, pos: int) -> tuple[int, int]:
    """Read a zig-zag varint at ``pos``: (value, next position). IndexError if truncated."""
    byte = buf[pos]
    pos += 1
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos
    result = byte & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise InvalidRecordError("varint is longer than 10 bytes")


# -- building -----------------------------------------------------------------------------


def _encode_bytes(value: bytes | None, out: bytearray) -> None:
    if value is None:
        out.append(1)  # zig-zag -1
    else:
        encode_varint(len(value), out)
        out += value


def encode_record(
    out: bytearray,
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] = (),
) -> None:
    """Append one record, length prefix included, to a records section."""
    body = bytearray(b"\x00")  # record attributes: unused
    encode_varint(timestamp_delta, body)
    encode_varint(offset_delta, body)
    _encode_bytes(key, body)
    _encode_bytes(value, body)
    headers = list(headers)
    encode_varint(len(headers), body)
    for name, header_value in headers:
        _encode_bytes(name.encode(), body)
        _encode_bytes(header_value, body)
    encode_varint(len(body), out)
    out += body


def encode_records(records: Iterable[Record], base_timestamp: int) -> bytearray:
    """The records section of a batch (uncompressed), deltas relative to ``base_timestamp``."""
    out = bytearray()
    for r in records:
        encode_record(out, r.offset_delta, r.timestamp - base_timestamp, r.key, r.value, r.headers)
    return out


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    timestamp_type: int = CREATE_TIME,
    partition_leader_epoch: int = -1,
    max_timestamp: int | None = None,
) -> bytes:
    """Encode ``records`` as one v2 batch with a valid CRC-32C.

    Offset deltas come from the records; the first record's timestamp is the base timestamp.
    ``max_timestamp`` overrides the computed one (with LOG_APPEND_TIME, the append time).
    """
    if not records:
        raise ValueError("a record batch needs at least one record")
    base_timestamp = records[0].timestamp
    if max_timestamp is None:
        max_timestamp = max(record.timestamp for record in records)
    return assemble_batch(
        encode_records(records, base_timestamp),
        record_count=len(records),
        last_offset_delta=records[-1].offset_delta,
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        base_offset=base_offset,
        compression=compression,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        transactional=transactional,
        control=control,
        timestamp_type=timestamp_type,
        partition_leader_epoch=partition_leader_epoch,
    )


def assemble_batch(
    records_section: _Buffer,
    *,
    record_count: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    timestamp_type: int = CREATE_TIME,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A v2 batch around an encoded (uncompressed) records section: header, codec, CRC."""
    compression = as_compression(compression)
    body: _Buffer = records_section
    if compression is not Compression.NONE:
        body = compress(compression, body)
    attributes = int(compression)
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_LOG_APPEND
    if transactional:
        attributes |= TRANSACTIONAL
    if control:
        attributes |= CONTROL
    tail = bytearray(
        _FROM_ATTRIBUTES.pack(
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        )
    )
    tail += body
    crc = crc32c.crc32c(tail)
    # batchLength counts partitionLeaderEpoch, magic and crc (9 bytes) plus the CRC'd tail
    head = struct.pack(">qiibI", base_offset, len(tail) + 9, partition_leader_epoch, 2, crc)
    return head + tail


# -- reading ------------------------------------------------------------------------------


def check_batch(batch: _Buffer) -> BatchHeader:
    """Parse and verify one complete v2 batch: magic, length and CRC-32C.

    Raises CorruptRecordError (truncated, CRC mismatch) or InvalidRecordError (bad magic or
    length). Records are not parsed.
    """
    if len(batch) < HEADER_SIZE:
        raise CorruptRecordError(f"record batch is truncated: {len(batch)} bytes")
    header = parse_header(batch)
    if header.magic != 2:
        raise InvalidRecordError(f"record batch has magic {header.magic}, expected 2")
    if header.batch_length < _MIN_BATCH_LENGTH:
        raise InvalidRecordError(f"record batch length {header.batch_length} is too small")
    if header.size != len(batch):
        raise CorruptRecordError(
            f"record batch length {header.batch_length} does not match its {len(batch)} bytes"
        )
    view = batch if isinstance(batch, memoryview) else memoryview(batch)
    actual = crc32c.crc32c(view[CRC_COVERED_FROM:])
    if actual != header.crc:
        raise CorruptRecordError(
            f"record batch at offset {header.base_offset}: CRC-32C is {actual:#010x}, "
            f"the header says {header.crc:#010x}"
        )
    return header


def iter_batches(data: _Buffer) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Walk concatenated v2 batches (no CRC check) and yield (header, batch bytes).

    Stops quietly at a partial trailing batch (a fetch cut or a torn write); raises
    InvalidRecordError at a header that cannot be a v2 batch, so the walk never strays.
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    end = len(view)
    pos = 0
    while pos + HEADER_SIZE <= end:
        header = parse_header(view, pos)
        if header.magic != 2 or header.batch_length < _MIN_BATCH_LENGTH:
            raise InvalidRecordError(
                f"no v2 record batch at byte {pos} (magic {header.magic}, "
                f"length {header.batch_length})"
            )
        stop = pos + header.size
        if stop > end:
            return
        yield header, view[pos:stop]
        pos = stop


def batch_max_timestamp(batch: _Buffer) -> int:
    """The batch's max timestamp (what the time index records)."""
    return parse_header(batch).max_timestamp


def magic_of(data: _Buffer) -> int:
    """The magic byte of the first batch or legacy message in ``data`` (same position)."""
    if len(data) <= MAGIC_OFFSET:
        raise CorruptRecordError(f"record data is truncated: {len(data)} bytes")
    return data[MAGIC_OFFSET]


def batch_records_bytes(
    batch: _Buffer, *, max_bytes: int = MAX_DECOMPRESSED_BYTES
) -> tuple[BatchHeader, _Buffer]:
    """The header and the (decompressed) records section of one v2 batch."""
    if len(batch) < HEADER_SIZE:
        raise CorruptRecordError(f"record batch is truncated: {len(batch)} bytes")
    header = parse_header(batch)
    if header.batch_length < _MIN_BATCH_LENGTH or header.size > len(batch):
        raise CorruptRecordError(f"record batch length {header.batch_length} does not fit")
    body = memoryview(batch)[HEADER_SIZE : header.size]
    codec = codec_of(header.attributes)
    if codec is not Compression.NONE:
        return header, decompress(codec, body, max_bytes=max_bytes)
    return header, body


def iter_batch_records(
    batch: _Buffer, *, max_bytes: int = MAX_DECOMPRESSED_BYTES
) -> Iterator[Record]:
    """The records of one v2 batch, decompressed, with absolute offsets and timestamps.

    With LOG_APPEND_TIME every record carries the batch's max timestamp, as Kafka reports it.
    Raises InvalidRecordError if the records do not parse or disagree with the header.
    """
    header, body = batch_records_bytes(batch, max_bytes=max_bytes)
    log_append = header.attributes & TIMESTAMP_TYPE_LOG_APPEND
    end = len(body)
    pos = 0
    count = 0
    try:
        while pos < end:
            length, pos = decode_varint(body, pos)
            stop = pos + length
            if length < 6 or stop > end:
                raise InvalidRecordError(f"record {count} has an impossible length {length}")
            pos += 1  # attributes
            ts_delta, pos = decode_varint(body, pos)
            offset_delta, pos = decode_varint(body, pos)
            key, pos = _decode_bytes(body, pos, stop)
            value, pos = _decode_bytes(body, pos, stop)
            header_count, pos = decode_varint(body, pos)
            if header_count < 0 or header_count > length:
                raise InvalidRecordError(f"record {count} has {header_count} headers")
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(header_count):
                name, pos = _decode_bytes(body, pos, stop)
                header_value, pos = _decode_bytes(body, pos, stop)
                if name is None:
                    raise InvalidRecordError(f"record {count} has a header with a null key")
                headers.append((name.decode("utf-8", "replace"), header_value))
            if pos != stop:
                raise InvalidRecordError(f"record {count} length disagrees with its fields")
            count += 1
            timestamp = header.max_timestamp if log_append else header.base_timestamp + ts_delta
            yield Record(
                offset_delta,
                timestamp,
                key,
                value,
                headers,
                header.base_offset + offset_delta,
            )
    except IndexError:
        raise InvalidRecordError(f"record {count} is truncated") from None
    if count != header.record_count:
        raise InvalidRecordError(
            f"record batch says {header.record_count} records but holds {count}"
        )


def _decode_bytes(buf: _Buffer, pos: int, stop: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > stop:
        raise InvalidRecordError("record field runs past the end of its record")
    return bytes(buf[pos:end]), end


def set_log_append_time(batch: bytearray | memoryview, now_ms: int) -> None:
    """Stamp a stored batch with the broker's clock (topics with LogAppendTime), in place.

    As Kafka does: set the timestamp-type bit and ``maxTimestamp``, keep the records, and
    recompute the CRC (these fields are under it). Readers then report ``now_ms`` for every
    record of the batch.
    """
    (attributes,) = struct.unpack_from(">h", batch, CRC_COVERED_FROM)
    struct.pack_into(">h", batch, CRC_COVERED_FROM, attributes | TIMESTAMP_TYPE_LOG_APPEND)
    struct.pack_into(">q", batch, 35, now_ms)  # maxTimestamp
    view = batch if isinstance(batch, memoryview) else memoryview(batch)
    _U32.pack_into(batch, CRC_OFFSET, crc32c.crc32c(view[CRC_COVERED_FROM:]))
