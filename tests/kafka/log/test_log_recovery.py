"""Reopen and crash recovery: torn tails, corrupt CRCs, missing or bogus indexes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from log_batches import batch_bases, make_batch, records_in

from streamsource.kafka.log import LogConfig, PartitionLog
from streamsource.kafka.log.segment import INDEX_WRITE_BYTES
from streamsource.kafka.records.header import parse_header

NOW = 1_000_000


def open_log(directory: Path, **config: object) -> PartitionLog:
    return PartitionLog.open(directory, LogConfig(**config), now_ms=NOW)  # type: ignore[arg-type]


def fill(log: PartitionLog, batches: int, *, records: int = 2, value_size: int = 30) -> None:
    for i in range(batches):
        log.append([make_batch(records, tag=str(i), value_size=value_size)], now_ms=NOW)


def last_log_file(directory: Path) -> Path:
    return sorted(directory.glob("*.log"))[-1]


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory, segment_bytes=2000, index_interval_bytes=100)
    fill(log, 50)
    before = log.read(0, 1 << 20)
    segments = log.segment_base_offsets
    log.close()
    log = open_log(directory, segment_bytes=2000, index_interval_bytes=100)
    assert (log.log_start_offset, log.log_end_offset) == (0, 100)
    assert log.segment_base_offsets == segments
    assert log.read(0, 1 << 20) == before
    assert log.flushed_offset == 100
    assert log.append([make_batch()], now_ms=NOW).base_offset == 100
    log.close()


def test_torn_tail_is_truncated_and_appends_continue(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory, index_interval_bytes=100)
    fill(log, 10)
    good_size = log.size_bytes
    log.append([make_batch(3, tag="torn")], now_ms=NOW)
    log.close()
    path = last_log_file(directory)
    os.truncate(path, path.stat().st_size - 7)  # the last batch is cut mid-way
    log = open_log(directory, index_interval_bytes=100)
    assert log.log_end_offset == 20
    assert path.stat().st_size == good_size
    assert log.append([make_batch(1, tag="after")], now_ms=NOW).base_offset == 20
    got = records_in(log.read(0, 1 << 20))
    assert [o for o, _, _ in got] == list(range(21))
    assert got[-1][2] == b"after:0"
    log.close()


def test_garbage_after_the_last_batch_is_truncated(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory)
    fill(log, 3)
    log.close()
    with open(last_log_file(directory), "ab") as f:
        f.write(os.urandom(200))
    log = open_log(directory)
    assert log.log_end_offset == 6
    assert len(records_in(log.read(0, 1 << 20))) == 6
    log.close()


def test_zeroed_tail_is_truncated(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory)
    fill(log, 3)
    log.close()
    with open(last_log_file(directory), "ab") as f:
        f.write(bytes(4096))  # what a crash can leave after an extended file
    log = open_log(directory)
    assert log.log_end_offset == 6
    log.close()


def flip_byte(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("index_interval_bytes", [100, 4096])
def test_corrupt_crc_in_the_tail_truncates_from_that_batch(
    tmp_path: Path, index_interval_bytes: int
) -> None:
    directory = tmp_path / "p"
    log = open_log(directory, index_interval_bytes=index_interval_bytes)
    fill(log, 10)
    data = log.read(0, 1 << 20)
    log.close()
    bases = batch_bases(data)
    # With sparse entries the whole segment is the tail; with dense ones, the last batch is.
    corrupt = 7 if index_interval_bytes > len(data) else 9
    position = sum(parse_header(data, p).size for p in batch_positions(data)[:corrupt])
    flip_byte(last_log_file(directory), position + 70)  # inside a record value
    log = open_log(directory, index_interval_bytes=index_interval_bytes)
    assert log.log_end_offset == bases[corrupt]
    assert batch_bases(log.read(0, 1 << 20)) == bases[:corrupt]
    log.close()


def batch_positions(data: bytes) -> list[int]:
    positions = []
    position = 0
    while position < len(data):
        positions.append(position)
        position += parse_header(data, position).size
    return positions


def test_missing_indexes_are_rebuilt_and_reads_still_work(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    config = {"segment_bytes": 3000, "index_interval_bytes": 150}
    log = open_log(directory, **config)
    fill(log, 60)
    expected = {offset: log.read(offset, 500) for offset in range(0, 120, 7)}
    expected_ts = log.offset_for_timestamp(0)
    log.close()
    for path in directory.glob("*.index"):
        path.unlink()
    for path in list(directory.glob("*.timeindex"))[:2]:
        path.unlink()
    log = open_log(directory, **config)
    assert log.log_end_offset == 120
    for offset, data in expected.items():
        assert log.read(offset, 500) == data
    assert log.offset_for_timestamp(0) == expected_ts
    log.close()
    assert all(p.stat().st_size > 0 for p in directory.glob("*.index"))


def test_bogus_index_entries_are_ignored(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory, index_interval_bytes=100)
    fill(log, 20)
    expected = log.read(0, 1 << 20)
    log.close()
    index = sorted(directory.glob("*.index"))[-1]
    with open(index, "ab") as f:
        f.write((10_000).to_bytes(4, "big") + (999_999).to_bytes(4, "big"))  # past the data
        f.write(b"\x01\x02\x03")  # and a torn entry
    log = open_log(directory, index_interval_bytes=100)
    assert log.log_end_offset == 40
    assert log.read(0, 1 << 20) == expected
    for offset in range(40):
        assert batch_bases(log.read(offset, 1))[0] == offset - offset % 2
    log.close()


def test_index_files_without_a_segment_are_removed(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / f"{42:020d}.index").write_bytes(b"\x00" * 8)
    (directory / "leader-epoch-checkpoint").write_text("keep me")
    log = open_log(directory)
    assert not (directory / f"{42:020d}.index").exists()
    assert (directory / "leader-epoch-checkpoint").exists()
    log.close()


def test_a_log_whose_only_segment_is_garbage_starts_at_that_segment(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory, segment_bytes=500)
    fill(log, 20)
    last_base = log.segment_base_offsets[-1]
    log.close()
    last_log_file(directory).write_bytes(os.urandom(300))
    log = open_log(directory, segment_bytes=500)
    assert log.log_end_offset == last_base
    assert log.append([make_batch()], now_ms=NOW).base_offset == last_base
    log.close()


def test_a_rebuilt_index_is_written_so_the_next_open_reads_only_the_tail(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory, index_interval_bytes=200)
    fill(log, 200)
    log.close()
    for path in directory.glob("*index"):
        path.unlink()
    rebuilt = open_log(directory, index_interval_bytes=200)
    full_scan = rebuilt.bytes_read
    assert full_scan >= rebuilt.size_bytes
    rebuilt.close()
    again = open_log(directory, index_interval_bytes=200)
    assert again.bytes_read < full_scan // 10
    assert again.log_end_offset == 400
    again.close()


def test_a_crash_right_after_a_roll_leaves_an_empty_last_segment(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = open_log(directory)
    fill(log, 3)
    log.close()
    (directory / f"{6:020d}.log").touch()  # the roll created the file, nothing was written
    log = open_log(directory)
    assert log.segment_base_offsets == [0, 6]
    assert (log.log_start_offset, log.log_end_offset) == (0, 6)
    assert log.append([make_batch()], now_ms=NOW).base_offset == 6
    assert [o for o, _, _ in records_in(log.read(0, 1 << 20))] == list(range(7))
    log.close()


def test_index_entries_reach_their_files_in_runs_and_a_crash_before_one_loses_no_read(
    tmp_path: Path,
) -> None:
    # Index entries are written every INDEX_WRITE_BYTES of data, not on each append (a
    # syscall or two per produce request); reads use the entries in memory meanwhile.
    directory = tmp_path / "p"
    log = open_log(directory, index_interval_bytes=100)
    fill(log, 30)
    index = sorted(directory.glob("*.index"))[-1]
    time_index = sorted(directory.glob("*.timeindex"))[-1]
    assert (index.stat().st_size, time_index.stat().st_size) == (0, 0)
    expected = {offset: log.read(offset, 500) for offset in range(0, 60, 7)}
    # kill -9 now: the log is never closed, and the next process finds no index entries
    reopened = open_log(directory, index_interval_bytes=100)
    assert reopened.log_end_offset == 60
    for offset, data in expected.items():
        assert reopened.read(offset, 500) == data
    # what recovery rebuilt is written at once
    assert index.stat().st_size > 0 and time_index.stat().st_size > 0
    # and once a run's worth of data is appended, its entries are written too
    written = index.stat().st_size
    fill(reopened, INDEX_WRITE_BYTES // 100_000 + 1, records=1, value_size=100_000)
    assert index.stat().st_size > written
    reopened.close()
