"""Readers and writers of the variable-size wire types, called by the compiled codecs.

Readers take ``(buf, pos)`` and return ``(value, new_pos)``; every length read from the
buffer is checked against the bytes that remain *before* anything is sliced or allocated,
so a hostile length cannot make the broker allocate memory. Writers append to a
``bytearray``. Fixed-size integers are handled by the compiler with ``struct`` directly.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from streamsource.errors import KafkaProtocolError

Buffer = bytes | bytearray | memoryview

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_unpack_i16 = _I16.unpack_from
_unpack_i32 = _I32.unpack_from
_pack_i16 = _I16.pack
_pack_i32 = _I32.pack

#: Records bigger than this are passed on as their own chunk instead of being copied.
CHUNK_THRESHOLD = 4096


class DecodeError(KafkaProtocolError):
    """Malformed bytes inside a frame (turned into InvalidRequest/InvalidResponse by the API layer)."""


# -- varints --------------------------------------------------------------------------


def read_uvarint(buf: Buffer, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 varint of at most 5 bytes (32 bits), as Kafka's compact lengths use."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    while True:
        pos += 1
        b = buf[pos]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 28:
            raise DecodeError("unsigned varint longer than 5 bytes")


def read_uvarlong(buf: Buffer, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 10 bytes (64 bits)."""
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """A zigzag-encoded signed 32-bit varint."""
    n, pos = read_uvarint(buf, pos)
    return (n >> 1) ^ -(n & 1), pos


def read_varlong(buf: Buffer, pos: int) -> tuple[int, int]:
    """A zigzag-encoded signed 64-bit varint."""
    n, pos = read_uvarlong(buf, pos)
    return (n >> 1) ^ -(n & 1), pos


def uvarint_bytes(n: int) -> bytes:
    """The unsigned varint encoding of ``n`` (0 <= n < 2**64)."""
    if n < 0x80:
        return _SMALL[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def write_uvarint(out: bytearray, n: int) -> None:
    if n < 0 or n > 0xFFFFFFFF:
        raise KafkaProtocolError(f"unsigned varint out of range: {n}")
    out += uvarint_bytes(n)


def write_varint(out: bytearray, n: int) -> None:
    if not -(2**31) <= n < 2**31:
        raise KafkaProtocolError(f"varint out of range: {n}")
    out += uvarint_bytes(((n << 1) ^ (n >> 31)) & 0xFFFFFFFF)


def write_varlong(out: bytearray, n: int) -> None:
    if not -(2**63) <= n < 2**63:
        raise KafkaProtocolError(f"varlong out of range: {n}")
    out += uvarint_bytes(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


# -- lengths and counts ----------------------------------------------------------------


def _take(buf: Buffer, pos: int, n: int) -> int:
    end = pos + n
    if end > len(buf):
        raise DecodeError(f"length {n} exceeds the {len(buf) - pos} bytes left")
    return end


def read_count(buf: Buffer, pos: int, min_size: int) -> tuple[int, int]:
    """An int32 array count; -1 (null) is returned as -1. Bounded by the bytes left."""
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    if n > 0 and n * min_size > len(buf) - pos:
        raise DecodeError(f"array of {n} elements cannot fit in {len(buf) - pos} bytes")
    if n < -1:
        raise DecodeError(f"negative array length {n}")
    return n, pos


def read_compact_count(buf: Buffer, pos: int, min_size: int) -> tuple[int, int]:
    """A compact (uvarint N+1) array count; null is returned as -1."""
    n, pos = read_uvarint(buf, pos)
    n -= 1
    if n > 0 and n * min_size > len(buf) - pos:
        raise DecodeError(f"array of {n} elements cannot fit in {len(buf) - pos} bytes")
    return n, pos


# -- strings ---------------------------------------------------------------------------


def read_string(buf: Buffer, pos: int) -> tuple[str, int]:
    (n,) = _unpack_i16(buf, pos)
    if n < 0:
        raise DecodeError("null string in a non-nullable field")
    end = _take(buf, pos + 2, n)
    return str(buf[pos + 2 : end], "utf-8"), end


def read_nullable_string(buf: Buffer, pos: int) -> tuple[str | None, int]:
    (n,) = _unpack_i16(buf, pos)
    if n < 0:
        if n != -1:
            raise DecodeError(f"negative string length {n}")
        return None, pos + 2
    end = _take(buf, pos + 2, n)
    return str(buf[pos + 2 : end], "utf-8"), end


def read_compact_string(buf: Buffer, pos: int) -> tuple[str, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise DecodeError("null string in a non-nullable field")
    end = _take(buf, pos, n - 1)
    return str(buf[pos:end], "utf-8"), end


def read_compact_nullable_string(buf: Buffer, pos: int) -> tuple[str | None, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = _take(buf, pos, n - 1)
    return str(buf[pos:end], "utf-8"), end


def write_string(out: bytearray, s: str) -> None:
    b = s.encode()
    if len(b) > 0x7FFF:
        raise KafkaProtocolError(f"string of {len(b)} bytes is too long")
    out += _pack_i16(len(b))
    out += b


def write_nullable_string(out: bytearray, s: str | None) -> None:
    if s is None:
        out += b"\xff\xff"
    else:
        write_string(out, s)


def write_compact_string(out: bytearray, s: str) -> None:
    b = s.encode()
    out += uvarint_bytes(len(b) + 1)
    out += b


def write_compact_nullable_string(out: bytearray, s: str | None) -> None:
    if s is None:
        out += b"\x00"
    else:
        write_compact_string(out, s)


# -- bytes -----------------------------------------------------------------------------


def read_bytes(buf: Buffer, pos: int) -> tuple[bytes, int]:
    (n,) = _unpack_i32(buf, pos)
    if n < 0:
        raise DecodeError("null bytes in a non-nullable field")
    end = _take(buf, pos + 4, n)
    return bytes(buf[pos + 4 : end]), end


def read_nullable_bytes(buf: Buffer, pos: int) -> tuple[bytes | None, int]:
    (n,) = _unpack_i32(buf, pos)
    if n < 0:
        if n != -1:
            raise DecodeError(f"negative bytes length {n}")
        return None, pos + 4
    end = _take(buf, pos + 4, n)
    return bytes(buf[pos + 4 : end]), end


def read_compact_bytes(buf: Buffer, pos: int) -> tuple[bytes, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise DecodeError("null bytes in a non-nullable field")
    end = _take(buf, pos, n - 1)
    return bytes(buf[pos:end]), end


def read_compact_nullable_bytes(buf: Buffer, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = _take(buf, pos, n - 1)
    return bytes(buf[pos:end]), end


def write_bytes(out: bytearray, b: Buffer) -> None:
    out += _pack_i32(len(b))
    out += b


def write_nullable_bytes(out: bytearray, b: Buffer | None) -> None:
    if b is None:
        out += b"\xff\xff\xff\xff"
    else:
        out += _pack_i32(len(b))
        out += b


def write_compact_bytes(out: bytearray, b: Buffer) -> None:
    out += uvarint_bytes(len(b) + 1)
    out += b


def write_compact_nullable_bytes(out: bytearray, b: Buffer | None) -> None:
    if b is None:
        out += b"\x00"
    else:
        out += uvarint_bytes(len(b) + 1)
        out += b


# -- records: views on the way in, chunks on the way out --------------------------------


def _records_size(data: Any) -> int:
    if isinstance(data, list):
        return sum(len(c) if not isinstance(c, memoryview) else c.nbytes for c in data)
    if isinstance(data, memoryview):
        return data.nbytes
    return len(data)


def _records_body(out: bytearray, chunks: list[Any] | None, data: Any) -> None:
    parts = data if isinstance(data, list) else (data,)
    for part in parts:
        if chunks is None or (len(part) < CHUNK_THRESHOLD and isinstance(part, _BYTES_LIKE)):
            out += part  # (a part that is not bytes-like, say a file region, must be chunked)
        else:
            # Large record data is handed to the transport as-is: no copy into ``out``.
            chunks.append(bytes(out))
            del out[:]
            chunks.append(part)


_BYTES_LIKE = (bytes, bytearray, memoryview)


def write_records(out: bytearray, chunks: list[Any] | None, data: Any) -> None:
    """Write nullable record data: bytes-like or a list of bytes-like chunks."""
    if data is None:
        out += b"\xff\xff\xff\xff"
        return
    out += _pack_i32(_records_size(data))
    _records_body(out, chunks, data)


def write_compact_records(out: bytearray, chunks: list[Any] | None, data: Any) -> None:
    if data is None:
        out += b"\x00"
        return
    out += uvarint_bytes(_records_size(data) + 1)
    _records_body(out, chunks, data)


# -- uuid ------------------------------------------------------------------------------


def read_uuid(buf: Buffer, pos: int) -> tuple[uuid.UUID, int]:
    end = _take(buf, pos, 16)
    return uuid.UUID(bytes=bytes(buf[pos:end])), end


def write_uuid(out: bytearray, u: uuid.UUID) -> None:
    out += u.bytes


# -- tagged fields ---------------------------------------------------------------------

TagReader = Any  # (buf, pos) -> (value, pos)


def read_tags(
    buf: Buffer, pos: int, known: dict[int, tuple[str, TagReader]]
) -> tuple[dict[str, Any], int]:
    """Read a tagged-field section; returns the known fields by name (unknown ones skipped)."""
    count, pos = read_uvarint(buf, pos)
    if count == 0:
        return {}, pos
    if count > len(buf) - pos:
        raise DecodeError(f"{count} tagged fields cannot fit in {len(buf) - pos} bytes")
    found: dict[str, Any] = {}
    last = -1
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        if tag <= last:
            raise DecodeError("tagged fields out of order")
        last = tag
        end = _take(buf, pos, size)
        entry = known.get(tag)
        if entry is not None:
            name, reader = entry
            value, stop = reader(memoryview(buf)[:end], pos)
            if stop != end:
                raise DecodeError(f"tagged field {tag} has {end - stop} trailing bytes")
            found[name] = value
        pos = end
    return found, pos


def write_tags(out: bytearray, tags: list[tuple[int, bytearray]] | None) -> None:
    """Write a tagged-field section from (tag, encoded value) pairs in tag order."""
    if not tags:
        out += b"\x00"
        return
    out += uvarint_bytes(len(tags))
    for tag, value in tags:
        out += uvarint_bytes(tag)
        out += uvarint_bytes(len(value))
        out += value
