"""Retention by time and size, timestamp lookups, truncation, header iteration, flushing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from log_batches import batch_bases, make_batch, records_in

from streamsource.kafka.log import LogConfig, OffsetOutOfRange, PartitionLog

NOW = 1_000_000
HOUR = 3_600_000


def open_log(directory: Path, **config: object) -> PartitionLog:
    return PartitionLog.open(directory, LogConfig(**config), now_ms=NOW)  # type: ignore[arg-type]


def test_retention_by_time_deletes_expired_segments_then_rolls_an_expired_active_one(
    tmp_path: Path,
) -> None:
    log = open_log(tmp_path / "p", segment_bytes=400, retention_ms=HOUR)
    for hour in range(6):
        log.append([make_batch(2, timestamp=hour * HOUR, value_size=150)], now_ms=NOW)
    bases = log.segment_base_offsets
    assert bases == [0, 2, 4, 6, 8, 10]
    assert log.enforce_retention(now_ms=3 * HOUR) == 2  # hours 0 and 1 are older than 1h
    assert log.log_start_offset == 4
    assert log.segment_base_offsets == [4, 6, 8, 10]
    assert not (tmp_path / "p" / f"{0:020d}.log").exists()
    with pytest.raises(OffsetOutOfRange):
        log.read(3, 1000)
    assert batch_bases(log.read(4, 1 << 20)) == [4, 6, 8, 10]
    assert log.enforce_retention(now_ms=5 * HOUR + HOUR // 2) == 3  # the active one is young
    assert log.segment_base_offsets == [10]
    # As in Kafka, an active segment whose data has all expired goes too: the log rolls
    # first, so an idle topic does not keep expired data until its next roll.
    assert log.enforce_retention(now_ms=100 * HOUR) == 1
    assert log.segment_base_offsets == [12]
    assert (log.log_start_offset, log.log_end_offset) == (12, 12)
    assert log.read(12, 1000) == b""
    assert log.enforce_retention(now_ms=1000 * HOUR) == 0  # an empty active segment stays
    log.close()
    reopened = open_log(tmp_path / "p")
    assert (reopened.log_start_offset, reopened.log_end_offset) == (12, 12)
    assert reopened.append([make_batch(2, timestamp=NOW)], now_ms=NOW).base_offset == 12
    reopened.close()


def test_retention_bytes_zero_empties_the_log(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", segment_bytes=400, retention_bytes=0, retention_ms=-1)
    for _ in range(3):
        log.append([make_batch(2, timestamp=NOW, value_size=150)], now_ms=NOW)
    assert log.enforce_retention(now_ms=NOW) == 3
    assert (log.log_start_offset, log.log_end_offset) == (6, 6)
    assert log.append([make_batch(1, timestamp=NOW)], now_ms=NOW).base_offset == 6
    log.close()


def test_retention_forever_keeps_everything(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", segment_bytes=400, retention_ms=-1)
    for _ in range(4):
        log.append([make_batch(2, timestamp=0, value_size=150)], now_ms=NOW)
    assert log.enforce_retention(now_ms=10**12) == 0
    log.close()


def test_retention_by_size(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", segment_bytes=400, retention_bytes=1000, retention_ms=-1)
    for _ in range(8):
        log.append([make_batch(2, timestamp=NOW, value_size=150)], now_ms=NOW)
    segment_size = log.size_bytes // 8
    # As in Kafka, a segment goes only if what remains is still at least retention.bytes.
    assert log.enforce_retention(now_ms=NOW) == 8 - (1000 // segment_size + 1)
    assert log.size_bytes >= 1000
    assert log.size_bytes - segment_size < 1000
    assert log.log_start_offset == log.segment_base_offsets[0]
    log.close()


def test_offset_for_timestamp(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", segment_bytes=1000, index_interval_bytes=100)
    for i in range(40):
        log.append([make_batch(2, timestamps=[i * 10, i * 10 + 5], value_size=20)], now_ms=NOW)
    assert len(log.segment_base_offsets) > 3
    # record-grained answers: batch i holds offsets 2i, 2i+1 stamped 10i, 10i+5
    assert log.offset_for_timestamp(0) == (0, 0)
    assert log.offset_for_timestamp(5) == (1, 5)
    assert log.offset_for_timestamp(6) == (2, 10)
    assert log.offset_for_timestamp(200) == (40, 200)
    assert log.offset_for_timestamp(201) == (41, 205)
    assert log.offset_for_timestamp(395) == (79, 395)
    assert log.offset_for_timestamp(396) is None
    assert log.max_timestamp_offset() == (79, 395)
    log.close()


def test_offset_for_timestamp_with_unordered_timestamps(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", index_interval_bytes=0)
    for ts in (100, 50, 300, 200, 400):
        log.append([make_batch(timestamp=ts)], now_ms=NOW)
    assert log.offset_for_timestamp(60) == (0, 100)
    assert log.offset_for_timestamp(150) == (2, 300)
    assert log.offset_for_timestamp(301) == (4, 400)
    assert log.max_timestamp_offset() == (4, 400)
    log.append([make_batch(3, timestamps=[10, 400, 400])], now_ms=NOW)
    assert log.max_timestamp_offset() == (4, 400)  # ties: the first
    log.append([make_batch(3, timestamps=[10, 500, 400])], now_ms=NOW)
    assert log.max_timestamp_offset() == (9, 500)
    log.close()


def test_max_timestamp_offset_of_an_empty_log(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p")
    assert log.max_timestamp_offset() is None
    assert log.offset_for_timestamp(0) is None
    log.close()


def test_iter_batch_headers(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", segment_bytes=20_000)
    for _ in range(1500):
        log.append([make_batch(2)], now_ms=NOW)
    headers = list(log.iter_batch_headers(1001))
    assert [h.base_offset for h in headers] == list(range(1000, 3000, 2))
    assert all(h.record_count == 2 for h in headers)
    assert list(log.iter_batch_headers(3000)) == []
    log.close()


def test_flush_from_another_thread_while_appending(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p", segment_bytes=5000, fsync="always")
    errors: list[BaseException] = []
    stop = threading.Event()

    def flusher() -> None:
        try:
            while not stop.is_set():
                log.flush()
                assert log.flushed_offset <= log.log_end_offset
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for i in range(300):
            log.append([make_batch(2, tag=str(i))], now_ms=NOW)
    finally:
        stop.set()
        thread.join()
    assert not errors
    log.flush()
    assert log.flushed_offset == log.log_end_offset == 600
    assert len(records_in(log.read(0, 1 << 30))) == 600
    log.close()
