"""Committed offsets: (group, topic, partition) -> offset, epoch, metadata, time (sans-I/O).

``OffsetTable`` holds the offsets in memory and turns each change into a ``Change``: the
record the broker makes durable (``Change.payload``, for ``kafka.storage.RecordLog``)
before it calls ``apply``. Replaying the payloads in order rebuilds the table, so one
OffsetCommit is one record: all of it survives a crash, or none of it. ``live_records``
is what a compacted file holds instead of the whole history.

A payload is a msgpack array tagged by kind: a commit (a group's entries), the deletion
of a group, the deletion of a topic, the deletion of some of a group's offsets (expiry),
a group's membership (``group_snapshots``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from streamsource.errors import CorruptStoreError
from streamsource.kafka.protocol.errors import ErrorCode

MAX_METADATA_CHARS = 4096  # Kafka's offset.metadata.max.bytes default

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


class _DeleteOffsets(msgspec.Struct, array_like=True, tag=4):
    group: str
    partitions: list[tuple[str, int]]


class _GroupMetadata(msgspec.Struct, array_like=True, tag=5):
    """A group's membership (``group_snapshots`` bytes, opaque here); None: none any more.

    Kept beside the offsets as Kafka keeps both in __consumer_offsets: one file, one
    format, one compaction."""

    group: str
    snapshot: bytes | None


_Record = _Commit | _DeleteGroup | _DeleteTopic | _DeleteOffsets | _GroupMetadata
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Record)


class Change:
    """A change to the table: make ``payload`` durable, then ``OffsetTable.apply`` it."""

    __slots__ = ("payload", "record")

    def __init__(self, record: _Record) -> None:
        self.record = record
        self.payload = _encoder.encode(record)


class OffsetTable:
    """Committed offsets of every group, in memory."""

    def __init__(self) -> None:
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._metadata: dict[str, bytes] = {}  # group -> its recorded membership
        self._live = 0  # entries held
        self._written = 0  # entries the records so far hold, superseded ones included

    @classmethod
    def replay(cls, payloads: Iterable[bytes]) -> OffsetTable:
        """The table the payloads (in file order) describe.

        Raises ``CorruptStoreError`` for a payload that passed its checksum yet does not
        decode (a file from another version): guessing could move a group backwards.
        """
        table = cls()
        for payload in payloads:
            try:
                record = _decoder.decode(payload)
            except msgspec.DecodeError as exc:
                raise CorruptStoreError(f"an offsets record does not decode: {exc}") from exc
            table._apply(record)
        return table

    # -- changes ----------------------------------------------------------------------------

    def commit(
        self, group: str, entries: Iterable[OffsetCommit]
    ) -> tuple[list[ErrorCode], Change | None]:
        """An error code per entry, and the change storing the accepted ones (None if none).

        An entry whose metadata is longer than ``MAX_METADATA_CHARS`` is refused with
        OFFSET_METADATA_TOO_LARGE; the others are stored.
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
        return codes, Change(_Commit(group, accepted)) if accepted else None

    def delete_group(self, group: str) -> Change | None:
        """The change forgetting a group's offsets (DeleteGroups); None if it has none."""
        return Change(_DeleteGroup(group)) if group in self._offsets else None

    def delete_offsets(self, group: str, partitions: Iterable[TopicPartition]) -> Change | None:
        """The change forgetting some of a group's offsets (expiry); None if it has none of
        them. A group left without offsets is forgotten."""
        held = self._offsets.get(group, {})
        gone = [tp for tp in partitions if tp in held]
        return Change(_DeleteOffsets(group, gone)) if gone else None

    def put_group_metadata(self, group: str, snapshot: bytes | None) -> Change:
        """The change recording a group's membership (None: it has none any more).

        Always a change, even one that looks redundant: earlier changes may still be on
        their way to disk, and the caller knows what it last asked for."""
        return Change(_GroupMetadata(group, snapshot))

    def delete_topic(self, topic: str) -> Change | None:
        """The change forgetting every group's offsets of a deleted topic; None if none."""
        if any(key[0] == topic for offsets in self._offsets.values() for key in offsets):
            return Change(_DeleteTopic(topic))
        return None

    def apply(self, change: Change) -> None:
        """Take a change into the table (once its payload is durable)."""
        self._apply(change.record)

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
        elif isinstance(record, _GroupMetadata):
            self._written += 1
            had = self._metadata.pop(record.group, None) is not None
            if record.snapshot is not None:
                self._metadata[record.group] = record.snapshot
            self._live += (record.snapshot is not None) - had
        elif isinstance(record, _DeleteGroup):
            self._live -= len(self._offsets.pop(record.group, {}))
        elif isinstance(record, _DeleteOffsets):
            offsets = self._offsets.get(record.group, {})
            for topic, partition in record.partitions:
                if offsets.pop((topic, partition), None) is not None:
                    self._live -= 1
            if not offsets:
                self._offsets.pop(record.group, None)
        else:
            for offsets in self._offsets.values():
                gone = [key for key in offsets if key[0] == record.topic]
                for key in gone:
                    del offsets[key]
                self._live -= len(gone)
            self._offsets = {g: o for g, o in self._offsets.items() if o}

    # -- compaction -------------------------------------------------------------------------

    @property
    def mostly_superseded(self) -> bool:
        """Whether more than half of the entries written so far are superseded."""
        return self._written > 2 * self._live

    def live_records(self) -> list[bytes]:
        """Payloads holding exactly the live offsets (what a compacted file contains)."""
        self._written = self._live
        return [
            _encoder.encode(
                _Commit(
                    group,
                    [
                        _Entry(t, p, c.offset, c.leader_epoch, c.metadata, c.commit_timestamp)
                        for (t, p), c in offsets.items()
                    ],
                )
            )
            for group, offsets in self._offsets.items()
        ] + [_encoder.encode(_GroupMetadata(g, data)) for g, data in self._metadata.items()]

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

    def group_metadata(self) -> dict[str, bytes]:
        """Every recorded group membership."""
        return dict(self._metadata)
