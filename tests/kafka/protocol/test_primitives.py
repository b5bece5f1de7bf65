"""Varints and the length-checked readers the compiled codecs rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamsource.kafka.protocol.primitives import (
    DecodeError,
    read_compact_string,
    read_string,
    read_tags,
    read_uvarint,
    read_uvarlong,
    read_varint,
    read_varlong,
    uvarint_bytes,
    write_tags,
    write_uvarint,
    write_varint,
    write_varlong,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001")],
)
def test_uvarint_known_encodings(value: int, encoded: str) -> None:
    assert uvarint_bytes(value).hex() == encoded
    assert read_uvarint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


@pytest.mark.parametrize(
    ("value", "encoded"), [(0, "00"), (-1, "01"), (1, "02"), (-64, "7f"), (64, "8001")]
)
def test_zigzag_varint_known_encodings(value: int, encoded: str) -> None:
    out = bytearray()
    write_varint(out, value)
    assert out.hex() == encoded
    assert read_varint(bytes(out), 0) == (value, len(out))


@given(st.integers(0, 2**32 - 1))
def test_uvarint_roundtrip(value: int) -> None:
    out = bytearray()
    write_uvarint(out, value)
    assert read_uvarint(bytes(out) + b"\xff", 0) == (value, len(out))


@given(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**63 - 1))
def test_signed_varints_roundtrip(small: int, big: int) -> None:
    out = bytearray()
    write_varint(out, small)
    write_varlong(out, big)
    value, pos = read_varint(bytes(out), 0)
    assert value == small
    assert read_varlong(bytes(out), pos) == (big, len(out))


def test_overlong_varints_are_refused() -> None:
    with pytest.raises(DecodeError):
        read_uvarint(b"\x80" * 5 + b"\x01", 0)
    with pytest.raises(DecodeError):
        read_uvarlong(b"\x80" * 10 + b"\x01", 0)
    with pytest.raises(IndexError):  # truncated: the API layer turns this into InvalidRequest
        read_uvarint(b"\x80\x80", 0)


def test_string_lengths_are_checked_against_the_buffer() -> None:
    assert read_string(b"\x00\x02hi!", 0) == ("hi", 4)
    with pytest.raises(DecodeError):
        read_string(b"\x00\x05hi", 0)
    with pytest.raises(DecodeError):
        read_string(b"\xff\xff", 0)  # null where not nullable
    with pytest.raises(DecodeError):
        read_compact_string(b"\x06hi", 0)


def test_tagged_fields_skip_unknown_tags_and_keep_order() -> None:
    out = bytearray()
    write_tags(out, [(0, bytearray(b"\x07")), (5, bytearray(b"abc"))])
    assert out.hex() == "020001070503" + b"abc".hex()

    def read_byte(buf: bytes, pos: int) -> tuple[int, int]:
        return buf[pos], pos + 1

    found, pos = read_tags(bytes(out), 0, {0: ("small", read_byte)})
    assert found == {"small": 7} and pos == len(out)
    with pytest.raises(DecodeError):
        read_tags(bytes.fromhex("02050100000100"), 0, {})  # tags out of order
