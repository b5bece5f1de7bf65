"""validate_produce_records on v2 batches: what a produce request may carry."""

from __future__ import annotations

import struct
from typing import Any

import crc32c
import pytest

from streamsource.kafka.records import (
    Compression,
    CorruptRecordError,
    InvalidRecordError,
    Record,
    RecordError,
    RecordTooLargeError,
    UnsupportedCompressionError,
    build_batch,
    patch_base_offset,
    validate_produce_records,
)

from .helpers import CODECS, kafka_python_batch

ENTRIES: list[tuple[int, bytes | None, bytes | None, list[Any]]] = [
    (1_700_000_000_000 + i, b"k%d" % i, b"v" * (i * 40), []) for i in range(5)
]


def recrc(batch: bytearray) -> bytearray:
    """Make the CRC match again after an edit, to reach the checks behind it."""
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    return batch


def small_batch(**kwargs: object) -> bytearray:
    records = [Record(i, 1000 + i, b"k", b"value %d" % i) for i in range(3)]
    return bytearray(build_batch(records, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_client_batches_pass_and_come_back_as_private_copies(codec: Compression) -> None:
    first = kafka_python_batch(codec, ENTRIES)
    second = build_batch([Record(0, 5, None, b"x")], compression=codec, producer_id=9)
    data = first + second
    result = validate_produce_records(memoryview(data))
    assert [bytes(v.data) for v in result] == [first, second]
    assert [v.header.record_count for v in result] == [5, 1]
    assert result[1].header.producer_id == 9
    patch_base_offset(result[0].data, 99)
    assert data[:8] == bytes(8)  # the caller's bytes are untouched


def test_every_byte_under_the_crc_is_protected() -> None:
    batch = small_batch()
    for pos in range(17, len(batch)):  # the crc field itself and everything it covers
        damaged = bytearray(batch)
        damaged[pos] ^= 0x40
        with pytest.raises(CorruptRecordError) as caught:
            validate_produce_records(damaged)
        assert caught.value.error_code == 2


def test_every_truncation_is_refused_as_corrupt() -> None:
    batch = bytes(small_batch()) * 2
    for length in range(1, len(batch)):
        if length == len(batch) // 2:
            continue  # exactly one whole batch
        with pytest.raises(CorruptRecordError):
            validate_produce_records(batch[:length])


def test_record_count_must_match_the_records() -> None:
    batch = small_batch()
    struct.pack_into(">i", batch, 57, 2)
    struct.pack_into(">i", batch, 23, 1)  # lastOffsetDelta consistent with the lie
    with pytest.raises(InvalidRecordError, match="says 2 records but holds 3") as caught:
        validate_produce_records(recrc(batch))
    assert caught.value.error_code == 87


def test_record_lengths_must_tile_the_batch() -> None:
    batch = small_batch()
    batch[61] = 0x7E  # first record claims 63 bytes
    with pytest.raises(InvalidRecordError):
        validate_produce_records(recrc(batch))
    batch[61] = 0x02  # 1 byte: too short to be a record
    with pytest.raises(InvalidRecordError):
        validate_produce_records(recrc(batch))


@pytest.mark.parametrize(
    ("field", "offset", "fmt", "value", "message"),
    [
        ("lastOffsetDelta", 23, ">i", -1, "lastOffsetDelta -1"),
        ("lastOffsetDelta", 23, ">i", 7, "3 records but lastOffsetDelta 7"),
        ("attributes", 21, ">h", 0x20, "control batch"),
    ],
)
def test_header_rules(field: str, offset: int, fmt: str, value: int, message: str) -> None:
    batch = small_batch()
    struct.pack_into(fmt, batch, offset, value)
    with pytest.raises(InvalidRecordError, match=message):
        validate_produce_records(recrc(batch))


def test_unknown_compression_codec() -> None:
    batch = small_batch()
    struct.pack_into(">h", batch, 21, 5)
    with pytest.raises(UnsupportedCompressionError) as caught:
        validate_produce_records(recrc(batch))
    assert caught.value.error_code == 76


def test_wrong_magic() -> None:
    batch = small_batch()
    batch[16] = 3
    with pytest.raises(InvalidRecordError, match="magic 3"):
        validate_produce_records(batch)


def test_oversized_batch() -> None:
    batch = small_batch()
    validate_produce_records(batch, max_batch_bytes=len(batch))
    with pytest.raises(RecordTooLargeError) as caught:
        validate_produce_records(batch, max_batch_bytes=len(batch) - 1)
    assert caught.value.error_code == 10


def test_errors_say_which_batch() -> None:
    good = bytes(small_batch())
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(RecordError, match=f"record batch 1 \\(byte {len(good)}\\)"):
        validate_produce_records(good + bytes(bad))
