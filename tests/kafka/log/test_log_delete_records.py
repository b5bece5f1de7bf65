"""DeleteRecords on the log: the start offset moves forward, durably, and frees whole segments."""

from __future__ import annotations

from pathlib import Path

import pytest
from log_batches import batch_bases, make_batch, records_in

from streamsource.kafka.log import LogConfig, OffsetOutOfRange, PartitionLog
from streamsource.kafka.log.start_offset import CHECKPOINT_FILE

NOW = 1_000_000


def open_log(directory: Path, **config: object) -> PartitionLog:
    return PartitionLog.open(directory, LogConfig(**config), now_ms=NOW)  # type: ignore[arg-type]


def filled_log(directory: Path) -> PartitionLog:
    """Offsets 0-11 in six segments of two-record batches: bases 0, 2, 4, 6, 8, 10."""
    log = open_log(directory, segment_bytes=400)
    for _ in range(6):
        log.append([make_batch(2, value_size=150)], now_ms=NOW)
    assert log.segment_base_offsets == [0, 2, 4, 6, 8, 10]
    return log


def test_start_moves_into_a_segment_and_earlier_segments_go(tmp_path: Path) -> None:
    log = filled_log(tmp_path / "p")

    assert log.delete_records_before(5) == 5

    assert log.log_start_offset == 5
    assert log.segment_base_offsets == [4, 6, 8, 10]
    assert not (tmp_path / "p" / f"{2:020d}.log").exists()
    with pytest.raises(OffsetOutOfRange):
        log.read(4, 1 << 20)
    # the batch holding offset 5 is returned whole; consumers skip offset 4, as with Kafka
    assert batch_bases(log.read(5, 1 << 20)) == [4, 6, 8, 10]
    assert log.log_end_offset == 12
    log.close()


def test_the_new_start_survives_a_restart(tmp_path: Path) -> None:
    log = filled_log(tmp_path / "p")
    log.delete_records_before(7)
    log.close()

    reopened = open_log(tmp_path / "p", segment_bytes=400)

    assert (reopened.log_start_offset, reopened.log_end_offset) == (7, 12)
    with pytest.raises(OffsetOutOfRange):
        reopened.read(6, 1 << 20)
    offsets = [offset for offset, _, _ in records_in(reopened.read(7, 1 << 20))]
    assert offsets == [6, 7, 8, 9, 10, 11]
    reopened.append([make_batch(1)], now_ms=NOW)
    assert reopened.log_end_offset == 13
    reopened.close()


def test_deleting_up_to_the_end_rolls_and_frees_everything(tmp_path: Path) -> None:
    log = filled_log(tmp_path / "p")

    assert log.delete_records_before(12) == 12

    assert log.segment_base_offsets == [12]
    assert log.read(12, 1 << 20) == b""
    assert log.size_bytes == 0
    log.append([make_batch(3)], now_ms=NOW)
    log.close()
    reopened = open_log(tmp_path / "p")
    assert (reopened.log_start_offset, reopened.log_end_offset) == (12, 15)
    reopened.close()


def test_start_never_moves_back_and_never_past_the_end(tmp_path: Path) -> None:
    log = filled_log(tmp_path / "p")
    log.delete_records_before(6)

    assert log.delete_records_before(3) == 6
    assert log.delete_records_before(6) == 6
    with pytest.raises(OffsetOutOfRange):
        log.delete_records_before(13)
    assert log.log_start_offset == 6
    log.close()


def test_a_crash_before_the_old_segments_went_is_finished_on_open(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = filled_log(directory)
    log.close()
    saved = {p.name: p.read_bytes() for p in directory.iterdir()}
    log = open_log(directory, segment_bytes=400)
    log.delete_records_before(9)
    log.close()
    checkpoint = (directory / CHECKPOINT_FILE).read_bytes()
    # as if the checkpoint had been written but no segment file deleted yet
    for name, data in saved.items():
        (directory / name).write_bytes(data)
    (directory / CHECKPOINT_FILE).write_bytes(checkpoint)

    reopened = open_log(directory, segment_bytes=400)

    assert reopened.log_start_offset == 9
    assert reopened.segment_base_offsets == [8, 10]
    assert not (directory / f"{0:020d}.log").exists()
    reopened.close()


def test_a_start_beyond_a_lost_tail_restarts_the_log_there(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = filled_log(directory)
    log.delete_records_before(12)
    log.close()
    other = open_log(tmp_path / "short", segment_bytes=400)
    other.append([make_batch(2, value_size=150)], now_ms=NOW)
    other.close()
    # the data lost its tail (end 2) while the checkpoint says 12
    for path in directory.glob("0*"):
        path.unlink()
    for path in (tmp_path / "short").iterdir():
        path.rename(directory / path.name)

    reopened = open_log(directory)

    assert (reopened.log_start_offset, reopened.log_end_offset) == (12, 12)
    reopened.append([make_batch(1)], now_ms=NOW)
    assert batch_bases(reopened.read(12, 1 << 20)) == [12]
    reopened.close()


def test_a_damaged_checkpoint_falls_back_to_the_first_segment(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    log = filled_log(directory)
    log.delete_records_before(5)
    log.close()
    (directory / CHECKPOINT_FILE).write_bytes(b"\x00" * 3)

    reopened = open_log(directory)

    assert reopened.log_start_offset == 4
    reopened.close()
