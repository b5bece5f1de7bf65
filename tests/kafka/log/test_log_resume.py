"""The resume point: a consumer's next fetch starts where its last one stopped, and the log
finds that batch without the index and header reads, yet never serves bytes that are gone."""

from __future__ import annotations

from pathlib import Path

import pytest
from log_batches import make_batch

from streamsource.kafka.log import LogConfig, OffsetOutOfRange, PartitionLog
from streamsource.kafka.log.cleaner import clean_log
from streamsource.kafka.records import Record, build_batch

NOW = 1_700_000_000_000


def _regions_bytes(log: PartitionLog, offset: int, max_bytes: int) -> tuple[bytes, int]:
    regions, after = log.read_regions(offset, max_bytes)
    try:
        return b"".join(region.read() for region in regions), after
    finally:
        for region in regions:
            region.close()


def _consume(log: PartitionLog, offset: int, max_bytes: int, fetches: int = 10**6) -> bytes:
    """What a consumer reads from ``offset`` on, each fetch from where the last stopped."""
    parts = []
    for _ in range(fetches):
        data, after = _regions_bytes(log, offset, max_bytes)
        if not data:
            break
        parts.append(data)
        offset = after
    return b"".join(parts)


def test_a_consumer_reading_on_gets_every_batch_with_one_header_read_a_fetch(
    tmp_path: Path,
) -> None:
    log = PartitionLog.open(tmp_path / "p", LogConfig(index_interval_bytes=1024), now_ms=NOW)
    for n in range(60):  # batches larger than the index interval, as a busy producer's are
        log.append([make_batch(20, tag=f"b{n}", value_size=100)], now_ms=NOW)
    whole = log.read(0, 1 << 30)
    batch = len(whole) // 60

    reads = log.stats.read_calls
    got = _consume(log, 0, 2 * batch + batch // 2)  # two batches a fetch, a third cut off
    fetches = 30
    assert got == whole
    # the header of the batch a fetch stops before, read once: not looked up again
    assert log.stats.read_calls - reads <= fetches

    # a fetch from any other offset looks its batch up as before
    assert _regions_bytes(log, 5, 1 << 30)[0] == whole
    log.close()


def test_bytes_cleaned_under_the_resume_point_are_never_served(tmp_path: Path) -> None:
    config = LogConfig(
        segment_bytes=2048, index_interval_bytes=128, cleanup_policy="compact", retention_ms=1
    )
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    for r in range(20):
        for k in range(0, 8, 2):
            records = [Record(d, NOW + r, f"k{k + d}".encode(), f"v{r}".encode()) for d in (0, 1)]
            log.append([build_batch(records)], now_ms=NOW)
    assert len(log.segment_base_offsets) > 3
    _consume(log, 0, 300, fetches=3)  # a consumer part way through the first segment
    offset = _regions_bytes(log, 0, 300)[1]
    assert clean_log(log, now_ms=NOW, dedupe_buffer_bytes=1 << 20).passes == 1
    after_cleaning = _consume(log, offset, 300)
    log.close()

    fresh = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)  # no resume point yet
    assert after_cleaning == _consume(fresh, offset, 300)
    assert len(after_cleaning) < 20 * 4 * 60  # the cleaner dropped the older values
    fresh.close()


def test_records_deleted_under_the_resume_point_are_out_of_range(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4000, index_interval_bytes=128)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    for n in range(80):
        log.append([make_batch(5, tag=f"b{n}", value_size=50)], now_ms=NOW)
    whole = log.read(0, 1 << 30)
    first, offset = _regions_bytes(log, 0, 1000)
    # DeleteRecords below the resume point: the rest reads as before
    log.delete_records_before(offset)
    assert first + _consume(log, offset, 1000) == whole
    # then past it: the consumer is told its offset is gone, not served stale bytes
    _regions_bytes(log, offset, 1000)
    log.delete_records_before(offset + 50)
    with pytest.raises(OffsetOutOfRange):
        log.read_regions(offset, 1000)
    with pytest.raises(OffsetOutOfRange):
        log.read(offset, 1000)
    # retention deletes the segment the resume point lies in
    middle = log.segment_base_offsets[len(log.segment_base_offsets) // 2]
    _consume(log, middle, 1000, fetches=1)
    log.update_config(LogConfig(segment_bytes=4000, index_interval_bytes=128, retention_ms=0))
    assert log.enforce_retention(NOW + 10**9) > 0
    assert log.log_start_offset > middle
    with pytest.raises(OffsetOutOfRange):
        log.read_regions(middle, 1000)
    log.close()
