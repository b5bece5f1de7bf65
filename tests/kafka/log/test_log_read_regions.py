"""read_regions: the same batches as read, as file ranges to send without reading them."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest
from log_batches import batch_bases, make_batch

from page_cache_eviction import evict
from streamsource.kafka.log import (
    LogConfig,
    OffsetOutOfRange,
    PartitionLog,
    page_cache,
    partition_log,
)
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


def _hot_bytes(log: PartitionLog, offset: int, max_bytes: int = 1 << 30) -> bytes | None:
    found = log.read_hot_regions(offset, max_bytes)
    if found is None:
        return None
    regions, _ = found
    try:
        return b"".join(region.read() for region in regions)
    finally:
        for region in regions:
            region.close()


def test_without_the_kernels_answer_the_hot_tail_is_what_this_process_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the kernel cannot say what is in the page cache, the event loop reads only
    data it knows is there: appended by this log object to its active segment. Not what it
    found at open, not older segments."""
    monkeypatch.setattr(page_cache, "_call", None)  # as on a kernel without cachestat
    config = LogConfig(segment_bytes=40_000, index_interval_bytes=500)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    for n in range(30):
        log.append([make_batch(5, tag=f"a{n}", value_size=50)], now_ms=NOW)
    for offset in range(0, log.log_end_offset + 1, 7):
        assert _hot_bytes(log, offset) == log.read(offset, 1 << 30)
    log.close()

    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    found_at_open = log.log_end_offset
    assert _hot_bytes(log, 0) is None  # written before this process: a worker reads it
    assert log.read_hot_regions(found_at_open, 100) == ([], -1)  # nothing to read
    for n in range(30):
        log.append([make_batch(5, tag=f"b{n}", value_size=50)], now_ms=NOW)
    assert len(log.segment_base_offsets) == 1
    # the tail appended since is hot, and the bytes found at open stay cold
    tail = _hot_bytes(log, log.log_end_offset - 5)
    assert tail is not None and tail == log.read(log.log_end_offset - 5, 1 << 30)
    assert _hot_bytes(log, found_at_open - 1) is None

    while len(log.segment_base_offsets) == 1:  # roll: the new segment is all ours
        log.append([make_batch(5, tag="c", value_size=200)], now_ms=NOW)
    active_base = log.segment_base_offsets[-1]
    assert _hot_bytes(log, active_base) == log.read(active_base, 1 << 30)
    assert _hot_bytes(log, active_base - 1) is None  # an older segment
    log.close()


def _evict(directory: Path) -> None:
    for path in directory.glob("*.log"):
        evict(path)


def test_data_in_the_page_cache_is_hot_wherever_it_lies(tmp_path: Path) -> None:
    """Data found at open, older segments: hot once the kernel says every page the read
    touches is cached; cold (None, nothing read) while any is not."""
    config = LogConfig(segment_bytes=40_000, index_interval_bytes=500)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    for n in range(90):
        log.append([make_batch(5, tag=f"a{n}", value_size=200)], now_ms=NOW)
    assert len(log.segment_base_offsets) > 2
    log.close()

    _evict(tmp_path / "p")
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)  # reads only the tails
    _evict(tmp_path / "p")
    second = log.segment_base_offsets[1]
    end = log.log_end_offset
    assert _hot_bytes(log, 0) is None  # an old segment, its file closed
    assert _hot_bytes(log, end - 5) is None  # the active one: found at open, not cached
    whole = log.read(0, 1 << 30)  # a worker's read: every segment opened and cached
    for offset in (0, 3, second - 1, second, end - 5, end - 1):
        assert _hot_bytes(log, offset) == log.read(offset, 1 << 30), offset
    assert _hot_bytes(log, 0, max_bytes=100) == log.read(0, 100)
    assert _hot_bytes(log, 0) == whole

    # files open, nothing cached: not even a batch header is read (it would wait)
    _evict(tmp_path / "p")
    reads = log.stats.read_calls
    assert _hot_bytes(log, 0) is None
    assert _hot_bytes(log, end - 5) is None
    assert log.stats.read_calls == reads

    # the batch headers a read looks at cached, the bytes it would send not: still cold
    fd = os.open(tmp_path / "p" / f"{0:020d}.log", os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        os.pread(fd, 8192, 0)  # what the walk reads of the first segment to the end of it
        assert not page_cache.cached(fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    reads = log.stats.read_calls
    assert _hot_bytes(log, 0) is None
    assert log.stats.read_calls > reads  # the headers were read, the region was refused
    assert log.read(0, 1 << 30) == whole
    log.close()


def test_only_the_last_hot_tail_bytes_are_hot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partition_log, "HOT_TAIL_BYTES", 2_000)
    monkeypatch.setattr(page_cache, "_call", None)  # as on a kernel without cachestat
    log = PartitionLog.open(tmp_path / "p", LogConfig(index_interval_bytes=100), now_ms=NOW)
    for n in range(100):
        log.append([make_batch(1, tag=f"a{n}", value_size=100)], now_ms=NOW)
    assert _hot_bytes(log, 0) is None
    recent = log.log_end_offset - 5  # about 800 bytes before the end
    assert _hot_bytes(log, recent) == log.read(recent, 1 << 30)
    log.close()


def test_a_hot_read_never_waits_for_the_lock(tmp_path: Path) -> None:
    """The writer thread holds the log's lock while it appends (which may be throttled by
    writeback): the event loop then leaves the read to a worker instead of waiting."""
    log = fill(tmp_path, 3)
    offset = log.segment_base_offsets[-1]
    assert _hot_bytes(log, offset) is not None
    held, release = threading.Event(), threading.Event()

    def append_held() -> None:
        with log._lock:  # as a slow append does
            held.set()
            release.wait(30)

    thread = threading.Thread(target=append_held)
    thread.start()
    try:
        assert held.wait(30)
        assert log.read_hot_regions(offset, 1 << 30) is None
    finally:
        release.set()
        thread.join(30)
    assert _hot_bytes(log, offset) is not None
    log.close()
