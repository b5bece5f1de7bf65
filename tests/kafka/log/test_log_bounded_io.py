"""Reads seek with the offset index: the bytes read stay bounded however large the log is."""

from __future__ import annotations

import os
from pathlib import Path

from log_batches import batch_bases, make_batch, records_in

from streamsource.kafka.log import LogConfig, PartitionLog

NOW = 1_000_000


def test_reads_in_a_large_log_read_a_bounded_number_of_bytes(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=256 * 1024, index_interval_bytes=1024)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    batch = make_batch(2, value_size=100)
    for _ in range(10_000):
        log.append([batch], now_ms=NOW)
    assert log.size_bytes > 2_000_000
    assert len(log.segment_base_offsets) > 8
    batch_size = len(batch)
    for offset in (1, 5_000, 9_999, 13_331, 19_998):
        before = log.bytes_read
        data = log.read(offset, 2000)
        used = log.bytes_read - before
        assert batch_bases(data)[0] == offset - offset % 2
        assert len(data) <= 2000
        # the data itself plus a walk from the nearest index entry (one small scan window)
        assert used <= 2000 + 8 * 1024 + batch_size
    before = log.bytes_read
    assert log.offset_for_timestamp(1_000) == (0, 1_000)
    assert log.bytes_read - before <= 8 * 1024 + batch_size  # a scan window + the batch
    log.close()


def test_reopening_a_large_log_reads_only_the_tails(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=256 * 1024, index_interval_bytes=1024)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    batch = make_batch(2, value_size=100)
    for _ in range(10_000):
        log.append([batch], now_ms=NOW)
    segments = len(log.segment_base_offsets)
    log.close()
    reopened = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    assert reopened.log_end_offset == 20_000
    # each segment's tail from its last index entry: about one index interval each
    assert reopened.bytes_read <= segments * (1024 + 2 * len(batch))
    reopened.close()


def test_batches_larger_than_the_read_windows(tmp_path: Path) -> None:
    config = LogConfig(max_message_bytes=8 * 1024 * 1024)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    big = make_batch(3, value_size=1024 * 1024)  # 3 MiB: above every scan window
    log.append([make_batch(1, tag="small")], now_ms=NOW)
    log.append([big], now_ms=NOW)
    log.append([make_batch(1, tag="last")], now_ms=NOW)
    log.append([big], now_ms=NOW)
    assert batch_bases(log.read(2, 10)) == [1]
    assert batch_bases(log.read(4, 10)) == [4]
    assert [h.base_offset for h in log.iter_batch_headers(0)] == [0, 1, 4, 5]
    log.close()
    reopened = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    assert reopened.log_end_offset == 8
    reopened.close()
    # corrupt the last big batch's final byte: chunked CRC catches it
    path = next((tmp_path / "p").glob("*.log"))
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    reopened = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    assert reopened.log_end_offset == 5
    assert records_in(reopened.read(4, 10))[0][2] == b"last:0"
    reopened.close()


def test_reading_a_long_log_keeps_few_files_open(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes=1000), now_ms=NOW)
    for _ in range(300):
        log.append([make_batch(1, value_size=200)], now_ms=NOW)
    assert len(log.segment_base_offsets) > 50
    before = len(os.listdir("/proc/self/fd"))
    offset = 0
    while offset < log.log_end_offset:
        offset += len(batch_bases(log.read(offset, 1)))
    assert len(os.listdir("/proc/self/fd")) - before <= 8
    log.close()
