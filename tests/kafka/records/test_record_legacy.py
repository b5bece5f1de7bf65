"""Legacy magic 0/1 message sets: up-conversion on produce, down-conversion on fetch."""

from __future__ import annotations

import pytest
from kafka.codec import gzip_encode, lz4_encode_old_kafka

from streamsource.kafka.records import (
    LOG_APPEND_TIME,
    Compression,
    CorruptRecordError,
    InvalidRecordError,
    Record,
    RecordTooLargeError,
    build_batch,
    decompress,
    downconvert,
    iter_batch_records,
    iter_legacy_messages,
    validate_produce_records,
)
from streamsource.kafka.records.legacy import encode_legacy_message

from .helpers import (
    CODECS,
    LEGACY_CODECS,
    kafka_python_batch,
    kafka_python_legacy,
    read_with_kafka_python,
)

ENTRIES = [
    (1_600_000_000_000, b"key1", b"value1"),
    (1_600_000_000_007, None, b"value2" * 100),
    (1_600_000_000_003, b"key3", None),
]


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", LEGACY_CODECS, ids=lambda c: c.name)
def test_legacy_sets_are_upconverted_to_one_v2_batch(magic: int, codec: Compression) -> None:
    data = kafka_python_legacy(magic, codec, ENTRIES)
    [batch] = validate_produce_records(data, now_ms=1_234)
    assert batch.header.magic == 2
    assert batch.header.compression == codec
    assert batch.header.record_count == len(ENTRIES)
    got = [(r.offset, r.timestamp, r.key, r.value) for r in iter_batch_records(batch.data)]
    expected_ts = [ts if magic == 1 else 1_234 for ts, _, _ in ENTRIES]
    assert got == [(i, expected_ts[i], k, v) for i, (_, k, v) in enumerate(ENTRIES)]
    assert read_with_kafka_python(bytes(batch.data))[1][2:4] == (None, b"value2" * 100)


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [Compression.NONE, Compression.GZIP], ids=lambda c: c.name)
def test_every_legacy_byte_under_the_crc_is_protected(magic: int, codec: Compression) -> None:
    data = kafka_python_legacy(magic, codec, ENTRIES[:1])
    for pos in range(12, len(data)):  # crc and everything after it in the message
        damaged = bytearray(data)
        damaged[pos] ^= 0x10
        with pytest.raises((CorruptRecordError, InvalidRecordError)):
            validate_produce_records(damaged)
    for length in range(1, len(data)):
        with pytest.raises(CorruptRecordError):
            validate_produce_records(data[:length])


def test_magic0_lz4_with_the_old_broken_header_checksum_is_read() -> None:
    inner = kafka_python_legacy(0, Compression.NONE, ENTRIES)
    broken = lz4_encode_old_kafka(inner)
    with pytest.raises(CorruptRecordError):
        decompress(Compression.LZ4, broken)  # a strict reader refuses it ...
    assert decompress(Compression.LZ4, broken, legacy_lz4=True) == inner  # ... we repair it
    data = kafka_python_legacy(0, Compression.LZ4, ENTRIES)
    assert [m.value for m in iter_legacy_messages(data)] == [v for _, _, v in ENTRIES]


def test_empty_and_nested_sets_are_refused() -> None:
    plain = kafka_python_legacy(1, Compression.NONE, ENTRIES)
    inner = encode_legacy_message(0, 1, 5, None, gzip_encode(plain), attributes=1)
    nested = encode_legacy_message(0, 1, 5, None, gzip_encode(inner), attributes=1)
    with pytest.raises(InvalidRecordError, match="another compressed"):
        validate_produce_records(nested)
    empty = encode_legacy_message(0, 1, 5, None, gzip_encode(b""), attributes=1)
    with pytest.raises(InvalidRecordError, match="no messages"):
        validate_produce_records(empty)


def stored_log() -> tuple[bytes, list[tuple[int, int, bytes | None, bytes | None]]]:
    """Batches as the log holds them: several codecs, a control batch, patched offsets."""
    parts: list[bytes] = []
    expected: list[tuple[int, int, bytes | None, bytes | None]] = []
    offset = 100
    for codec in CODECS:
        entries = [(1_700_000_000_000 + i, b"k%d" % i, b"v%d" % i, [("h", b"x")]) for i in range(3)]
        batch = bytearray(kafka_python_batch(codec, entries))
        batch[:8] = offset.to_bytes(8, "big")
        parts.append(bytes(batch))
        expected += [(offset + i, ts, k, v) for i, (ts, k, v, _) in enumerate(entries)]
        offset += 3
        marker = build_batch([Record(0, 5, b"\x00\x00\x00\x00", b"")], control=True)
        parts.append(b"\x00" * 7 + bytes([offset]) + marker[8:])
        offset += 1
    return b"".join(parts), expected


@pytest.mark.parametrize("magic", [0, 1])
def test_downconverted_sets_are_read_by_kafka_python(magic: int) -> None:
    data, expected = stored_log()
    legacy = downconvert(data, magic)
    got = [(o, ts, k, v) for o, ts, k, v, _ in read_with_kafka_python(legacy)]
    assert got == [(o, ts if magic == 1 else None, k, v) for o, ts, k, v in expected]
    # a partial trailing batch (a fetch cut at max_bytes) is dropped, not half-converted
    assert downconvert(data[:-10], magic) == legacy


def test_downconvert_keeps_log_append_time() -> None:
    batch = build_batch(
        [Record(0, 1, b"k", b"v")], timestamp_type=LOG_APPEND_TIME, max_timestamp=99_000
    )
    [(_, timestamp, _, _, _)] = read_with_kafka_python(downconvert(batch, 1))
    assert timestamp == 99_000


def test_downconvert_stops_at_max_bytes_but_returns_at_least_one_message() -> None:
    data, expected = stored_log()
    one = downconvert(data, 1, max_bytes=1)
    assert [r[0] for r in read_with_kafka_python(one)] == [expected[0][0]]
    whole = downconvert(data, 1)
    part = downconvert(data, 1, max_bytes=len(whole) // 2)
    assert 0 < len(part) <= len(whole) // 2
    assert whole.startswith(part)


def test_downconvert_from_an_offset_inside_a_batch() -> None:
    data, expected = stored_log()
    start = expected[4][0]  # the second record of the second batch
    got = [r[0] for r in read_with_kafka_python(downconvert(data, 1, min_offset=start))]
    assert got == [o for o, _, _, _ in expected if o >= start]
    one = downconvert(data, 1, min_offset=start, max_bytes=1)
    assert [r[0] for r in read_with_kafka_python(one)] == [start]


def test_the_decompression_limit_covers_all_wrappers_of_a_set_together() -> None:
    inner = kafka_python_legacy(1, Compression.NONE, [(1, None, bytes(10_000))])
    wrapper = encode_legacy_message(0, 1, 5, None, gzip_encode(inner), attributes=1)
    data = wrapper * 10  # each wrapper expands to ~10 KB, the set to ~100 KB
    assert len(validate_produce_records(data)[0].data) < 2_000  # stored gzip-compressed
    with pytest.raises(RecordTooLargeError):
        validate_produce_records(data, max_decompressed_bytes=len(inner) * 5)
