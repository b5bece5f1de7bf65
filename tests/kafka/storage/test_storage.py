"""The broker's storage layer on real files: record logs, keyed logs, whole-file records."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from streamsource.errors import CorruptStoreError
from streamsource.kafka.storage import (
    KeyedLog,
    RecordLog,
    StorageError,
    read_record_file,
    write_record_file,
)

MAGIC = b"SSTEST01"


def test_record_log_replays_in_order_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    log, replayed = RecordLog.open(path, MAGIC)
    assert replayed == []
    log.append_now([b"a", b"b"])
    log.append_now([b"c"])
    size = log.size
    log.close()
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x09garbage")  # a record torn by a crash
    log, replayed = RecordLog.open(path, MAGIC)
    assert replayed == [b"a", b"b", b"c"]
    assert path.stat().st_size == size
    log.close()


def test_record_log_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    path.write_bytes(b"SSOTHER1")
    with pytest.raises(CorruptStoreError):
        RecordLog.open(path, MAGIC)


def test_failed_appends_are_cut_back_and_later_ones_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.log"
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def run() -> None:
        log, _ = RecordLog.open(path, MAGIC)
        await log.append([b"kept"])
        monkeypatch.setattr(os, "fsync", disk_full)
        with pytest.raises(StorageError) as caught:
            await log.append([b"lost"])
        assert caught.value.retriable and "No space left" in str(caught.value)
        monkeypatch.setattr(os, "fsync", real_fsync)
        await log.append([b"after"])
        log.close()

    asyncio.run(run())
    log, replayed = RecordLog.open(path, MAGIC)
    assert replayed == [b"kept", b"after"]
    log.close()


def test_rewrite_replaces_the_content_after_earlier_appends(tmp_path: Path) -> None:
    path = tmp_path / "r.log"

    async def run() -> None:
        log, _ = RecordLog.open(path, MAGIC)
        # submitted in this order (gather starts them in turn): the rewrite comes after
        await asyncio.gather(log.append([b"old"]), log.rewrite([b"new"]))
        await log.append([b"next"])
        log.close()

    asyncio.run(run())
    log, replayed = RecordLog.open(path, MAGIC)
    assert replayed == [b"new", b"next"]
    log.close()


def test_keyed_log_keeps_the_latest_value_per_key(tmp_path: Path) -> None:
    path = tmp_path / "k.log"

    async def run() -> None:
        log = KeyedLog.open(path, MAGIC)
        await log.put("a", b"1")
        await log.put("b", b"2")
        await log.put("a", b"3")
        await log.put("b", None)
        log.close()

    asyncio.run(run())
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x09garbage")
    reopened = KeyedLog.open(path, MAGIC)
    assert reopened.items() == {"a": b"3"}
    reopened.close()


def test_keyed_log_compacts_once_mostly_superseded(tmp_path: Path) -> None:
    path = tmp_path / "k.log"

    async def run() -> int:
        log = KeyedLog.open(path, MAGIC, compact_min_bytes=4096)
        for i in range(1000):
            await log.put(f"k{i % 3}", str(i).encode())
        size = path.stat().st_size
        log.close()
        return size

    size = asyncio.run(run())
    assert size < 4096 * 2  # 1000 records of ~12 bytes would be ~20 kB
    reopened = KeyedLog.open(path, MAGIC)
    assert reopened.items() == {"k0": b"999", "k1": b"997", "k2": b"998"}
    reopened.close()


def test_record_files_are_replaced_whole_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "state"
    assert read_record_file(path, MAGIC) is None
    write_record_file(path, MAGIC, b"one")
    write_record_file(path, MAGIC, b"two")
    assert read_record_file(path, MAGIC) == b"two"
    assert not (tmp_path / "state.tmp").exists()
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CorruptStoreError):
        read_record_file(path, MAGIC)


def test_a_failed_replace_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state"
    write_record_file(path, MAGIC, b"old")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError):
        write_record_file(path, MAGIC, b"new")
    monkeypatch.undo()
    assert read_record_file(path, MAGIC) == b"old"
    assert not (tmp_path / "state.tmp").exists()


def test_without_fsync_appends_are_synced_by_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--fsync interval``: the log writes without an fsync; ``sync`` (the interval flush)
    fsyncs the file after everything appended before it, and a failed fsync is reported."""
    path = tmp_path / "r.log"
    real_fsync = os.fsync
    synced: list[int] = []

    def watched(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    def disk_error(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async def run() -> None:
        log, _ = RecordLog.open(path, MAGIC, fsync=False)
        monkeypatch.setattr(os, "fsync", watched)
        await log.append([b"one"])
        await log.append([b"two"])
        assert synced == [] and log.synced_size < log.size
        await log.sync()
        assert synced == [path.stat().st_ino] and log.synced_size == log.size
        await log.append([b"three"])
        monkeypatch.setattr(os, "fsync", disk_error)
        with pytest.raises(StorageError, match="Input/output error"):
            await log.sync()
        assert log.synced_size < log.size
        monkeypatch.setattr(os, "fsync", watched)
        log.close()  # a clean stop syncs what is left
        assert len(synced) == 2

    asyncio.run(run())
    log, replayed = RecordLog.open(path, MAGIC)
    assert replayed == [b"one", b"two", b"three"]
    log.close()


def test_a_worker_thread_may_append_in_place_in_order_with_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``append_here`` (the log writer's EndTxn job) writes on the calling thread, between
    the event loop's appends, with no hand-off; a failed write keeps nothing of itself."""
    path = tmp_path / "r.log"
    real_write = os.write

    def disk_full(fd: int, data: Any) -> int:
        if bytes(data).endswith(b"lost"):
            real_write(fd, bytes(data)[:5])  # a torn write, then the error
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    async def run() -> None:
        log, _ = RecordLog.open(path, MAGIC, fsync=False)
        await log.append([b"loop 1"])
        await asyncio.to_thread(log.append_here, [b"worker 1", b"worker 2"])
        await log.append([b"loop 2"])
        monkeypatch.setattr(os, "write", disk_full)
        with pytest.raises(StorageError, match="No space left"):
            await asyncio.to_thread(log.append_here, [b"lost"])
        monkeypatch.undo()
        await asyncio.to_thread(log.append_here, [b"worker 3"])
        log.close()

    asyncio.run(run())
    log, replayed = RecordLog.open(path, MAGIC)
    assert replayed == [b"loop 1", b"worker 1", b"worker 2", b"loop 2", b"worker 3"]
    log.close()
