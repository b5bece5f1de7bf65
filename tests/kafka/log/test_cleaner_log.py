"""Compaction of a real partition log on disk: what a reader sees after the cleaner ran,
across a reopen, while appends go on, and after ``kill -9`` in the middle of cleaning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deadline import Deadline
from streamsource.kafka.log import LogConfig, PartitionLog
from streamsource.kafka.log.cleaner import clean_log
from streamsource.kafka.log.cleaner.swap import MANIFEST, STAGING_DIR
from streamsource.kafka.records import Record, build_batch, iter_batch_records, iter_batches

NOW = 1_700_000_000_000
BUFFER = 64 * 1024 * 1024
COMPACT = LogConfig(
    segment_bytes=2048, index_interval_bytes=128, cleanup_policy="compact", retention_ms=1
)


def _fill(
    log: PartitionLog, rounds: int, keys: int, *, tag: str = "v", prefix: str = "key"
) -> dict[bytes, bytes]:
    """Append ``rounds`` values of ``keys`` keys (two records a batch); the latest values."""
    latest: dict[bytes, bytes] = {}
    for r in range(rounds):
        for k in range(0, keys, 2):
            records = []
            for d in range(2):
                key, value = f"{prefix}-{k + d}".encode(), f"{tag}{r}-{k + d}".encode()
                records.append(Record(d, NOW + r, key, value))
                latest[key] = value
            log.append([build_batch(records)], now_ms=NOW)
    return latest


def _contents(log: PartitionLog) -> dict[int, tuple[bytes | None, bytes | None]]:
    """Every record from the log start, read as a consumer does (offset after offset)."""
    found: dict[int, tuple[bytes | None, bytes | None]] = {}
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 64 * 1024)
        if not data:
            break
        for header, batch in iter_batches(data):
            for record in iter_batch_records(batch):
                if record.offset >= offset:
                    assert record.offset not in found
                    found[record.offset] = (record.key, record.value)
            offset = header.next_offset
    return found


def test_a_cleaned_log_holds_the_latest_value_per_key_at_its_original_offset(
    tmp_path: Path,
) -> None:
    log = PartitionLog.open(tmp_path / "p", COMPACT, now_ms=NOW)
    latest = _fill(log, rounds=20, keys=10)
    before = _contents(log)
    end = log.log_end_offset
    result = clean_log(log, now_ms=NOW, dedupe_buffer_bytes=BUFFER)
    assert result.segments_rewritten > 0 and result.bytes_after < result.bytes_before
    after = _contents(log)
    assert all(before[o] == r for o, r in after.items())  # offsets unchanged
    # the active segment is never cleaned, so its (newest) records all stay; before it, one
    # record per key is left
    active = log.segment_base_offsets[-1]
    assert {r[0]: r[1] for _, r in sorted(after.items())} == latest
    closed_keys = [after[o][0] for o in after if o < active]
    assert len(closed_keys) == len(set(closed_keys))
    assert log.log_end_offset == end and log.log_start_offset == 0
    # the files and indexes are whole: reopening reads the same, from every offset
    log.close()
    reopened = PartitionLog.open(tmp_path / "p", COMPACT, now_ms=NOW)
    assert _contents(reopened) == after
    for offset in range(end):  # a fetch from any offset, gap or not, gets the next records
        header, batch = next(iter_batches(reopened.read(offset, 1)))
        assert header.last_offset >= offset
        records = {r.offset: (r.key, r.value) for r in iter_batch_records(batch)}
        assert records.items() <= after.items()
        assert any(o >= offset for o in records) or header.record_count == 0
    # appends go on after the last offset
    assert (
        reopened.append([build_batch([Record(0, NOW, b"key-0", b"new")])], now_ms=NOW).base_offset
        == end
    )
    reopened.close()


def test_compacted_logs_are_not_emptied_by_time_retention(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "p", COMPACT, now_ms=NOW)
    _fill(log, rounds=5, keys=10)
    assert log.enforce_retention(NOW + 10**9) == 0
    log.update_config(
        LogConfig(segment_bytes=2048, cleanup_policy="compact,delete", retention_ms=1)
    )
    assert log.enforce_retention(NOW + 10**9) > 0
    log.close()


def test_a_small_offset_map_takes_several_passes_to_the_same_result(tmp_path: Path) -> None:
    small = PartitionLog.open(tmp_path / "small", COMPACT, now_ms=NOW)
    large = PartitionLog.open(tmp_path / "large", COMPACT, now_ms=NOW)
    for log in (small, large):
        _fill(log, rounds=10, keys=40)
    # 1 MiB holds thousands of keys; the map's entry count is what bounds memory, so a
    # buffer that holds 30 keys (fewer than the 40 written) must need more than one pass
    from streamsource.kafka.log.cleaner.core import MAP_ENTRY_BYTES

    result = clean_log(small, now_ms=NOW, dedupe_buffer_bytes=30 * MAP_ENTRY_BYTES)
    assert result.passes > 1
    assert clean_log(large, now_ms=NOW, dedupe_buffer_bytes=BUFFER).passes == 1
    assert _contents(small) == _contents(large)


def test_tombstones_go_after_delete_retention(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=2048, cleanup_policy="compact", delete_retention_ms=1000)
    log = PartitionLog.open(tmp_path / "p", config, now_ms=NOW)
    _fill(log, rounds=5, keys=10)
    for k in range(10):
        log.append([build_batch([Record(0, NOW, f"key-{k}".encode(), None)])], now_ms=NOW)
    _fill(log, rounds=5, keys=10, tag="after")  # the tombstones end up in closed segments
    clean_log(log, now_ms=NOW, dedupe_buffer_bytes=BUFFER)
    assert not any(v is None for _, v in _contents(log).values())  # superseded meanwhile
    for k in range(10):  # tombstones as the last word on every key
        log.append([build_batch([Record(0, NOW, f"key-{k}".encode(), None)])], now_ms=NOW)
    _fill(log, rounds=5, keys=10, prefix="other")  # other keys, so the tombstones close
    clean_log(log, now_ms=NOW, dedupe_buffer_bytes=BUFFER)
    tombstones = [o for o, (k, v) in _contents(log).items() if v is None]
    assert len(tombstones) == 10  # kept: a consumer reading now still sees the deletes
    # nothing new is written: the passed delete horizon alone makes the log worth cleaning
    assert clean_log(log, now_ms=NOW + 999, dedupe_buffer_bytes=BUFFER).passes == 0
    assert clean_log(log, now_ms=NOW + 1001, dedupe_buffer_bytes=BUFFER).passes == 1
    assert not any(v is None for _, v in _contents(log).values())
    assert clean_log(log, now_ms=NOW + 5000, dedupe_buffer_bytes=BUFFER).passes == 0
    log.close()


CLEANER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from streamsource.kafka.log import LogConfig, PartitionLog
    from streamsource.kafka.log.cleaner import clean_log

    config = LogConfig(segment_bytes=4096, index_interval_bytes=128, cleanup_policy="compact")
    log = PartitionLog.open(Path(sys.argv[1]), config, now_ms=0)
    print("cleaning", flush=True)
    clean_log(log, now_ms=0, dedupe_buffer_bytes=64 * 1024 * 1024, force=True)
    print("done", flush=True)
    """
)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float) -> None:
    """Poll until ``condition`` holds or the process ended (it may finish first)."""
    deadline = Deadline(timeout, "the cleaner to reach the kill point")
    while not condition() and proc.poll() is None:
        deadline.check()
        time.sleep(0.0005)


@pytest.mark.slow
def test_kill_9_during_cleaning_loses_nothing(tmp_path: Path) -> None:
    """Cleaning killed at a different point each round (while cleaned copies are written,
    at the swap): after reopening, every record still there is an original one at its
    offset and the latest value of every key is there; a cleaning run to the end then
    leaves the same log as one never interrupted."""
    directory = tmp_path / "p"
    config = LogConfig(segment_bytes=4096, index_interval_bytes=128, cleanup_policy="compact")
    log = PartitionLog.open(directory, config, now_ms=0)
    latest = _fill(log, rounds=60, keys=50)
    original = _contents(log)
    end = log.log_end_offset
    log.close()
    shutil.copytree(directory, tmp_path / "copy")
    subprocess.run([sys.executable, "-c", CLEANER, str(tmp_path / "copy")], check=True, timeout=120)
    staging = directory / STAGING_DIR

    def staged(n: int) -> Callable[[], bool]:
        def reached() -> bool:
            try:
                return len(os.listdir(staging)) >= n
            except FileNotFoundError:  # not yet, or the cleaner finished and removed it
                return False

        return reached

    kill_points = [staged(1), staged(4), staged(10), lambda: (staging / MANIFEST).exists()]
    interrupted = 0
    for point in kill_points * 2:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLEANER, str(directory)], stdout=subprocess.PIPE, text=True
        )
        try:
            _wait_for(point, proc, timeout=60)
        finally:
            proc.kill()
            proc.wait(timeout=30)
            assert proc.stdout is not None
            proc.stdout.close()
        interrupted += staging.exists()
        reopened = PartitionLog.open(directory, config, now_ms=0)
        assert not staging.exists()  # finished or discarded
        seen = _contents(reopened)
        assert all(original[o] == r for o, r in seen.items())
        assert dict(seen[o] for o in sorted(seen)) == latest
        assert reopened.log_end_offset == end
        reopened.close()
    assert interrupted >= 1  # the first kill at least came while cleaned copies were written
    reopened = PartitionLog.open(directory, config, now_ms=0)
    clean_log(reopened, now_ms=0, dedupe_buffer_bytes=BUFFER, force=True)
    copy = PartitionLog.open(tmp_path / "copy", config, now_ms=0)
    assert _contents(reopened) == _contents(copy)
