"""Codecs: round trips, the framings real clients write, and bounded decompression."""

from __future__ import annotations

import os
import zlib

import cramjam
import pytest
import xxhash
from kafka.codec import lz4_encode, snappy_encode, zstd_encode

from streamsource.kafka.records import (
    Compression,
    CorruptRecordError,
    Record,
    RecordTooLargeError,
    UnsupportedCompressionError,
    build_batch,
    compress,
    decompress,
    iter_batch_records,
    validate_produce_records,
)
from streamsource.kafka.records._frames import xxh32
from streamsource.kafka.records.legacy import encode_legacy_message

from .helpers import CODECS

PAYLOAD = b"".join(b"event %d of the stream\n" % i for i in range(50_000))  # ~1.2 MB


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_round_trip(codec: Compression) -> None:
    assert decompress(codec, compress(codec, PAYLOAD)) == PAYLOAD
    assert decompress(codec, compress(codec, b"")) == b""


@pytest.mark.parametrize(
    ("codec", "encoded"),
    [
        (Compression.SNAPPY, snappy_encode(PAYLOAD, xerial_compatible=True)),  # Java, kafka-python
        (Compression.SNAPPY, snappy_encode(PAYLOAD, xerial_compatible=False)),  # librdkafka
        (Compression.SNAPPY, bytes(cramjam.snappy.compress_raw(PAYLOAD))),
        (Compression.LZ4, lz4_encode(PAYLOAD)),
        (Compression.ZSTD, zstd_encode(PAYLOAD)),
        (Compression.GZIP, zlib.compress(PAYLOAD)),  # a zlib header, not gzip: still read
    ],
)
def test_other_encoders_output_is_read(codec: Compression, encoded: bytes) -> None:
    assert decompress(codec, encoded) == PAYLOAD


@pytest.mark.parametrize("codec", [c for c in CODECS if c], ids=lambda c: c.name)
def test_output_is_bounded_by_max_bytes(codec: Compression) -> None:
    size = 1 << 20
    data = compress(codec, bytes(size))
    assert len(data) < size // 10  # zeros: a small input that expands a lot
    assert len(decompress(codec, data, max_bytes=size)) == size
    with pytest.raises(RecordTooLargeError) as caught:
        decompress(codec, data, max_bytes=size // 4)
    assert caught.value.error_code == 10


def test_a_snappy_length_preamble_claiming_gigabytes_is_refused_before_allocating() -> None:
    bomb = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"\x00" * 20  # says 4 GiB
    with pytest.raises(RecordTooLargeError):
        decompress(Compression.SNAPPY, bomb)


def test_a_gzip_bomb_inside_a_batch_is_refused_under_the_default_limit() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(80)) + compressor.flush()
    assert len(bomb) < 200_000  # 80 MiB of output from this
    # a v2 batch whose records section is the bomb: produce validation does not decompress,
    # reading it does, and stops at the limit
    batch = bytearray(build_batch([Record(0, 0, None, b"x")], compression=Compression.GZIP))
    batch[61:] = bomb
    batch[8:12] = (len(batch) - 12).to_bytes(4, "big")
    with pytest.raises(RecordTooLargeError):
        list(iter_batch_records(batch))
    # as a legacy wrapper message it is decompressed while validating, and refused
    wrapper = encode_legacy_message(0, 1, 5, None, bomb, attributes=1)
    with pytest.raises(RecordTooLargeError):
        validate_produce_records(wrapper)


@pytest.mark.parametrize("codec", [c for c in CODECS if c], ids=lambda c: c.name)
def test_damaged_compressed_data_is_corrupt(codec: Compression) -> None:
    data = compress(codec, PAYLOAD)
    for cut in (1, len(data) // 2):
        with pytest.raises((CorruptRecordError, RecordTooLargeError)):
            decompress(codec, data[:-cut])


def test_xxh32_matches_the_reference() -> None:
    for length in range(40):
        data = os.urandom(length)
        assert xxh32(data) == xxhash.xxh32(data).intdigest()


def test_codecs_given_as_ints_and_unknown_codecs() -> None:
    assert decompress(1, compress(1, b"abc")) == b"abc"  # type: ignore[arg-type]
    batch = build_batch([Record(0, 0, None, b"v")], compression=4)  # type: ignore[arg-type]
    assert [r.value for r in iter_batch_records(batch)] == [b"v"]
    for codec in (5, 7, -1):
        with pytest.raises(UnsupportedCompressionError):
            compress(codec, b"abc")  # type: ignore[arg-type]
        with pytest.raises(UnsupportedCompressionError):
            decompress(codec, b"abc")  # type: ignore[arg-type]
