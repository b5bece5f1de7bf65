"""Random and mutated record data only ever raises our record errors, never anything else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsource.kafka.records import (
    Compression,
    Record,
    RecordError,
    build_batch,
    downconvert,
    iter_batch_records,
    iter_legacy_messages,
    validate_produce_records,
)
from streamsource.kafka.records.compression import decompress

from .helpers import LEGACY_CODECS, kafka_python_legacy

LIMIT = 1 << 20  # keep any decompression the fuzzer triggers small

SEEDS = [
    build_batch(
        [Record(i, 1000 + i, b"key", b"value %d" % i * 3, [("h", b"v")]) for i in range(4)],
        compression=codec,
    )
    for codec in Compression
] + [
    kafka_python_legacy(magic, codec, [(1000, b"k", b"v" * 30), (1001, None, b"w")])
    for magic in (0, 1)
    for codec in LEGACY_CODECS
]

mutation = st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("sxid"))


def mutate(seed: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    data = bytearray(seed)
    for pos, byte, kind in edits:
        pos %= max(len(data), 1)
        if kind == "s" and data:
            data[pos] = byte
        elif kind == "x" and data:
            data[pos] ^= 1 << (byte % 8)
        elif kind == "i":
            data[pos:pos] = bytes([byte])
        elif kind == "d":
            del data[pos : pos + byte % 16 + 1]
    return bytes(data)


def exercise(data: bytes) -> None:
    """Every reader over the data; anything but a RecordError fails the test."""
    try:
        validate_produce_records(data, max_decompressed_bytes=LIMIT)
    except RecordError:
        pass
    try:  # readers that do not check the CRC see the mutation itself
        list(iter_batch_records(data, max_bytes=LIMIT))
    except RecordError:
        pass
    try:
        list(iter_legacy_messages(data, max_decompressed_bytes=LIMIT))
    except RecordError:
        pass
    for magic in (0, 1):
        try:
            downconvert(data, magic, max_decompressed_bytes=LIMIT)
        except RecordError:
            pass


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_batches_and_message_sets(seed: bytes, edits: list[tuple[int, int, str]]) -> None:
    exercise(mutate(seed, edits))


@FUZZ
@given(st.sampled_from([c for c in Compression if c]), st.binary(max_size=200), st.data())
def test_mutated_compressed_streams(
    codec: Compression, payload: bytes, data: st.DataObject
) -> None:
    from streamsource.kafka.records import compress

    edits = data.draw(st.lists(mutation, max_size=3))
    damaged = mutate(compress(codec, payload * 10), edits)
    for legacy in (False, True):
        try:
            decompress(codec, damaged, max_bytes=LIMIT, legacy_lz4=legacy)
        except RecordError:
            pass
