"""Legacy message sets (magic 0 and 1): reading them for up-conversion, writing them for
old fetch versions.

A message set is a run of ``offset int64 | messageSize int32 | message``; a message is::

    crc uint32 | magic int8 | attributes int8 | [timestamp int64, magic 1 only] |
    keyLength int32 | key | valueLength int32 | value

with CRC-32 (zlib's) over magic .. end. A compressed message is a wrapper whose value is a
compressed message set of inner messages (one level deep).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import NamedTuple

from streamsource.kafka.records.batch import (
    assemble_batch,
    encode_record,
    iter_batch_records,
    iter_batches,
)
from streamsource.kafka.records.compression import (
    MAX_DECOMPRESSED_BYTES,
    Compression,
    codec_of,
    decompress,
)
from streamsource.kafka.records.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
)
from streamsource.kafka.records.header import (
    TIMESTAMP_TYPE_LOG_APPEND,
    ValidatedBatch,
    parse_header,
)

_Buffer = bytes | bytearray | memoryview
_OFFSET_SIZE = struct.Struct(">qi")
_CRC = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_MIN_MESSAGE = {0: 14, 1: 22}  # crc + magic + attributes (+ timestamp) + two lengths


class LegacyMessage(NamedTuple):
    """One message of a legacy set; ``offset`` is as written by the producer."""

    offset: int
    magic: int
    attributes: int
    timestamp: int  # -1 for magic 0
    key: bytes | None
    value: bytes | None


def iter_legacy_messages(
    data: _Buffer, *, max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
) -> Iterator[LegacyMessage]:
    """The messages of a complete legacy set, wrappers decompressed into their inner ones.

    All wrappers together may decompress to at most ``max_decompressed_bytes``. Raises
    CorruptRecordError (CRC mismatch, truncation), InvalidRecordError or RecordTooLargeError.
    """
    budget = max_decompressed_bytes
    for message in _iter_set(data, "message"):
        inner_set = _inner_set(message, budget)
        if inner_set is None:
            yield message
        else:
            budget -= len(inner_set)
            yield from _inner_messages(message, inner_set)


def _inner_set(message: LegacyMessage, max_bytes: int) -> bytes | None:
    """The decompressed value of a compressed wrapper; None for a plain message."""
    codec = codec_of(message.attributes)
    if codec is Compression.NONE:
        return None
    if message.value is None:
        raise InvalidRecordError(f"compressed message at offset {message.offset} is empty")
    # Kafka 0.8-0.9 wrote a wrong LZ4 header checksum in magic 0 messages
    return decompress(codec, message.value, max_bytes=max_bytes, legacy_lz4=message.magic == 0)


def _inner_messages(wrapper: LegacyMessage, inner_set: bytes) -> Iterator[LegacyMessage]:
    log_append = wrapper.magic == 1 and wrapper.attributes & TIMESTAMP_TYPE_LOG_APPEND
    for inner in _iter_set(inner_set, "inner message"):
        if inner.attributes & 0x07:
            raise InvalidRecordError("a compressed message holds another compressed one")
        yield inner._replace(timestamp=wrapper.timestamp) if log_append else inner


def _iter_set(data: _Buffer, what: str) -> Iterator[LegacyMessage]:
    view = data if isinstance(data, memoryview) else memoryview(data)
    end = len(view)
    pos = 0
    index = 0
    while pos < end:
        where = f"{what} {index} (byte {pos})"
        if end - pos < 17:
            raise CorruptRecordError(f"{where} is truncated")
        offset, size = _OFFSET_SIZE.unpack_from(view, pos)
        magic = view[pos + 16]
        if magic not in _MIN_MESSAGE:
            raise InvalidRecordError(f"{where} has magic {magic}")
        if size < _MIN_MESSAGE[magic]:
            raise CorruptRecordError(f"{where} has size {size}")
        stop = pos + 12 + size
        if stop > end:
            raise CorruptRecordError(f"{where} is truncated: {size} bytes announced")
        (crc,) = _CRC.unpack_from(view, pos + 12)
        actual = zlib.crc32(view[pos + 16 : stop])
        if actual != crc:
            raise CorruptRecordError(f"{where} fails its CRC-32 check ({actual:#010x})")
        attributes = view[pos + 17]
        p = pos + 18
        timestamp = -1
        if magic == 1:
            (timestamp,) = _I64.unpack_from(view, p)
            p += 8
        key, p = _read_bytes(view, p, stop, where)
        if p + 4 > stop:
            raise InvalidRecordError(f"{where} has no value length")
        value, p = _read_bytes(view, p, stop, where)
        if p != stop:
            raise InvalidRecordError(f"{where} has {stop - p} bytes after its value")
        yield LegacyMessage(offset, magic, attributes, timestamp, key, value)
        pos = stop
        index += 1


def _read_bytes(view: memoryview, pos: int, stop: int, where: str) -> tuple[bytes | None, int]:
    (length,) = _I32.unpack_from(view, pos)
    pos += 4
    if length < 0:
        if length != -1:
            raise InvalidRecordError(f"{where} has a field of length {length}")
        return None, pos
    if pos + length > stop:
        raise InvalidRecordError(f"{where} has a field running past its end")
    return bytes(view[pos : pos + length]), pos + length


def upconvert(
    data: _Buffer,
    *,
    now_ms: int = -1,
    max_bytes: int,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> ValidatedBatch:
    """Check a produced legacy set and convert it to one v2 batch.

    Keys, values and magic 1 timestamps are kept; magic 0 messages get ``now_ms``. The batch
    is compressed with the codec of the first compressed wrapper, if any.
    """
    if len(data) > max_bytes:
        raise RecordTooLargeError(f"message set is {len(data)} bytes, over {max_bytes}")
    view = data if isinstance(data, memoryview) else memoryview(data)
    codec = Compression.NONE
    # records are encoded as they are read, so memory stays near the decompressed size
    section = bytearray()
    count = 0
    base_timestamp = max_timestamp = -1
    for message in _iter_set(view, "message"):
        if codec is Compression.NONE:
            codec = codec_of(message.attributes)
    for message in iter_legacy_messages(view, max_decompressed_bytes=max_decompressed_bytes):
        timestamp = message.timestamp if message.magic == 1 else now_ms
        if count == 0:
            base_timestamp = timestamp
        max_timestamp = max(max_timestamp, timestamp)
        encode_record(section, count, timestamp - base_timestamp, message.key, message.value)
        count += 1
    if count == 0:
        raise InvalidRecordError("message set holds no messages")
    batch = assemble_batch(
        section,
        record_count=count,
        last_offset_delta=count - 1,
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        compression=codec,
    )
    if len(batch) > max_bytes:
        raise RecordTooLargeError(f"up-converted batch is {len(batch)} bytes, over {max_bytes}")
    return ValidatedBatch(parse_header(batch), bytearray(batch))


def encode_legacy_message(
    offset: int,
    magic: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    *,
    attributes: int = 0,
) -> bytes:
    """One uncompressed legacy message with its offset and size prefix."""
    body = bytearray((magic, attributes))
    if magic == 1:
        body += _I64.pack(timestamp)
    for field in (key, value):
        if field is None:
            body += b"\xff\xff\xff\xff"
        else:
            body += _I32.pack(len(field))
            body += field
    return _OFFSET_SIZE.pack(offset, len(body) + 4) + _CRC.pack(zlib.crc32(body)) + body


def downconvert(
    data: _Buffer,
    magic: int,
    *,
    max_bytes: int | None = None,
    min_offset: int = 0,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> bytes:
    """Stored v2 batches as an uncompressed legacy set of ``magic`` 0 or 1 (Fetch v0-3).

    Offsets are absolute; magic 1 keeps timestamps; headers are dropped (no place for them).
    Control batches are skipped and a partial trailing batch is dropped. With ``max_bytes``
    the set stops before exceeding it, but always holds at least one message. Records below
    ``min_offset`` (the fetch offset, inside the first batch) are left out.
    """
    if magic not in (0, 1):
        raise ValueError(f"legacy magic must be 0 or 1, not {magic}")
    out = bytearray()
    for header, batch in iter_batches(data):
        if header.is_control or header.last_offset < min_offset:
            continue
        log_append = header.attributes & TIMESTAMP_TYPE_LOG_APPEND
        attributes = TIMESTAMP_TYPE_LOG_APPEND if magic == 1 and log_append else 0
        for record in iter_batch_records(batch, max_bytes=max_decompressed_bytes):
            if record.offset < min_offset:
                continue
            message = encode_legacy_message(
                record.offset,
                magic,
                record.timestamp,
                record.key,
                record.value,
                attributes=attributes,
            )
            if max_bytes is not None and out and len(out) + len(message) > max_bytes:
                return bytes(out)
            out += message
    return bytes(out)
