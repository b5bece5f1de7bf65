"""count_records, the produce hot path's check that record lengths tile a batch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsource.kafka.records import InvalidRecordError, Record
from streamsource.kafka.records.batch import decode_varint, encode_records
from streamsource.kafka.records.validate import count_records


def reference_count(section: bytes) -> int | None:
    """The obvious walk, one record at a time; None where the lengths do not tile."""
    pos = count = 0
    try:
        while pos < len(section):
            length, pos = decode_varint(section, pos)
            if length < 6:
                return None
            pos += length
            count += 1
    except (IndexError, InvalidRecordError):
        return None
    return count if pos == len(section) else None


def section_of(sizes: list[int]) -> bytes:
    records = [Record(i, 0, None, b"v" * size) for i, size in enumerate(sizes)]
    return bytes(encode_records(records, 0))


# runs of equal sizes (the fast path) mixed with varying ones, across the 1/2-byte varints
sizes = st.lists(
    st.tuples(st.sampled_from([0, 1, 50, 57, 58, 120, 8200]), st.integers(1, 40)),
    max_size=12,
).map(lambda runs: [size for size, n in runs for _ in range(n)])


@settings(max_examples=200, deadline=None)
@given(sizes)
def test_counts_what_was_encoded(sizes: list[int]) -> None:
    section = section_of(sizes)
    assert count_records(section) == len(sizes)
    assert count_records(b"pad" + section + b"pad", 3, 3 + len(section)) == len(sizes)


@settings(max_examples=300, deadline=None)
@given(sizes, st.integers(0, 10**6), st.integers(0, 255))
def test_damaged_sections_agree_with_the_reference(sizes: list[int], pos: int, byte: int) -> None:
    section = bytearray(section_of(sizes) or b"\x00")
    section[pos % len(section)] = byte
    expected = reference_count(bytes(section))
    try:
        assert count_records(section) == expected
    except InvalidRecordError:
        assert expected is None


def test_a_long_run_cut_short_is_refused() -> None:
    section = section_of([30] * 100)
    for cut in (1, 5, 31):
        try:
            count_records(section[:-cut])
        except InvalidRecordError:
            continue
        raise AssertionError(f"cut of {cut} bytes not detected")


def in_frame(section: bytes | bytearray, after: bytes = b"\x02" * 40) -> memoryview:
    """``section`` as a produce request carries it: a memoryview into a larger bytearray
    frame (which count_records reads directly), with other bytes after it."""
    frame = bytearray(b"head" + bytes(section) + after)
    return memoryview(frame)[4 : 4 + len(section)]


@settings(max_examples=200, deadline=None)
@given(sizes, st.integers(0, 10**6), st.integers(0, 255))
def test_a_view_of_a_frame_counts_its_own_bytes_only(sizes: list[int], pos: int, byte: int) -> None:
    section = bytearray(section_of(sizes) or b"\x01")
    if sizes:
        assert count_records(in_frame(section)) == len(sizes)
    section[pos % len(section)] = byte
    expected = reference_count(bytes(section))
    # the bytes after the section (a valid-looking record here) never count
    for after in (b"", b"\x02" * 40, section_of([3])):
        try:
            assert count_records(in_frame(section, after)) == expected
        except InvalidRecordError:
            assert expected is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([1, 100, 300, 2000, 9000]), min_size=1, max_size=5))
def test_long_runs_of_equal_records_as_producers_batch_them(run_lengths: list[int]) -> None:
    """Thousands of equal records (a librdkafka batch of 100-byte values) in a few looks,
    whose windows grow; the offset delta's varint growing at 64 and 8,192 changes the
    record length inside the run."""
    section = section_of([size for n, size in enumerate(run_lengths) for _ in range(n + 1)])
    big = section_of([100] * 9_000)
    for data in (section + big, big + section, big):
        expected = reference_count(data)
        assert expected is not None
        assert count_records(in_frame(data)) == expected
        assert count_records(data) == expected
        try:
            count_records(in_frame(data[:-1], after=data[-1:] + b"\x02"))
        except InvalidRecordError:
            continue
        raise AssertionError("a section cut one byte short was counted")
