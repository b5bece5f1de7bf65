"""Walk LZ4 and Zstandard frame structure to bound their output before decompressing.

Neither format has to state its decompressed size, but both cap what one block can produce
(LZ4: the frame's block maximum; Zstandard: min(window, 128 KiB)), so summing the caps over
the block headers bounds the output without decompressing anything.
"""

from __future__ import annotations

from streamsource.kafka.records.errors import CorruptRecordError, RecordTooLargeError

_Buffer = bytes | bytearray | memoryview

_LZ4_MAGIC = 0x184D2204
_LZ4_BLOCK_MAX = {4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22}
_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_BLOCK_MAX = 128 * 1024


def _u32le(buf: _Buffer, pos: int) -> int:
    if pos + 4 > len(buf):
        raise CorruptRecordError("compressed frame is truncated")
    return int.from_bytes(buf[pos : pos + 4], "little")


def _skippable(magic: int) -> bool:
    return magic & 0xFFFFFFF0 == 0x184D2A50  # shared by LZ4 and Zstandard


def lz4_frame_bound(data: _Buffer, max_bytes: int, *, fix_header_checksum: bool = False) -> _Buffer:
    """Check LZ4 frame structure and that the output fits ``max_bytes``; return the frame.

    With ``fix_header_checksum`` the returned copy carries correct header checksums in place
    of the ones Kafka 0.8-0.9 computed over the magic number too (KAFKA-3160).
    """
    fixed = bytearray(data) if fix_header_checksum else None
    end = len(data)
    pos = 0
    bound = 0
    while pos < end:
        magic = _u32le(data, pos)
        if _skippable(magic):
            pos += 8 + _u32le(data, pos + 4)
            continue
        if magic != _LZ4_MAGIC:
            raise CorruptRecordError(f"not an LZ4 frame at byte {pos}")
        if pos + 7 > end:
            raise CorruptRecordError("LZ4 frame header is truncated")
        flags, descriptor = data[pos + 4], data[pos + 5]
        if flags >> 6 != 1:
            raise CorruptRecordError(f"LZ4 frame version {flags >> 6} is not supported")
        block_max = _LZ4_BLOCK_MAX.get((descriptor >> 4) & 7)
        if block_max is None:
            raise CorruptRecordError("LZ4 frame names no valid block size")
        header_end = pos + 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)
        if header_end >= end:
            raise CorruptRecordError("LZ4 frame header is truncated")
        if fixed is not None:
            fixed[header_end] = (xxh32(bytes(data[pos + 4 : header_end])) >> 8) & 0xFF
        pos = header_end + 1
        block_checksum = 4 if flags & 0x10 else 0
        while True:
            size = _u32le(data, pos)
            pos += 4
            if size == 0:
                break
            stored = size & 0x80000000
            size &= 0x7FFFFFFF
            if size > block_max:
                raise CorruptRecordError(f"LZ4 block of {size} bytes exceeds its frame's maximum")
            bound += size if stored else block_max
            pos += size + block_checksum
        if flags & 0x04:
            pos += 4
        if pos > end:
            raise CorruptRecordError("LZ4 frame is truncated")
        if bound > max_bytes:
            raise RecordTooLargeError(f"LZ4 data may decompress to more than {max_bytes} bytes")
    return data if fixed is None else fixed


def zstd_frame_bound(data: _Buffer, max_bytes: int) -> None:
    """Check Zstandard frame structure and that the output fits ``max_bytes``."""
    end = len(data)
    pos = 0
    bound = 0
    while pos < end:
        magic = _u32le(data, pos)
        if _skippable(magic):
            pos += 8 + _u32le(data, pos + 4)
            continue
        if magic != _ZSTD_MAGIC:
            raise CorruptRecordError(f"not a Zstandard frame at byte {pos}")
        if pos + 5 > end:
            raise CorruptRecordError("Zstandard frame header is truncated")
        descriptor = data[pos + 4]
        pos += 5
        single_segment = descriptor & 0x20
        content_size_bytes = (0, 2, 4, 8)[descriptor >> 6] or (1 if single_segment else 0)
        dict_id_bytes = (0, 1, 2, 4)[descriptor & 0x03]
        window = 0
        if not single_segment:
            if pos >= end:
                raise CorruptRecordError("Zstandard frame header is truncated")
            exponent, mantissa = data[pos] >> 3, data[pos] & 7
            base = 1 << (10 + exponent)
            window = base + (base >> 3) * mantissa
            pos += 1
        pos += dict_id_bytes
        if pos + content_size_bytes > end:
            raise CorruptRecordError("Zstandard frame header is truncated")
        content_size = int.from_bytes(data[pos : pos + content_size_bytes], "little")
        if content_size_bytes == 2:
            content_size += 256
        pos += content_size_bytes
        if single_segment:
            window = content_size
        block_cap = min(window, _ZSTD_BLOCK_MAX)
        while True:
            if pos + 3 > end:
                raise CorruptRecordError("Zstandard block header is truncated")
            header = int.from_bytes(data[pos : pos + 3], "little")
            pos += 3
            kind, size = (header >> 1) & 3, header >> 3
            if kind == 0:  # raw
                bound += size
                pos += size
            elif kind == 1:  # run-length: one byte repeated `size` times
                bound += size
                pos += 1
            elif kind == 2:
                bound += block_cap
                pos += size
            else:
                raise CorruptRecordError("Zstandard block has the reserved type")
            if bound > max_bytes:
                raise RecordTooLargeError(
                    f"Zstandard data may decompress to more than {max_bytes} bytes"
                )
            if header & 1:
                break
        if descriptor & 0x04:
            pos += 4
        if pos > end:
            raise CorruptRecordError("Zstandard frame is truncated")


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 of ``data`` (only used on LZ4 frame descriptors, a few bytes long)."""
    n = len(data)
    pos = 0
    if n >= 16:
        acc = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M]
        while pos + 16 <= n:
            for lane in range(4):
                word = int.from_bytes(data[pos : pos + 4], "little")
                acc[lane] = (_rotl((acc[lane] + word * _P2) & _M, 13) * _P1) & _M
                pos += 4
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while pos + 4 <= n:
        h = (_rotl((h + int.from_bytes(data[pos : pos + 4], "little") * _P3) & _M, 17) * _P4) & _M
        pos += 4
    while pos < n:
        h = (_rotl((h + data[pos] * _P5) & _M, 11) * _P1) & _M
        pos += 1
    h = ((h ^ (h >> 15)) * _P2) & _M
    h = ((h ^ (h >> 13)) * _P3) & _M
    return h ^ (h >> 16)
