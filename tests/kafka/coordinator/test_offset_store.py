"""Committed offsets on a real file: durable across reopen, torn tails, compaction."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from streamsource.errors import CorruptStoreError
from streamsource.kafka.coordinator.errors import CoordinatorStorageError
from streamsource.kafka.coordinator.offsets import (
    MAX_METADATA_CHARS,
    CommittedOffset,
    OffsetCommit,
    OffsetStore,
)
from streamsource.kafka.protocol.errors import ErrorCode


def test_commit_fetch_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"
    with OffsetStore(path) as store:
        codes = store.commit(
            "g",
            [
                OffsetCommit("t", 0, 10, 3, "meta", 1000),
                OffsetCommit("t", 1, 20),
                OffsetCommit("u", 0, 5),
            ],
        )
        assert codes == [ErrorCode.NONE] * 3
        store.commit("g", [OffsetCommit("t", 0, 11, 3, None, 2000)])
        store.commit("h", [OffsetCommit("t", 0, 1)])
        assert store.get("g", "t", 0) == CommittedOffset(11, 3, None, 2000)
        assert store.get("g", "t", 7) is None

    with OffsetStore(path) as store:
        assert store.fetch("g") == {
            ("t", 0): CommittedOffset(11, 3, None, 2000),
            ("t", 1): CommittedOffset(20, -1, None, -1),
            ("u", 0): CommittedOffset(5, -1, None, -1),
        }
        assert set(store.fetch("g", "t")) == {("t", 0), ("t", 1)}
        assert store.fetch("g", "t", 1) == {("t", 1): CommittedOffset(20, -1, None, -1)}
        assert sorted(store.groups()) == ["g", "h"]
        assert store.fetch("nobody") == {}


def test_delete_group_and_topic_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"
    with OffsetStore(path) as store:
        store.commit("g", [OffsetCommit("t", 0, 1), OffsetCommit("gone", 0, 2)])
        store.commit("h", [OffsetCommit("gone", 3, 4)])
        store.commit("x", [OffsetCommit("t", 0, 9)])
        assert store.delete_group("x") is True
        assert store.delete_group("x") is False
        store.delete_topic("gone")
    with OffsetStore(path) as store:
        assert store.groups() == ["g"]
        assert store.fetch("g") == {("t", 0): CommittedOffset(1, -1, None, -1)}


def test_oversized_metadata_is_refused_per_partition(tmp_path: Path) -> None:
    with OffsetStore(tmp_path / "o") as store:
        codes = store.commit(
            "g",
            [
                OffsetCommit("t", 0, 1, metadata="x" * (MAX_METADATA_CHARS + 1)),
                OffsetCommit("t", 1, 2),
            ],
        )
        assert codes == [ErrorCode.OFFSET_METADATA_TOO_LARGE, ErrorCode.NONE]
        assert list(store.fetch("g")) == [("t", 1)]


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_tail_is_ignored_and_cut(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "offsets.log"
    with OffsetStore(path) as store:
        store.commit("g", [OffsetCommit("t", 0, 1)])
        good_size = store.file_size
        store.commit("g", [OffsetCommit("t", 0, 2), OffsetCommit("t", 1, 2)])
    data = path.read_bytes()
    path.write_bytes(data[: good_size + cut])  # the second commit was being written
    with OffsetStore(path) as store:
        assert store.fetch("g") == {("t", 0): CommittedOffset(1, -1, None, -1)}  # all or nothing
        assert path.stat().st_size == good_size
        store.commit("g", [OffsetCommit("t", 0, 3)])
    with OffsetStore(path) as store:
        assert store.get("g", "t", 0) == CommittedOffset(3, -1, None, -1)


def test_corrupt_record_is_treated_as_the_end(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"
    with OffsetStore(path) as store:
        store.commit("g", [OffsetCommit("t", 0, 1)])
        good_size = store.file_size
        store.commit("g", [OffsetCommit("t", 0, 2)])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # bad CRC
    path.write_bytes(bytes(data))
    with OffsetStore(path) as store:
        assert store.get("g", "t", 0) == CommittedOffset(1, -1, None, -1)
        assert store.file_size == good_size


@pytest.mark.parametrize("left", [b"", b"SSOF"])
def test_file_torn_while_being_created_starts_empty(tmp_path: Path, left: bytes) -> None:
    path = tmp_path / "offsets.log"
    path.write_bytes(left)
    with OffsetStore(path) as store:
        assert store.groups() == []
        store.commit("g", [OffsetCommit("t", 0, 1)])
    with OffsetStore(path) as store:
        assert store.get("g", "t", 0) == CommittedOffset(1, -1, None, -1)


def test_not_an_offsets_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"
    path.write_bytes(b"hello world, not offsets")
    with pytest.raises(CorruptStoreError):
        OffsetStore(path)


def test_compaction_keeps_live_offsets_and_shrinks_file(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"
    with OffsetStore(path, compact_min_bytes=1 << 30) as store:
        for i in range(500):
            store.commit("g", [OffsetCommit("t", p, i, metadata="m") for p in range(4)])
        store.commit("other", [OffsetCommit("t", 0, 7)])
        big = store.file_size
    # reopening with a threshold the file exceeds compacts it
    with OffsetStore(path, compact_min_bytes=1024) as store:
        assert store.file_size < big / 100
        assert path.stat().st_size == store.file_size
        assert store.fetch("g") == {("t", p): CommittedOffset(499, -1, "m", -1) for p in range(4)}
        # compaction also happens while running, and appends continue on the new file
        for i in range(500, 1000):
            store.commit("g", [OffsetCommit("t", 0, i)])
        assert store.file_size < big / 10
    with OffsetStore(path) as store:
        assert store.get("g", "t", 0) == CommittedOffset(999, -1, None, -1)
        assert store.get("other", "t", 0) == CommittedOffset(7, -1, None, -1)
        assert not (tmp_path / "offsets.log.compact").exists()


def test_failed_write_commits_nothing_and_later_commits_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "offsets.log"
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with OffsetStore(path) as store:
        store.commit("g", [OffsetCommit("t", 0, 1)])
        monkeypatch.setattr(os, "fsync", disk_full)
        with pytest.raises(CoordinatorStorageError) as caught:
            store.commit("g", [OffsetCommit("t", 0, 2)])
        assert caught.value.error_code == ErrorCode.KAFKA_STORAGE_ERROR
        assert store.get("g", "t", 0) == CommittedOffset(1, -1, None, -1)
        monkeypatch.setattr(os, "fsync", real_fsync)
        store.commit("g", [OffsetCommit("t", 0, 3)])
    with OffsetStore(path) as store:
        assert store.get("g", "t", 0) == CommittedOffset(3, -1, None, -1)
