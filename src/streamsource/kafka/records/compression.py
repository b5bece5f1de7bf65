"""Compression codecs of Kafka record data, with decompressed size bounded.

Every decompressor first learns (or bounds from the framing) how much output the input can
produce and refuses more than ``max_bytes`` before allocating it, so a few kilobytes of
crafted input cannot make the broker build gigabytes (a decompression bomb).
"""

from __future__ import annotations

import enum
import struct
import zlib

import cramjam

from streamsource.kafka.records._frames import lz4_frame_bound, zstd_frame_bound
from streamsource.kafka.records.errors import (
    CorruptRecordError,
    RecordTooLargeError,
    UnsupportedCompressionError,
)

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Default limit on what one batch (or legacy wrapper message) may decompress to."""

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # the block size of Java's SnappyOutputStream
_U32 = struct.Struct(">I")


class Compression(enum.IntEnum):
    """The codec in the low three bits of a batch's (or legacy message's) attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


Buffer = bytes | bytearray | memoryview


def codec_of(attributes: int) -> Compression:
    """The codec named by ``attributes``; raises UnsupportedCompressionError for 5-7."""
    bits = attributes & 0x07
    if bits > 4:
        raise UnsupportedCompressionError(f"compression type {bits} does not exist")
    return Compression(bits)


def as_compression(value: int) -> Compression:
    """``value`` (an int or a Compression) as a Compression, or UnsupportedCompressionError."""
    if not 0 <= value <= 4:
        raise UnsupportedCompressionError(f"compression type {value} does not exist")
    return Compression(value)


def compress(codec: Compression, data: Buffer) -> bytes:
    """Compress ``data`` in the framing every Kafka client reads.

    Snappy is written with xerial framing and LZ4 as a frame with independent blocks, as the
    Java producer does, since every consumer must read what the Java producer writes.
    """
    codec = as_compression(codec)  # plain ints are welcome too
    if codec is Compression.NONE:
        return bytes(data)
    if codec is Compression.GZIP:
        # level 6: zlib's default; the Java client uses the JDK default too
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        return compressor.compress(data) + compressor.flush()
    if codec is Compression.SNAPPY:
        return _xerial_compress(data)
    if codec is Compression.LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec is Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data, level=3))
    raise UnsupportedCompressionError(f"compression type {codec} does not exist")


def decompress(
    codec: Compression,
    data: Buffer,
    *,
    max_bytes: int = MAX_DECOMPRESSED_BYTES,
    legacy_lz4: bool = False,
) -> bytes:
    """Decompress ``data``; at most ``max_bytes`` of output or RecordTooLargeError.

    ``legacy_lz4`` accepts the wrong frame-header checksum that Kafka 0.8-0.9 wrote for LZ4 in
    magic 0 messages. Damaged input raises CorruptRecordError.
    """
    codec = as_compression(codec)
    try:
        if codec is Compression.NONE:
            if len(data) > max_bytes:
                raise RecordTooLargeError(f"{len(data)} bytes exceed the limit of {max_bytes}")
            return bytes(data)
        if codec is Compression.GZIP:
            return _gzip_decompress(data, max_bytes)
        if codec is Compression.SNAPPY:
            return _snappy_decompress(data, max_bytes)
        if codec is Compression.LZ4:
            frame = lz4_frame_bound(data, max_bytes, fix_header_checksum=legacy_lz4)
            return bytes(cramjam.lz4.decompress(frame))
        if codec is Compression.ZSTD:
            zstd_frame_bound(data, max_bytes)
            return bytes(cramjam.zstd.decompress(data))
    except (cramjam.DecompressionError, zlib.error, ValueError, OverflowError) as exc:
        raise CorruptRecordError(f"{codec.name} data cannot be decompressed: {exc}") from None
    raise UnsupportedCompressionError(f"compression type {codec} does not exist")


def _gzip_decompress(data: Buffer, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    produced = 0
    rest: Buffer = data
    while True:
        # 47: accept gzip or zlib headers, as the Java GZIPInputStream accepts gzip members
        decompressor = zlib.decompressobj(47)
        out = decompressor.decompress(rest, max_bytes - produced + 1)
        produced += len(out)
        if produced > max_bytes:
            raise RecordTooLargeError(f"gzip data decompresses to more than {max_bytes} bytes")
        parts.append(out)
        if not decompressor.eof:
            raise CorruptRecordError("gzip data is truncated")
        rest = decompressor.unused_data
        if not rest:  # concatenated gzip members are one stream, as in GZIPInputStream
            return b"".join(parts)


def _xerial_compress(data: Buffer) -> bytes:
    view = memoryview(data)
    parts = [_XERIAL_HEADER]
    for start in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
        parts.append(_U32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _snappy_decompress(data: Buffer, max_bytes: int) -> bytes:
    view = memoryview(data)
    if bytes(view[:8]) != _XERIAL_MAGIC or len(view) < 16:
        # raw snappy (librdkafka writes this); the length preamble bounds the output
        if cramjam.snappy.decompress_raw_len(view) > max_bytes:
            raise RecordTooLargeError(f"snappy data decompresses to more than {max_bytes} bytes")
        return bytes(cramjam.snappy.decompress_raw(view))
    blocks: list[memoryview] = []
    total = 0
    pos = 16
    while pos < len(view):
        if pos + 4 > len(view):
            raise CorruptRecordError("xerial snappy block length is truncated")
        (size,) = _U32.unpack_from(view, pos)
        pos += 4
        if pos + size > len(view):
            raise CorruptRecordError("xerial snappy block is truncated")
        block = view[pos : pos + size]
        pos += size
        total += cramjam.snappy.decompress_raw_len(block)
        if total > max_bytes:
            raise RecordTooLargeError(f"snappy data decompresses to more than {max_bytes} bytes")
        blocks.append(block)
    return b"".join(bytes(cramjam.snappy.decompress_raw(block)) for block in blocks)


__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "Compression",
    "as_compression",
    "codec_of",
    "compress",
    "decompress",
]
