"""The reference backend: everything in process memory, nothing survives the process.

It implements the full :class:`~streamsource.eventstore.recorder.Recorder` contract and is
the yardstick the other backends are tested against. One lock makes every write atomic and
serialises them; readers copy a page of records under the lock and yield it outside, so a
slow reader never blocks writers and sees only committed records.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from streamsource.errors import DuplicateEventId, InterfaceError, StreamDeleted
from streamsource.eventstore.events import AppendResult, ExpectedVersion, category_of
from streamsource.eventstore.recorder import (
    EventRecord,
    ReadAllFilter,
    SnapshotRecord,
    StoredRecord,
    StreamInfo,
    Wakeups,
)
from streamsource.eventstore.validation import check_version_matches

PAGE_SIZE = 512
"""Records copied per lock acquisition while reading."""


class _Stream:
    __slots__ = ("events", "first", "hard_deleted", "metadata")

    def __init__(self) -> None:
        # index == version; scavenging removes a prefix, leaving None below ``first``
        self.events: list[StoredRecord | None] = []
        self.first = 0
        self.hard_deleted = False
        self.metadata: bytes | None = None


class MemoryRecorder:
    """A thread-safe in-memory :class:`~streamsource.eventstore.recorder.Recorder`."""

    backend = "memory"
    database = None
    """No SQL database: components keep their state in memory beside the recorder."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_time = datetime.min.replace(tzinfo=UTC)
        self._log: list[StoredRecord | None] = []  # index == position - 1; None: scavenged
        self._removed = 0
        self._streams: dict[str, _Stream] = {}
        self._ids: dict[uuid.UUID, StoredRecord] = {}
        self._snapshots: dict[str, dict[int, SnapshotRecord]] = {}
        self._closed = False
        self.wakeups = Wakeups(key=object(), only_this_process=True)
        """Its own store: only appends through this very recorder can wake its subscribers."""

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the memory store is closed")

    def _now(self) -> datetime:
        # recorded_at must never decrease, even if the wall clock steps back
        now = max(self._clock(), self._last_time)
        self._last_time = now
        return now

    # -- writing --------------------------------------------------------------------------

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        with self._lock:
            self._check_open()
            state = self._streams.get(stream)
            if state is not None and state.hard_deleted:
                raise StreamDeleted(stream)
            original = self._earlier_result(stream, records)
            if original is not None:
                return original
            actual = len(state.events) - 1 if state is not None and state.events else None
            check_version_matches(stream, expected, actual)
            if state is None:
                state = self._streams[stream] = _Stream()
            now = self._now()
            version = -1 if actual is None else actual
            for record in records:
                version += 1
                stored = StoredRecord(
                    record.id,
                    stream,
                    version,
                    len(self._log) + 1,
                    record.type,
                    record.data,
                    record.metadata,
                    now,
                )
                self._log.append(stored)
                state.events.append(stored)
                self._ids[record.id] = stored
            return AppendResult(stored.version, stored.position)

    def _earlier_result(self, stream: str, records: Sequence[EventRecord]) -> AppendResult | None:
        """The result of an earlier identical append, None if no id was stored, else raise."""
        found = [self._ids.get(record.id) for record in records]
        if all(stored is None for stored in found):
            return None
        previous: StoredRecord | None = None
        for record, stored in zip(records, found, strict=True):
            if stored is None:
                raise DuplicateEventId(
                    next(r.id for r, s in zip(records, found, strict=True) if s is not None),
                    "an event already stored, while other ids of this append are new",
                )
            if stored.stream != stream:
                raise DuplicateEventId(
                    record.id, f"version {stored.version} of another stream, {stored.stream!r}"
                )
            if (stored.type, stored.data, stored.metadata) != (
                record.type,
                record.data,
                record.metadata,
            ):
                raise DuplicateEventId(
                    record.id, f"a different event at version {stored.version} of {stream!r}"
                )
            if previous is not None and stored.version != previous.version + 1:
                raise DuplicateEventId(
                    record.id, f"version {stored.version} of {stream!r}, not in this order"
                )
            previous = stored
        assert previous is not None
        return AppendResult(previous.version, previous.position)

    def set_stream_metadata(self, stream: str, metadata: bytes) -> None:
        with self._lock:
            self._check_open()
            state = self._streams.get(stream)
            if state is not None and state.hard_deleted:
                raise StreamDeleted(stream)
            if state is None:
                state = self._streams[stream] = _Stream()
            state.metadata = metadata

    def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool:
        with self._lock:
            self._check_open()
            state = self._streams.get(stream)
            if state is None or state.hard_deleted or state.metadata != previous:
                return False
            if (len(state.events) - 1 if state.events else None) != version:
                return False
            state.metadata = metadata
            return True

    def remove_events(
        self,
        stream: str,
        before_version: int,
        *,
        hard_deleted: bool,
        metadata: bytes | None,
        limit: int,
    ) -> int:
        with self._lock:
            self._check_open()
            state = self._streams.get(stream)
            if state is None or (state.hard_deleted, state.metadata) != (hard_deleted, metadata):
                return 0
            stop = min(before_version, len(state.events) if hard_deleted else len(state.events) - 1)
            stop = min(stop, state.first + limit)
            removed = 0
            for version in range(state.first, max(stop, state.first)):
                record = state.events[version]
                assert record is not None
                if record.position == len(self._log):
                    break  # the newest event of the log stays: positions are never reused
                state.events[version] = None
                self._log[record.position - 1] = None
                del self._ids[record.id]
                removed += 1
            state.first += removed
            self._removed += removed
            return removed

    def reclaim_space(self, *, vacuum: bool = False) -> None:
        """Nothing to do: removed records are already garbage for Python to collect."""
        with self._lock:
            self._check_open()

    def hard_delete(self, stream: str, expected: ExpectedVersion) -> None:
        with self._lock:
            self._check_open()
            state = self._streams.get(stream)
            if state is not None and state.hard_deleted:
                raise StreamDeleted(stream)
            actual = len(state.events) - 1 if state is not None and state.events else None
            check_version_matches(stream, expected, actual)
            if state is None:
                state = self._streams[stream] = _Stream()
            state.hard_deleted = True

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        with self._lock:
            self._check_open()
            self._snapshots.setdefault(snapshot.stream, {})[snapshot.version] = snapshot

    # -- reading --------------------------------------------------------------------------

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredRecord]:
        with self._lock:
            self._check_open()
            state = self._streams.get(stream)
            events = [] if state is None else state.events
            first = 0 if state is None else state.first
            count = len(events)  # later appends are not part of this read
        if backwards:
            start = count - 1 if from_version is None else min(from_version, count - 1)
            stop = max(-1 if to_version is None else max(to_version, 0) - 1, first - 1)
            step = -1
            total = max(start - stop, 0)
        else:
            start = max(0 if from_version is None else from_version, first)
            stop = count if to_version is None else min(to_version + 1, count)
            step = 1
            total = max(stop - start, 0)
        if limit is not None:
            total = min(total, limit)
        return self._pages(events, start, step, total)

    def _pages(
        self, items: list[StoredRecord | None], start: int, step: int, total: int
    ) -> Iterator[StoredRecord]:
        index = start
        while total > 0:
            size = min(PAGE_SIZE, total)
            with self._lock:
                self._check_open()
                if step == 1:
                    page = items[index : index + size]
                else:
                    page = items[index - size + 1 : index + 1][::-1]
            yield from (record for record in page if record is not None)
            index += step * size
            total -= size

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> Iterator[StoredRecord]:
        with self._lock:
            self._check_open()
            count = len(self._log)
        if backwards:
            start = count - 1 if from_position is None else min(from_position, count) - 1
            records = self._pages(self._log, start, -1, start + 1)
        else:
            start = 0 if from_position is None else max(from_position - 1, 0)
            records = self._live_pages(start)
        if filter is not None:
            records = _narrow(records, filter)
        if limit is not None:
            records = _take(records, limit)
        return records

    def _live_pages(self, start: int) -> Iterator[StoredRecord]:
        # a forwards read_all follows the log to its end as it is when each page is read
        index = start
        while True:
            with self._lock:
                self._check_open()
                page = self._log[index : index + PAGE_SIZE]
            if not page:
                return
            yield from (record for record in page if record is not None)
            index += len(page)

    def stream_info(self, stream: str) -> StreamInfo:
        with self._lock:
            self._check_open()
            return self._info(stream, self._streams.get(stream))

    @staticmethod
    def _info(stream: str, state: _Stream | None) -> StreamInfo:
        if state is None:
            return StreamInfo(stream, None, False, None)
        # as in the SQL backends, the version is that of the last event still stored (a
        # scavenged tombstoned stream has none left)
        version = len(state.events) - 1 if state.first < len(state.events) else None
        return StreamInfo(stream, version, state.hard_deleted, state.metadata)

    def list_streams(self, after: str = "") -> Iterator[StreamInfo]:
        with self._lock:
            self._check_open()
            infos = [
                self._info(name, state)
                for name, state in sorted(self._streams.items())
                if name > after
            ]
        return iter(infos)

    def head_position(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._log)

    def load_snapshot(self, stream: str, max_version: int | None = None) -> SnapshotRecord | None:
        with self._lock:
            self._check_open()
            versions = self._snapshots.get(stream, {})
            usable = [v for v in versions if max_version is None or v <= max_version]
            return versions[max(usable)] if usable else None

    def stats(self) -> dict[str, int | str]:
        with self._lock:
            self._check_open()
            return {
                "backend": "memory",
                "events": len(self._log) - self._removed,
                "streams": sum(1 for s in self._streams.values() if s.events or s.hard_deleted),
                "snapshots": sum(len(v) for v in self._snapshots.values()),
                "head_position": len(self._log),
            }

    def close(self) -> None:
        with self._lock:
            self._closed = True


def _narrow(records: Iterator[StoredRecord], narrowing: ReadAllFilter) -> Iterator[StoredRecord]:
    category, types = narrowing.category, narrowing.types
    for record in records:
        if category is not None and category_of(record.stream) != category:
            continue
        if types is not None and record.type not in types:
            continue
        yield record


def _take(records: Iterator[StoredRecord], limit: int) -> Iterator[StoredRecord]:
    if limit <= 0:
        return
    for count, record in enumerate(records, 1):
        yield record
        if count >= limit:
            return


def open_recorder(url: str, **options: Any) -> MemoryRecorder:
    """Open a new, empty memory recorder (``memory://``; each call is a separate store)."""
    if options:
        raise InterfaceError(f"memory:// takes no options, got {sorted(options)}")
    return MemoryRecorder()
