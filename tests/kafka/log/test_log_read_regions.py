"""read_regions: the same batches as read, as file ranges to send without reading them."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from log_batches import batch_bases, make_batch

from streamsource.kafka.log import LogConfig, OffsetOutOfRange, PartitionLog
from streamsource.kafka.records.header import parse_header

NOW = 1_000_000


def end_offset(data: bytes) -> int:
    pos, end = 0, -1
    while pos < len(data):
        header = parse_header(data, pos)
        end, pos = header.next_offset, pos + header.size
    return end


def fill(path: Path, seed: int) -> PartitionLog:
    """A log of batches of random sizes over several segments (small index interval)."""
    rng = random.Random(seed)
    config = LogConfig(segment_bytes=40_000, index_interval_bytes=rng.choice([1, 500, 4096]))
    log = PartitionLog.open(path / f"p{seed}", config, now_ms=NOW)
    for n in range(120):
        count = rng.choice([1, 3, 20, 200])
        log.append([make_batch(count, tag=f"b{n}", value_size=rng.choice([0, 50]))], now_ms=NOW)
    return log


@pytest.mark.parametrize("seed", range(4))
def test_regions_hold_exactly_what_read_returns(tmp_path: Path, seed: int) -> None:
    log = fill(tmp_path, seed)
    rng = random.Random(seed)
    bases = batch_bases(log.read(0, 1 << 30))
    for _ in range(150):
        offset = rng.randrange(0, log.log_end_offset + 1)
        max_bytes = rng.choice([1, 100, 5_000, 30_000, 100_000, 1 << 30])
        max_offset = rng.choice([None, rng.randrange(0, log.log_end_offset + 1)])
        expected = log.read(offset, max_bytes, max_offset=max_offset)
        regions, after = log.read_regions(offset, max_bytes, max_offset=max_offset)
        try:
            got = b"".join(region.read() for region in regions)
        finally:
            for region in regions:
                region.close()
        assert got == expected, (offset, max_bytes, max_offset)
        assert after == (end_offset(expected) if expected else -1)
        assert all(region.fd == -1 for region in regions)
    assert bases  # the log holds many batches


def test_a_region_outlives_its_segment(tmp_path: Path) -> None:
    log = fill(tmp_path, 9)
    expected = log.read(0, 1 << 30)
    regions, _ = log.read_regions(0, 1 << 30)
    log.delete_records_before(log.log_end_offset)  # every old segment file is deleted
    log.close()
    assert b"".join(region.read() for region in regions) == expected
    for region in regions:
        region.close()


def test_offsets_outside_the_log_are_refused(tmp_path: Path) -> None:
    log = fill(tmp_path, 1)
    with pytest.raises(OffsetOutOfRange):
        log.read_regions(log.log_end_offset + 1, 100)
    assert log.read_regions(log.log_end_offset, 100) == ([], -1)
    assert os.path.exists(tmp_path / "p1")
