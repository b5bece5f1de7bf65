"""Checking the record data of a produce request before the log appends it.

v2 batches are checked without decoding their records (this runs on every produce): header,
length, CRC-32C, offsets and, for uncompressed batches, that the record lengths tile the
batch and agree with ``recordCount``. Legacy magic 0/1 message sets are checked and
up-converted to one v2 batch, since the log stores v2 only.
"""

from __future__ import annotations

import ctypes

import crc32c

from streamsource.kafka.records.batch import decode_varint
from streamsource.kafka.records.compression import MAX_DECOMPRESSED_BYTES, codec_of
from streamsource.kafka.records.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
)
from streamsource.kafka.records.header import (
    COMPRESSION_MASK,
    CRC_COVERED_FROM,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    ValidatedBatch,
    parse_header,
)
from streamsource.kafka.records.legacy import upconvert

DEFAULT_MAX_BATCH_BYTES = 1048588
"""Kafka's default ``max.message.bytes``: the largest batch a topic accepts."""

_Buffer = bytes | bytearray | memoryview
_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
_MIN_WINDOW, _MAX_WINDOW = 256, 8192  # records one look at a run takes in (count_records)


def validate_produce_records(
    data: _Buffer,
    *,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    now_ms: int = -1,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    check_record_count: bool = True,
    copy: bool = True,
) -> list[ValidatedBatch]:
    """Check a partition's produce data and return its batches in v2 form.

    ``now_ms`` is the timestamp given to magic 0 messages (which have none) when they are
    up-converted. Raises CorruptRecordError, InvalidRecordError, RecordTooLargeError or
    UnsupportedCompressionError, each with the Kafka ``error_code`` to answer with.

    Each batch is a private ``bytearray`` copy, or with ``copy=False`` a view of ``data``
    (the broker's request frames are never reused, and copying one costs CPU per message).
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    end = len(view)
    if end < LOG_OVERHEAD + 5:
        raise CorruptRecordError(f"record data is truncated: {end} bytes")
    magic = view[16]
    if magic in (0, 1):
        return [
            upconvert(
                view,
                now_ms=now_ms,
                max_bytes=max_batch_bytes,
                max_decompressed_bytes=max_decompressed_bytes,
            )
        ]
    batches: list[ValidatedBatch] = []
    pos = 0
    while pos < end:
        if end - pos < HEADER_SIZE:
            raise CorruptRecordError(f"record batch at byte {pos} is truncated")
        header = parse_header(view, pos)
        where = f"record batch {len(batches)} (byte {pos})"
        if header.magic != 2:
            raise InvalidRecordError(f"{where} has magic {header.magic}; expected 2")
        if header.batch_length < _MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"{where} has length {header.batch_length}")
        size = header.size
        if size > max_batch_bytes:
            raise RecordTooLargeError(
                f"{where} is {size} bytes, over the limit of {max_batch_bytes}"
            )
        stop = pos + size
        if stop > end:
            raise CorruptRecordError(f"{where} is truncated: {size} bytes announced")
        batch = view[pos:stop]
        crc = crc32c.crc32c(batch[CRC_COVERED_FROM:])
        if crc != header.crc:
            raise CorruptRecordError(
                f"{where} fails its CRC-32C check ({crc:#010x} != {header.crc:#010x})"
            )
        _check_header(header, where)
        kept = bytearray(batch) if copy else batch
        if check_record_count and header.attributes & COMPRESSION_MASK == 0:
            found = count_records(kept, HEADER_SIZE)
            if found != header.record_count:
                raise InvalidRecordError(
                    f"{where} says {header.record_count} records but holds {found}"
                )
        batches.append(ValidatedBatch(header, kept))
        pos = stop
    return batches


def _check_header(header: BatchHeader, where: str) -> None:
    codec_of(header.attributes)  # raises UnsupportedCompressionError for 5-7
    if header.is_control:
        raise InvalidRecordError(f"{where} is a control batch; producers may not send those")
    if header.last_offset_delta < 0:
        raise InvalidRecordError(f"{where} has lastOffsetDelta {header.last_offset_delta}")
    if header.record_count != header.last_offset_delta + 1:
        raise InvalidRecordError(
            f"{where} has {header.record_count} records but lastOffsetDelta "
            f"{header.last_offset_delta}"
        )


def count_records(buf: _Buffer, start: int = 0, end: int | None = None) -> int:
    """Count the records of an uncompressed records section by walking their lengths only.

    The section is ``buf[start:end]``. Raises InvalidRecordError if the record lengths do not
    tile it exactly.

    Producers often send runs of equal-sized records. Within such a run the length prefixes
    sit at a fixed stride, so a strided slice and ``lstrip`` find the run's extent at C
    speed: if the record at ``pos`` has length L and the prefix bytes at every stride after
    it are the same, each of those records has length L too. Where records vary, the loop
    walks them one by one and tries a run again only after a while. A run that fills its
    window makes the next window larger (a batch of 5,000 equal records takes a few looks).

    A produce request's records come as a memoryview of its frame, whose strided slices
    ``bytes()`` copies byte by byte; the frame itself (a bytearray) slices at C speed, so
    the walk reads the frame where it can (``_frame_of``).
    """
    if end is None:
        end = len(buf)
    if isinstance(buf, memoryview):
        found = _frame_of(buf)
        if found is not None:
            buf, shift = found
            start, end = start + shift, end + shift
    pos = start
    count = 0
    cap = _MIN_WINDOW
    try:
        while pos < end:
            run = _equal_run(buf, pos, end, cap)
            if run:
                pos += run[0] * run[1]
                count += run[0]
                cap = min(cap * 4, _MAX_WINDOW) if run[0] == cap else _MIN_WINDOW
                continue
            limit = count + 32
            while pos < end and count < limit:
                byte = buf[pos]
                if byte < 0x80:
                    length = (byte >> 1) ^ -(byte & 1)
                    pos += 1
                elif buf[pos + 1] < 0x80:  # two bytes: records under 8 KiB
                    raw = (byte & 0x7F) | (buf[pos + 1] << 7)
                    length = (raw >> 1) ^ -(raw & 1)
                    pos += 2
                else:
                    length, pos = decode_varint(buf, pos)
                if length < 6:
                    raise InvalidRecordError(f"record {count} has an impossible length {length}")
                pos += length
                count += 1
    except IndexError:
        raise InvalidRecordError(f"record {count} is truncated") from None
    if pos != end:
        raise InvalidRecordError(f"record {count - 1} runs past the end of its batch")
    return count


def _leading_run(strided: _Buffer, window: int) -> int:
    """How many of the ``window`` bytes of ``strided`` at its start equal its first."""
    # bytes(): a memoryview's strided slice has no lstrip (and is at most _MAX_WINDOW bytes)
    sample = bytes(strided)
    if sample == sample[:1] * window:  # the usual case, one memcmp (lstrip is slower)
        return window
    return window - len(sample.lstrip(sample[:1]))


def _frame_of(view: memoryview) -> tuple[bytearray, int] | None:
    """The bytearray ``view`` is a slice of, and where the slice starts in it; None for
    anything else (a bytes frame: read-only, so ctypes cannot locate it)."""
    frame = view.obj
    if not isinstance(frame, bytearray) or view.readonly or not view.nbytes:
        return None
    if view.ndim != 1 or view.itemsize != 1 or not view.c_contiguous:
        return None
    try:
        at = ctypes.addressof(ctypes.c_char.from_buffer(view))
        base = ctypes.addressof(ctypes.c_char.from_buffer(frame))
    except (TypeError, ValueError):
        return None
    shift = at - base
    if not 0 <= shift <= len(frame) - view.nbytes:
        return None
    return frame, shift


def _equal_run(buf: _Buffer, pos: int, end: int, cap: int) -> tuple[int, int] | None:
    """(count, stride) of the run of at least 8 equal-length records at ``pos`` (looking at
    ``cap`` records at most), or None."""
    first = buf[pos]
    if first < 0x80:
        prefix_len, raw = 1, first
    else:
        second = buf[pos + 1]
        if second >= 0x80:
            return None
        prefix_len, raw = 2, (first & 0x7F) | (second << 7)
    length = (raw >> 1) ^ -(raw & 1)
    if length < 6:
        return None
    stride = prefix_len + length
    window = min((end - pos) // stride, cap)
    if window < 8:
        return None
    stop = pos + window * stride
    run = _leading_run(buf[pos:stop:stride], window)
    if prefix_len == 2:
        run = min(run, _leading_run(buf[pos + 1 : stop + 1 : stride], window))
    return (run, stride) if run >= 8 else None
