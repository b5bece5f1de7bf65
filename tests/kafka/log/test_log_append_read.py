"""Append and read back: offsets, whole batches, max_bytes, max_offset, segment rolls."""

from __future__ import annotations

from pathlib import Path

import pytest
from log_batches import batch_bases, make_batch, records_in

from streamsource.kafka.log import (
    BatchTooLarge,
    InvalidBatch,
    LogClosed,
    LogConfig,
    OffsetOutOfRange,
    PartitionLog,
)

NOW = 1_000_000


def open_log(path: Path, **config: object) -> PartitionLog:
    return PartitionLog.open(path / "p0", LogConfig(**config), now_ms=NOW)  # type: ignore[arg-type]


def test_empty_log_reads_nothing(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (0, 0, 0)
    assert log.read(0, 1024) == b""
    with pytest.raises(OffsetOutOfRange) as caught:
        log.read(1, 1024)
    assert caught.value.error_code == 1
    log.close()


def test_append_assigns_offsets_and_reads_back(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    first = log.append([make_batch(3, tag="a")], now_ms=NOW)
    second = log.append([make_batch(1, tag="b"), bytes(make_batch(2, tag="c"))], now_ms=NOW)
    assert (first.base_offset, first.last_offset, first.log_append_time_ms) == (0, 2, -1)
    assert (second.base_offset, second.last_offset) == (3, 5)
    assert log.log_end_offset == 6
    values = [(o, v) for o, _, v in records_in(log.read(0, 1 << 20))]
    assert values == [(0, b"a:0"), (1, b"a:1"), (2, b"a:2"), (3, b"b:0"), (4, b"c:0"), (5, b"c:1")]
    assert log.read(6, 1 << 20) == b""
    log.close()


def test_read_from_the_middle_of_a_batch_returns_that_whole_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append([make_batch(5, tag="a")], now_ms=NOW)
    log.append([make_batch(5, tag="b")], now_ms=NOW)
    assert batch_bases(log.read(2, 1 << 20)) == [0, 5]
    assert batch_bases(log.read(7, 1 << 20)) == [5]
    log.close()


def test_max_bytes_cuts_at_batch_boundaries_but_returns_at_least_one(tmp_path: Path) -> None:
    log = open_log(tmp_path, index_interval_bytes=100)
    sizes = []
    for i in range(20):
        batch = make_batch(1, tag=str(i), value_size=50)
        sizes.append(len(batch))
        log.append([batch], now_ms=NOW)
    assert batch_bases(log.read(0, 1)) == [0]  # KIP-74: one whole batch even past max_bytes
    assert batch_bases(log.read(0, sizes[0] * 3 + 5)) == [0, 1, 2]
    assert batch_bases(log.read(4, sizes[0] * 3)) == [4, 5, 6]
    assert batch_bases(log.read(15, 1 << 20)) == [15, 16, 17, 18, 19]
    log.close()


def test_max_offset_leaves_out_batches_at_or_above_it(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for _ in range(4):
        log.append([make_batch(2)], now_ms=NOW)
    assert batch_bases(log.read(0, 1 << 20, max_offset=4)) == [0, 2]
    assert log.read(4, 1 << 20, max_offset=4) == b""
    assert batch_bases(log.read(0, 1 << 20, max_offset=8)) == [0, 2, 4, 6]
    log.close()


def test_read_below_log_start_or_past_end_is_out_of_range(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append([make_batch(2)], now_ms=NOW)
    for offset in (-1, 3, 100):
        with pytest.raises(OffsetOutOfRange):
            log.read(offset, 100)
    log.close()


def test_segments_roll_by_size_and_reads_cross_them(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=1000, index_interval_bytes=200)
    for i in range(30):
        log.append([make_batch(2, tag=str(i), value_size=40)], now_ms=NOW)
    bases = log.segment_base_offsets
    assert len(bases) > 3
    files = sorted(p.name for p in (tmp_path / "p0").iterdir())
    assert f"{bases[1]:020d}.log" in files and f"{bases[1]:020d}.index" in files
    assert all((tmp_path / "p0" / f"{b:020d}.timeindex").exists() for b in bases)
    for path in (tmp_path / "p0").glob("*.log"):
        assert path.stat().st_size <= 1000
    got = records_in(log.read(0, 1 << 20))
    assert [o for o, _, _ in got] == list(range(60))
    assert got[-1][2] == b"29:1".ljust(40, b".")
    # a read starting in a middle segment
    middle = bases[2]
    assert records_in(log.read(middle + 1, 1 << 20))[0][0] == middle
    log.close()


def test_segments_roll_by_time(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_ms=60_000)
    log.append([make_batch()], now_ms=NOW)
    log.append([make_batch()], now_ms=NOW + 60_000)
    assert log.segment_base_offsets == [0]
    log.append([make_batch()], now_ms=NOW + 60_001)
    assert log.segment_base_offsets == [0, 2]
    log.close()


def test_all_batches_of_one_append_share_a_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=500)
    log.append([make_batch(value_size=100)], now_ms=NOW)
    log.append([make_batch(value_size=100) for _ in range(5)], now_ms=NOW)
    assert log.segment_base_offsets == [0, 1]
    assert batch_bases(log.read(1, 1 << 20)) == [1, 2, 3, 4, 5]
    log.close()


def test_bad_batches_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    log = open_log(tmp_path, max_message_bytes=300)
    good = make_batch()
    with pytest.raises(InvalidBatch):
        log.append([good[:-1]], now_ms=NOW)
    with pytest.raises(InvalidBatch):
        log.append([b"\x00" * 10], now_ms=NOW)
    magic1 = bytearray(good)
    magic1[16] = 1
    with pytest.raises(InvalidBatch):
        log.append([good, magic1], now_ms=NOW)
    with pytest.raises(BatchTooLarge) as caught:
        log.append([make_batch(value_size=400)], now_ms=NOW)
    assert caught.value.error_code == 10
    assert (log.log_end_offset, log.size_bytes) == (0, 0)
    log.close()


def test_leader_epoch_is_patched(tmp_path: Path) -> None:
    from streamsource.kafka.records.header import parse_header

    log = open_log(tmp_path)
    log.append([make_batch()], now_ms=NOW, leader_epoch=7)
    log.append([bytes(make_batch())], now_ms=NOW, leader_epoch=8)
    data = log.read(0, 1 << 20)
    first = parse_header(data)
    assert first.partition_leader_epoch == 7
    assert parse_header(data, first.size).partition_leader_epoch == 8
    records_in(data)  # CRCs still valid
    log.close()


def test_log_append_time_stamps_batches(tmp_path: Path) -> None:
    log = open_log(tmp_path, message_timestamp_type="LogAppendTime")
    info = log.append([make_batch(2, timestamp=5)], now_ms=NOW)
    assert info.log_append_time_ms == NOW
    got = records_in(log.read(0, 1 << 20))
    assert [ts for _, ts, _ in got] == [NOW, NOW]  # CRC recomputed and valid
    log.close()


def test_closed_log_refuses_calls(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.close()
    with pytest.raises(LogClosed):
        log.append([make_batch()], now_ms=NOW)


def test_delete_removes_the_directory(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append([make_batch()], now_ms=NOW)
    log.delete()
    assert not (tmp_path / "p0").exists()


def test_the_same_buffer_twice_in_one_append(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    batch = make_batch(2)
    info = log.append([batch, batch, bytes(batch)], now_ms=NOW)
    assert (info.base_offset, info.last_offset) == (0, 5)
    assert batch_bases(log.read(0, 1 << 20)) == [0, 2, 4]
    assert int.from_bytes(batch[:8], "big") == 2  # the caller's buffer shows its last offset
    log.close()


def test_short_writes_are_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    real_pwritev = os.pwritev

    def at_most_7_bytes(fd: int, buffers: list[bytes], offset: int) -> int:
        # what a disk-full or signal-interrupted write may do: write only a little
        joined = b"".join(bytes(b) for b in buffers)[:7]
        return real_pwritev(fd, [joined], offset)

    log = open_log(tmp_path)
    monkeypatch.setattr(os, "pwritev", at_most_7_bytes)
    log.append([make_batch(2, tag="a"), bytes(make_batch(3, tag="b"))], now_ms=NOW)
    monkeypatch.undo()
    log.close()
    log = open_log(tmp_path)  # recovery validates every CRC of what was written
    values = [v for _, _, v in records_in(log.read(0, 1 << 20))]
    assert values == [b"a:0", b"a:1", b"b:0", b"b:1", b"b:2"]
    log.close()
