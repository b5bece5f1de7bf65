"""v2 batches: what we build, kafka-python reads, and what kafka-python builds, we read."""

from __future__ import annotations

import struct
from typing import Any

import crc32c
import pytest

from streamsource.kafka.records import (
    LOG_APPEND_TIME,
    Compression,
    InvalidRecordError,
    Record,
    batch_max_timestamp,
    build_batch,
    check_batch,
    iter_batch_records,
    iter_batches,
    parse_header,
    patch_base_offset,
    set_log_append_time,
)

from .helpers import CODECS, kafka_python_batch, read_with_kafka_python

ENTRIES: list[tuple[int, bytes | None, bytes | None, Any]] = [
    (1_700_000_000_000, b"key-1", b"value-1" * 40, [("trace", b"abc"), ("empty", None)]),
    (1_700_000_000_005, None, b"no key", []),
    (1_700_000_000_003, b"tombstone", None, [("h", b"")]),
    (1_700_000_000_009, b"", b"x" * 5000, []),
]


def records_of(entries: list[tuple[int, bytes | None, bytes | None, Any]]) -> list[Record]:
    return [Record(i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(entries)]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_kafka_python_reads_our_batches(codec: Compression) -> None:
    batch = build_batch(records_of(ENTRIES), base_offset=42, compression=codec)
    got = read_with_kafka_python(batch)
    assert got == [(42 + i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(ENTRIES)]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_we_read_kafka_python_batches(codec: Compression) -> None:
    data = kafka_python_batch(codec, ENTRIES)
    header = check_batch(data)
    assert header.compression == codec
    assert header.record_count == len(ENTRIES)
    assert header.max_timestamp == max(e[0] for e in ENTRIES)
    got = [
        (r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in iter_batch_records(data)
    ]
    assert got == [(i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(ENTRIES)]


def test_uncompressed_batch_is_byte_identical_to_kafka_python() -> None:
    ours = build_batch(records_of(ENTRIES), partition_leader_epoch=0)  # kafka-python writes 0
    assert ours == kafka_python_batch(Compression.NONE, ENTRIES)


def test_golden_bytes_of_a_hand_built_batch() -> None:
    # One record: key b"k", value b"v", no headers, timestamp 1000, offset 7.
    record = bytes([0, 0, 0, 2]) + b"k" + bytes([2]) + b"v" + bytes([0])
    record = bytes([len(record) * 2]) + record  # zig-zag length
    after_crc = struct.pack(">hiqqqhii", 0, 0, 1000, 1000, -1, -1, -1, 1) + record
    expected = (
        struct.pack(">qiibI", 7, len(after_crc) + 9, -1, 2, crc32c.crc32c(after_crc)) + after_crc
    )
    assert build_batch([Record(0, 1000, b"k", b"v")], base_offset=7) == expected
    assert expected.hex() == "".join(
        [
            "0000000000000007",  # baseOffset
            "0000003a",  # batchLength: 58
            "ffffffff",  # partitionLeaderEpoch
            "02",  # magic
            f"{crc32c.crc32c(after_crc):08x}",
            "0000",  # attributes
            "00000000",  # lastOffsetDelta
            "00000000000003e8",  # baseTimestamp
            "00000000000003e8",  # maxTimestamp
            "ffffffffffffffff",  # producerId
            "ffff",  # producerEpoch
            "ffffffff",  # baseSequence
            "00000001",  # recordCount
            "10",  # record length 8 (zig-zag)
            "000000",  # attributes, timestampDelta, offsetDelta
            "026b",  # key b"k"
            "0276",  # value b"v"
            "00",  # no headers
        ]
    )


def test_producer_fields_and_flags_round_trip() -> None:
    batch = build_batch(
        records_of(ENTRIES[:2]),
        producer_id=1234,
        producer_epoch=5,
        base_sequence=77,
        transactional=True,
        timestamp_type=LOG_APPEND_TIME,
        max_timestamp=1_800_000_000_000,
    )
    header = check_batch(batch)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (1234, 5, 77)
    assert header.is_transactional and not header.is_control
    assert header.last_sequence == 78
    assert batch_max_timestamp(batch) == 1_800_000_000_000
    # with LOG_APPEND_TIME every record reports the append time, as Kafka does
    assert {r.timestamp for r in iter_batch_records(batch)} == {1_800_000_000_000}


def test_patching_the_base_offset_keeps_the_crc_valid() -> None:
    batch = bytearray(build_batch(records_of(ENTRIES)))
    patch_base_offset(batch, 1_000_000, leader_epoch=3)
    header = check_batch(batch)
    assert (header.base_offset, header.partition_leader_epoch) == (1_000_000, 3)
    assert [r.offset for r in iter_batch_records(batch)] == [1_000_000 + i for i in range(4)]


def test_iter_batches_walks_concatenated_batches_and_drops_a_partial_tail() -> None:
    batches = [build_batch(records_of(ENTRIES[:n]), base_offset=10 * n) for n in (1, 2, 3)]
    data = b"".join(batches)
    assert [(h.base_offset, bytes(v)) for h, v in iter_batches(data)] == [
        (10, batches[0]),
        (20, batches[1]),
        (30, batches[2]),
    ]
    for cut in (1, 30, 61, len(batches[2]) - 1):
        assert [h.base_offset for h, _ in iter_batches(data[:-cut])] == [10, 20]


def test_iter_batches_refuses_a_header_that_is_not_a_batch() -> None:
    data = bytearray(build_batch(records_of(ENTRIES)))
    data[16] = 1  # magic
    with pytest.raises(InvalidRecordError):
        list(iter_batches(data))


def test_build_batch_needs_a_record() -> None:
    with pytest.raises(ValueError):
        build_batch([])


def test_records_disagreeing_with_the_header_are_refused() -> None:
    batch = bytearray(build_batch(records_of(ENTRIES)))
    struct.pack_into(">i", batch, 57, 5)  # recordCount
    with pytest.raises(InvalidRecordError, match="says 5 records but holds 4"):
        list(iter_batch_records(batch))
    assert parse_header(batch).record_count == 5


def test_log_append_time_stamps_a_client_batch() -> None:
    batch = bytearray(kafka_python_batch(Compression.GZIP, ENTRIES))
    set_log_append_time(batch, 1_900_000_000_000)
    header = check_batch(batch)  # the CRC was recomputed
    assert header.attributes & 0x08 and header.compression == Compression.GZIP
    assert [r[1] for r in read_with_kafka_python(bytes(batch))] == [1_900_000_000_000] * 4
    assert [r.timestamp for r in iter_batch_records(batch)] == [1_900_000_000_000] * 4
