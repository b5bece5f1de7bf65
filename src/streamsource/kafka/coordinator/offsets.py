"""Durable committed offsets: (group, topic, partition) -> offset, epoch, metadata, time.

One append-only file. Each OffsetCommit call appends ONE record (so a commit is all or
nothing) and fsyncs once before returning. A record is::

    length uint32 | crc32c(payload) uint32 | payload (msgpack)

Opening replays the file; the first record that is short, oversized, fails its CRC or does
not decode marks a torn tail, which is cut off (a crash during an append leaves exactly
that). When more than half of what the file holds is superseded, the live offsets are
written to a new file that atomically replaces the old one.

Not thread-safe: the broker calls it from one thread at a time.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import crc32c
import msgspec

from streamsource.errors import CorruptStoreError
from streamsource.kafka.coordinator.errors import CoordinatorStorageError
from streamsource.kafka.protocol.errors import ErrorCode

MAGIC = b"SSOFFS01"
MAX_METADATA_CHARS = 4096  # Kafka's offset.metadata.max.bytes default
MAX_RECORD_BYTES = 64 * 1024 * 1024  # a record claiming more is a torn or corrupt tail
_RECORD_HEADER = struct.Struct(">II")

TopicPartition = tuple[str, int]


class OffsetCommit(NamedTuple):
    """One partition's offset in an OffsetCommit request."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = None
    commit_timestamp: int = -1


class CommittedOffset(NamedTuple):
    """What OffsetFetch answers for a partition."""

    offset: int
    leader_epoch: int
    metadata: str | None
    commit_timestamp: int


# -- on-disk records (msgpack arrays, tagged by kind) ------------------------------------


class _Entry(msgspec.Struct, array_like=True):
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_timestamp: int


class _Commit(msgspec.Struct, array_like=True, tag=1):
    group: str
    entries: list[_Entry]


class _DeleteGroup(msgspec.Struct, array_like=True, tag=2):
    group: str


class _DeleteTopic(msgspec.Struct, array_like=True, tag=3):
    topic: str


_Record = _Commit | _DeleteGroup | _DeleteTopic
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Record)


def _frame(record: _Record) -> bytes:
    payload = _encoder.encode(record)
    return _RECORD_HEADER.pack(len(payload), crc32c.crc32c(payload)) + payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OffsetStore:
    """Committed offsets of every group, kept in memory and in one durable file."""

    def __init__(self, path: Path, *, fsync: bool = True, compact_min_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._compact_min_bytes = compact_min_bytes
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._live = 0  # entries currently held
        self._written = 0  # entries the file holds, superseded ones included
        self._size = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self._is_unfinished_new_file():
            self._write_new_file(self.path, [])
        self._replay()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for appends until close()
        self._maybe_compact()

    # -- reading the file -------------------------------------------------------------------

    def _is_unfinished_new_file(self) -> bool:
        """A crash while the file was first created can leave part of the magic only."""
        size = self.path.stat().st_size
        return size < len(MAGIC) and MAGIC.startswith(self.path.read_bytes())

    def _replay(self) -> None:
        data = self.path.read_bytes()
        if data[: len(MAGIC)] != MAGIC:
            raise CorruptStoreError(f"{self.path} is not a streamsource offsets file")
        pos = len(MAGIC)
        while pos < len(data):
            record = self._read_record(data, pos)
            if record is None:
                break  # torn tail
            payload_len, decoded = record
            self._apply(decoded)
            pos += _RECORD_HEADER.size + payload_len
        if pos < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(pos)
                if self._fsync:
                    os.fsync(f.fileno())
        self._size = pos

    @staticmethod
    def _read_record(data: bytes, pos: int) -> tuple[int, _Record] | None:
        if len(data) - pos < _RECORD_HEADER.size:
            return None
        length, crc = _RECORD_HEADER.unpack_from(data, pos)
        start = pos + _RECORD_HEADER.size
        if length > MAX_RECORD_BYTES or start + length > len(data):
            return None
        payload = data[start : start + length]
        if crc32c.crc32c(payload) != crc:
            return None
        try:
            return length, _decoder.decode(payload)
        except msgspec.DecodeError:
            return None

    def _apply(self, record: _Record) -> None:
        if isinstance(record, _Commit):
            offsets = self._offsets.setdefault(record.group, {})
            for e in record.entries:
                key = (e.topic, e.partition)
                if key not in offsets:
                    self._live += 1
                offsets[key] = CommittedOffset(
                    e.offset, e.leader_epoch, e.metadata, e.commit_timestamp
                )
                self._written += 1
        elif isinstance(record, _DeleteGroup):
            self._live -= len(self._offsets.pop(record.group, {}))
        else:
            for offsets in self._offsets.values():
                gone = [key for key in offsets if key[0] == record.topic]
                for key in gone:
                    del offsets[key]
                self._live -= len(gone)
            self._offsets = {g: o for g, o in self._offsets.items() if o}

    # -- writing ----------------------------------------------------------------------------

    def _append(self, record: _Record) -> None:
        frame = _frame(record)
        try:
            self._file.write(frame)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            self._undo_partial_write()
            raise CoordinatorStorageError(f"{self.path}: cannot store offsets: {exc}") from exc
        self._size += len(frame)
        self._apply(record)
        self._maybe_compact()

    def _undo_partial_write(self) -> None:
        # a half-written record would hide every later one on replay: cut it off now
        try:
            self._file.close()
            with open(self.path, "r+b") as f:
                f.truncate(self._size)
        except OSError:
            pass  # replay on the next open cuts a torn tail anyway
        self._file = open(self.path, "ab")  # noqa: SIM115

    def commit(self, group: str, entries: Iterable[OffsetCommit]) -> list[ErrorCode]:
        """Store the offsets durably (one fsync); returns an error code per entry.

        An entry whose metadata is longer than ``MAX_METADATA_CHARS`` is refused with
        OFFSET_METADATA_TOO_LARGE; the others are stored. Raises ``CoordinatorStorageError``
        when the file cannot be written (nothing is committed then).
        """
        codes: list[ErrorCode] = []
        accepted: list[_Entry] = []
        for e in entries:
            if e.metadata is not None and len(e.metadata) > MAX_METADATA_CHARS:
                codes.append(ErrorCode.OFFSET_METADATA_TOO_LARGE)
                continue
            codes.append(ErrorCode.NONE)
            accepted.append(
                _Entry(
                    e.topic, e.partition, e.offset, e.leader_epoch, e.metadata, e.commit_timestamp
                )
            )
        if accepted:
            self._append(_Commit(group, accepted))
        return codes

    def delete_group(self, group: str) -> bool:
        """Forget a group's offsets (DeleteGroups); False if it had none."""
        if group not in self._offsets:
            return False
        self._append(_DeleteGroup(group))
        return True

    def delete_topic(self, topic: str) -> None:
        """Forget every group's offsets for a deleted topic."""
        if any(key[0] == topic for offsets in self._offsets.values() for key in offsets):
            self._append(_DeleteTopic(topic))

    # -- queries ----------------------------------------------------------------------------

    def fetch(
        self, group: str, topic: str | None = None, partition: int | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        """The group's committed offsets, optionally for one topic or one partition."""
        offsets = self._offsets.get(group, {})
        if topic is None:
            return dict(offsets)
        return {
            key: value
            for key, value in offsets.items()
            if key[0] == topic and (partition is None or key[1] == partition)
        }

    def get(self, group: str, topic: str, partition: int) -> CommittedOffset | None:
        """One partition's committed offset, or None (OffsetFetch then answers -1)."""
        return self._offsets.get(group, {}).get((topic, partition))

    def groups(self) -> list[str]:
        """Every group that has committed offsets."""
        return list(self._offsets)

    # -- compaction and lifecycle -----------------------------------------------------------

    def _maybe_compact(self) -> None:
        if self._size >= self._compact_min_bytes and self._written > 2 * self._live:
            self.compact()

    def compact(self) -> None:
        """Rewrite the file with only the live offsets, replacing it atomically."""
        records = [
            _Commit(
                group,
                [
                    _Entry(t, p, c.offset, c.leader_epoch, c.metadata, c.commit_timestamp)
                    for (t, p), c in offsets.items()
                ],
            )
            for group, offsets in self._offsets.items()
        ]
        tmp = self.path.with_name(self.path.name + ".compact")
        self._size = self._write_new_file(tmp, records)
        self._file.close()
        os.replace(tmp, self.path)
        if self._fsync:
            _fsync_dir(self.path.parent)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._written = self._live

    def _write_new_file(self, path: Path, records: list[_Commit]) -> int:
        data = MAGIC + b"".join(_frame(r) for r in records)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        if self._fsync:
            _fsync_dir(path.parent)
        return len(data)

    @property
    def file_size(self) -> int:
        """Bytes the file holds (for monitoring and tests of compaction)."""
        return self._size

    def close(self) -> None:
        """Close the file; everything committed is already on disk."""
        self._file.close()

    def __enter__(self) -> OffsetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
