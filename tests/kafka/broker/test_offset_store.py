"""Committed offsets on a real file: durable across reopen, torn tails, compaction, a disk
that refuses writes, and fifty commits sharing one fsync."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streamsource.errors import CorruptStoreError
from streamsource.kafka.broker.offset_store import OffsetStore
from streamsource.kafka.coordinator.offsets import (
    MAX_METADATA_CHARS,
    CommittedOffset,
    OffsetCommit,
)
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.storage import StorageError

T = TypeVar("T")


def with_store(path: Path, use: Callable[[OffsetStore], Awaitable[T]], **options: Any) -> T:
    """Open the store on ``path``, run ``use`` in an event loop, close it (a restart each)."""

    async def run() -> T:
        store = OffsetStore.open(path, **options)
        try:
            return await use(store)
        finally:
            store.close()

    return asyncio.run(run())


def test_commit_fetch_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"

    async def commit(store: OffsetStore) -> None:
        codes = await store.commit(
            "g",
            [
                OffsetCommit("t", 0, 10, 3, "meta", 1000),
                OffsetCommit("t", 1, 20),
                OffsetCommit("u", 0, 5),
            ],
        )
        assert codes == [ErrorCode.NONE] * 3
        await store.commit("g", [OffsetCommit("t", 0, 11, 3, None, 2000)])
        await store.commit("h", [OffsetCommit("t", 0, 1)])
        assert store.get("g", "t", 0) == CommittedOffset(11, 3, None, 2000)
        assert store.get("g", "t", 7) is None

    async def check(store: OffsetStore) -> None:
        assert store.fetch("g") == {
            ("t", 0): CommittedOffset(11, 3, None, 2000),
            ("t", 1): CommittedOffset(20, -1, None, -1),
            ("u", 0): CommittedOffset(5, -1, None, -1),
        }
        assert set(store.fetch("g", "t")) == {("t", 0), ("t", 1)}
        assert store.fetch("g", "t", 1) == {("t", 1): CommittedOffset(20, -1, None, -1)}
        assert sorted(store.groups()) == ["g", "h"]
        assert store.fetch("nobody") == {}

    with_store(path, commit)
    with_store(path, check)


def test_delete_group_and_topic_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"

    async def change(store: OffsetStore) -> None:
        await store.commit("g", [OffsetCommit("t", 0, 1), OffsetCommit("gone", 0, 2)])
        await store.commit("h", [OffsetCommit("gone", 3, 4)])
        await store.commit("x", [OffsetCommit("t", 0, 9)])
        assert await store.delete_group("x") is True
        assert await store.delete_group("x") is False
        await store.delete_topic("gone")

    async def check(store: OffsetStore) -> None:
        assert store.groups() == ["g"]
        assert store.fetch("g") == {("t", 0): CommittedOffset(1, -1, None, -1)}

    with_store(path, change)
    with_store(path, check)


def test_oversized_metadata_is_refused_per_partition(tmp_path: Path) -> None:
    async def commit(store: OffsetStore) -> None:
        codes = await store.commit(
            "g",
            [
                OffsetCommit("t", 0, 1, metadata="x" * (MAX_METADATA_CHARS + 1)),
                OffsetCommit("t", 1, 2),
            ],
        )
        assert codes == [ErrorCode.OFFSET_METADATA_TOO_LARGE, ErrorCode.NONE]
        assert list(store.fetch("g")) == [("t", 1)]

    with_store(tmp_path / "o", commit)


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_tail_is_ignored_and_cut(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "offsets.log"

    async def two_commits(store: OffsetStore) -> int:
        await store.commit("g", [OffsetCommit("t", 0, 1)])
        good_size = store.file_size
        await store.commit("g", [OffsetCommit("t", 0, 2), OffsetCommit("t", 1, 2)])
        return good_size

    good_size = with_store(path, two_commits)
    path.write_bytes(path.read_bytes()[: good_size + cut])  # the second was being written

    async def after_crash(store: OffsetStore) -> None:
        assert store.fetch("g") == {("t", 0): CommittedOffset(1, -1, None, -1)}  # all or none
        assert path.stat().st_size == good_size
        await store.commit("g", [OffsetCommit("t", 0, 3)])

    async def check(store: OffsetStore) -> None:
        assert store.get("g", "t", 0) == CommittedOffset(3, -1, None, -1)

    with_store(path, after_crash)
    with_store(path, check)


def test_corrupt_record_is_treated_as_the_end(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"

    async def two_commits(store: OffsetStore) -> int:
        await store.commit("g", [OffsetCommit("t", 0, 1)])
        good_size = store.file_size
        await store.commit("g", [OffsetCommit("t", 0, 2)])
        return good_size

    good_size = with_store(path, two_commits)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # bad CRC
    path.write_bytes(bytes(data))

    async def check(store: OffsetStore) -> None:
        assert store.get("g", "t", 0) == CommittedOffset(1, -1, None, -1)
        assert store.file_size == good_size

    with_store(path, check)


@pytest.mark.parametrize("left", [b"", b"SSOF"])
def test_file_torn_while_being_created_starts_empty(tmp_path: Path, left: bytes) -> None:
    path = tmp_path / "offsets.log"
    path.write_bytes(left)

    async def first(store: OffsetStore) -> None:
        assert store.groups() == []
        await store.commit("g", [OffsetCommit("t", 0, 1)])

    async def check(store: OffsetStore) -> None:
        assert store.get("g", "t", 0) == CommittedOffset(1, -1, None, -1)

    with_store(path, first)
    with_store(path, check)


def test_not_an_offsets_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"
    path.write_bytes(b"hello world, not offsets")
    with pytest.raises(CorruptStoreError):
        OffsetStore.open(path)


def test_compaction_keeps_live_offsets_and_shrinks_file(tmp_path: Path) -> None:
    path = tmp_path / "offsets.log"

    async def fill(store: OffsetStore) -> int:
        for i in range(500):
            await store.commit("g", [OffsetCommit("t", p, i, metadata="m") for p in range(4)])
        await store.commit("other", [OffsetCommit("t", 0, 7)])
        return store.file_size

    big = with_store(path, fill, compact_min_bytes=1 << 30)

    async def compact(store: OffsetStore) -> None:
        # with a threshold the file exceeds, the next change compacts it
        await store.commit("g", [OffsetCommit("t", 0, 499, metadata="m")])
        assert store.file_size < big / 100
        assert path.stat().st_size == store.file_size
        assert store.fetch("g") == {("t", p): CommittedOffset(499, -1, "m", -1) for p in range(4)}
        # and again while running; appends continue on the new file
        for i in range(500, 1000):
            await store.commit("g", [OffsetCommit("t", 0, i)])
        assert store.file_size < big / 10

    async def check(store: OffsetStore) -> None:
        assert store.get("g", "t", 0) == CommittedOffset(999, -1, None, -1)
        assert store.get("other", "t", 0) == CommittedOffset(7, -1, None, -1)

    with_store(path, compact, compact_min_bytes=1024)
    with_store(path, check)
    assert not (tmp_path / "offsets.log.tmp").exists()


def test_failed_write_commits_nothing_and_later_commits_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "offsets.log"
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def commits(store: OffsetStore) -> None:
        await store.commit("g", [OffsetCommit("t", 0, 1)])
        monkeypatch.setattr(os, "fsync", disk_full)
        with pytest.raises(StorageError) as caught:
            await store.commit("g", [OffsetCommit("t", 0, 2)])
        assert caught.value.error_code == ErrorCode.KAFKA_STORAGE_ERROR
        assert caught.value.retriable
        assert store.get("g", "t", 0) == CommittedOffset(1, -1, None, -1)
        monkeypatch.setattr(os, "fsync", real_fsync)
        await store.commit("g", [OffsetCommit("t", 0, 3)])

    async def check(store: OffsetStore) -> None:
        assert store.get("g", "t", 0) == CommittedOffset(3, -1, None, -1)

    with_store(path, commits)
    with_store(path, check)


def test_concurrent_commits_share_fsyncs_and_keep_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "offsets.log"
    real_fsync = os.fsync
    fsyncs: list[int] = []

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    async def storm(store: OffsetStore) -> None:
        monkeypatch.setattr(os, "fsync", counting_fsync)
        await asyncio.gather(
            *(store.commit(f"g{i % 5}", [OffsetCommit("t", 0, i)]) for i in range(50))
        )
        monkeypatch.setattr(os, "fsync", real_fsync)
        # in submission order: each group holds the offset its last commit gave
        for g in range(5):
            assert store.get(f"g{g}", "t", 0) == CommittedOffset(45 + g, -1, None, -1)

    with_store(path, storm)
    assert 1 <= len(fsyncs) < 50  # the writer thread took commits queued meanwhile together

    async def check(store: OffsetStore) -> None:
        for g in range(5):
            assert store.get(f"g{g}", "t", 0) == CommittedOffset(45 + g, -1, None, -1)

    with_store(path, check)
