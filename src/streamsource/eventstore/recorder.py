"""The interface every event-store backend implements (memory, SQLite, PostgreSQL).

A recorder is deliberately thin: the :class:`~streamsource.eventstore.store.EventStore`
facade validates arguments, encodes data to JSON bytes and applies stream metadata and
time travel; a recorder stores and returns *encoded* records and enforces the invariants
that need the database's atomicity:

* ``append`` is atomic (all records or none), checks the expected version, and is
  idempotent: if every record id of the call is already stored, in that stream, with the
  same type/data/metadata, in the same order and consecutively, it returns the original
  :class:`AppendResult` and writes nothing. Any other reuse of a stored id raises
  :class:`~streamsource.errors.DuplicateEventId`. Appending to a hard-deleted stream raises
  :class:`~streamsource.errors.StreamDeleted`.
* versions in a stream start at 0 and have no gaps; global positions are positive, strictly
  increase in commit order (a reader that has seen P never later sees a new record below P)
  and may have gaps.
* reads are lazy: a backend pages through the database, never materialising a whole log.
* events leave the log only through ``remove_events`` (scavenging), never by any other write.

A recorder also says what it can do beyond events: ``backend`` names it (``"memory"``,
``"sqlite"``, ``"postgresql"``), and ``database`` hands out the SQL database the events live
in (:mod:`streamsource.eventstore.database`), or is ``None`` when there is none (memory).
Components that keep tables beside the events use only that, never a backend's internals.
Likewise ``wakeups`` (:class:`Wakeups`) says how subscribers learn of new appends, and
``closed`` whether the recorder was closed: the subscription machinery uses only these.

The reference implementation is :mod:`streamsource.eventstore.backends.memory`; the suite in
``tests/conformance`` runs against every backend through both the sync and async APIs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from streamsource.eventstore.events import AppendResult, ExpectedVersion

if TYPE_CHECKING:
    from streamsource.eventstore.database import AsyncDatabase, Database


# The record types are msgspec Structs: built once per event on every append and read, and a
# Struct's constructor is several times cheaper than a frozen dataclass's. They hold only
# bytes, str, int, UUID and datetime, so they cannot be part of a reference cycle: gc=False.
class EventRecord(msgspec.Struct, frozen=True, gc=False):
    """An event ready to store: validated, with data and metadata encoded as JSON bytes."""

    id: uuid.UUID
    type: str
    data: bytes
    metadata: bytes


class StoredRecord(msgspec.Struct, frozen=True, gc=False):
    """A stored event as a recorder returns it (data and metadata still encoded)."""

    id: uuid.UUID
    stream: str
    version: int
    position: int
    type: str
    data: bytes
    metadata: bytes
    recorded_at: datetime  # timezone-aware UTC, never decreasing within a stream


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a recorder knows of one stream."""

    stream: str
    version: int | None  # last version written; None if no event was ever written
    hard_deleted: bool
    metadata: bytes | None  # encoded StreamMetadata set with set_stream_metadata, if any


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A snapshot of an aggregate's state at ``version`` of ``stream``, stored apart from events."""

    stream: str
    version: int
    type: str
    state: bytes
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ReadAllFilter:
    """Optional narrowing of ``read_all``: streams of one category and/or some event types."""

    category: str | None = None
    types: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Listen:
    """A PostgreSQL store whose appends, from any process, each send ``NOTIFY channel,
    'payload'`` after they commit (coalesced: one NOTIFY may stand for several appends)."""

    conninfo: str  # libpq connection string of the database, for a LISTEN session
    channel: str  # a plain SQL name
    payload: str  # the payload that names this store (others share the channel)


@dataclass(frozen=True, slots=True)
class Wakeups:
    """How a store's subscribers learn that new events may be there, as its recorder declares
    it (see :mod:`streamsource.eventstore.subscriptions.wakeups`). A new backend plugs into
    subscriptions by declaring this; nothing looks at its class, attributes or URL instead."""

    key: Hashable
    """The store within this process: equal for every recorder on the same store (the same
    SQLite file, the same PostgreSQL database and schema), different for any other store.
    An append through one recorder wakes subscribers of all recorders with the same key."""

    only_this_process: bool = False
    """Every append to the store is made through a recorder in this process (memory), so the
    in-process signal sees them all and subscribers poll only as a safety net."""

    listen: Listen | None = None
    """Where to LISTEN for the NOTIFY each append sends (PostgreSQL); None: no such thing."""


@runtime_checkable
class Recorder(Protocol):
    """The synchronous backend interface."""

    @property
    def backend(self) -> str:
        """The backend's name, as messages show it."""
        ...

    @property
    def database(self) -> Database | None:
        """The SQL database the events live in; None if the backend has none."""
        ...

    @property
    def wakeups(self) -> Wakeups:
        """How subscribers of this store learn of new appends."""
        ...

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        ...

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult: ...

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,  # None: the start (or the end when backwards)
        to_version: int | None = None,  # inclusive bound in the direction of reading
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredRecord]: ...

    def read_all(
        self,
        *,
        from_position: int | None = None,  # inclusive; None: the start (or end if backwards)
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> Iterator[StoredRecord]: ...

    def stream_info(self, stream: str) -> StreamInfo: ...

    def set_stream_metadata(self, stream: str, metadata: bytes) -> None: ...

    def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool:
        """Store ``metadata`` only if the stream is not tombstoned, its last version is still
        ``version`` and its metadata still ``previous``, checked atomically with the write;
        False, with nothing written, if any of them changed (a compare-and-set)."""
        ...

    def remove_events(
        self,
        stream: str,
        before_version: int,
        *,
        hard_deleted: bool,
        metadata: bytes | None,
        limit: int,
    ) -> int:
        """Remove up to ``limit`` of the stream's oldest events below ``before_version``, in
        one atomic step, and return how many went (0 when none is left to remove).

        Nothing is removed unless the stream's tombstone and metadata are still
        ``hard_deleted`` and ``metadata`` (checked atomically with the removal). A live
        stream's last event (it carries the version appends continue from) and the newest
        event of the whole log (so positions are never reused) are never removed; every
        other event keeps its position. Used by scavenging.
        """
        ...

    def reclaim_space(self, *, vacuum: bool = False) -> None:
        """Give the space of removed events back where the backend reasonably can (after a
        scavenge); ``vacuum`` allows a slower, blocking compaction. May do nothing."""
        ...

    def hard_delete(self, stream: str, expected: ExpectedVersion) -> None:
        """Tombstone the stream: its events stay in the log, every later append fails."""
        ...

    def list_streams(self, after: str = "") -> Iterator[StreamInfo]:
        """Every stream named after ``after`` (keyset paging), in name order."""
        ...

    def head_position(self) -> int:
        """The last committed global position, 0 when the store is empty."""
        ...

    def save_snapshot(self, snapshot: SnapshotRecord) -> None: ...

    def load_snapshot(self, stream: str, max_version: int | None = None) -> SnapshotRecord | None:
        """The newest snapshot of ``stream`` whose version is <= ``max_version``."""
        ...

    def stats(self) -> dict[str, int | str]: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncRecorder(Protocol):
    """The asyncio backend interface: the same operations and semantics as :class:`Recorder`."""

    @property
    def backend(self) -> str: ...

    @property
    def database(self) -> AsyncDatabase | None: ...

    @property
    def wakeups(self) -> Wakeups: ...

    @property
    def closed(self) -> bool: ...

    async def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult: ...

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[StoredRecord]: ...

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> AsyncIterator[StoredRecord]: ...

    async def stream_info(self, stream: str) -> StreamInfo: ...

    async def set_stream_metadata(self, stream: str, metadata: bytes) -> None: ...

    async def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool: ...

    async def remove_events(
        self,
        stream: str,
        before_version: int,
        *,
        hard_deleted: bool,
        metadata: bytes | None,
        limit: int,
    ) -> int: ...

    async def reclaim_space(self, *, vacuum: bool = False) -> None: ...

    async def hard_delete(self, stream: str, expected: ExpectedVersion) -> None: ...

    def list_streams(self, after: str = "") -> AsyncIterator[StreamInfo]: ...

    async def head_position(self) -> int: ...

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None: ...

    async def load_snapshot(
        self, stream: str, max_version: int | None = None
    ) -> SnapshotRecord | None: ...

    async def stats(self) -> dict[str, int | str]: ...

    async def close(self) -> None: ...
