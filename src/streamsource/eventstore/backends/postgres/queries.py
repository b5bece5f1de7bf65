"""The SQL of the PostgreSQL recorders and the pure logic around it, shared by sync and async.

Reads of the global log see only the *settled* prefix of it: rows whose writing transaction
id is below the oldest transaction still running (``pg_snapshot_xmin``). Because positions
are handed out in transaction-id order (see ``append_events`` in ``sql/0001_initial.sql``),
that prefix only ever grows at its end: a reader that has seen position P never later finds
a new row below P. Stream reads need no such horizon: the writers of one stream take turns
(a per-stream advisory lock held to COMMIT), so its committed versions are always a prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from streamsource.errors import DuplicateEventId, StreamDeleted, WrongExpectedVersion
from streamsource.eventstore.events import AppendResult, ExpectedVersion, StreamState
from streamsource.eventstore.recorder import ReadAllFilter, SnapshotRecord, StoredRecord, StreamInfo
from streamsource.eventstore.validation import check_version_matches

from .faults import (
    EVENT_ID_CONSTRAINT,
    ID_STORED,
    NOT_FIRST_WRITE,
    STREAM_DELETED,
    UNIQUE_VIOLATION,
    WRONG_EXPECTED_VERSION,
)
from .schema import latest_version
from .settings import Settings

PAGE_SIZE = 1000
MAX_VERSION = 2**63 - 1

_EXPECTED_CODES = {StreamState.ANY: -1, StreamState.NO_STREAM: -2, StreamState.STREAM_EXISTS: -3}

# %b: binary parameters (uuid and bytea arrays travel as they are, no hex text)
APPEND = "SELECT last_version, last_position FROM append_events(%b, %b, %b, %b, %b, %b)"
APPEND_ONE = "SELECT last_version, last_position FROM append_event(%b, %b, %b, %b, %b, %b)"
APPEND_BATCH = (
    "SELECT statuses, versions, positions FROM append_batch(%b::text[], %b::bigint[],"
    " %b::int[], %b::uuid[], %b::text[], %b::bytea[], %b::bytea[], %b)"
)
# append_batch's statuses (non-atomic mode)
APPENDED, WRONG_VERSION, DELETED, ID_IS_STORED, BUSY = 0, 1, 2, 3, 4
# append_event that returns NULLs instead of waiting for a stream another transaction holds
TRY_APPEND_ONE = "SELECT last_version, last_position FROM try_append_event(%b, %b, %b, %b, %b, %b)"
HARD_DELETE = "SELECT hard_delete_stream(%s, %s)"
SET_METADATA = (
    "INSERT INTO streams AS s (name, metadata) VALUES (%s, %s)"
    " ON CONFLICT (name) DO UPDATE SET metadata = excluded.metadata WHERE NOT s.hard_deleted"
    " RETURNING 1"
)
# A compare-and-set in one statement: the version and metadata it checks are those of the
# statement's snapshot, and an append committing after it is ordered after this write.
REPLACE_METADATA = (
    "UPDATE streams SET metadata = %s WHERE name = %s AND NOT hard_deleted"
    " AND metadata IS NOT DISTINCT FROM %s::bytea"
    " AND (SELECT max(version) FROM events WHERE stream = %s) IS NOT DISTINCT FROM %s::bigint"
    " RETURNING 1"
)
# Scavenging. The stream row is locked FOR UPDATE with its tombstone and metadata in the
# condition: a concurrent metadata change either waits for this removal or, committed
# first, is re-read and fails the check. The newest event of the log stays, so the head
# position never moves back. Parameters: see remove_events_params.
REMOVE_EVENTS = """
WITH locked AS (
    SELECT 1 FROM streams WHERE name = %s AND hard_deleted = %s
    AND metadata IS NOT DISTINCT FROM %s::bytea FOR UPDATE
),
last AS (SELECT max(version) AS version FROM events WHERE stream = %s),
doomed AS (
    SELECT e.position FROM events AS e, last
    WHERE e.stream = %s AND EXISTS (SELECT 1 FROM locked)
      AND e.version < least(%s::bigint, last.version + %s::bigint)
      AND e.position < (SELECT max(position) FROM events)
    ORDER BY e.version LIMIT %s
),
removed AS (DELETE FROM events WHERE position IN (SELECT position FROM doomed) RETURNING 1)
SELECT count(*) FROM removed
"""


def remove_events_params(
    stream: str, before_version: int, hard_deleted: bool, metadata: bytes | None, limit: int
) -> tuple[Any, ...]:
    """The parameters of REMOVE_EVENTS: a live stream keeps its last event, a tombstoned one
    may lose them all."""
    keep_last = 1 if hard_deleted else 0
    return (stream, hard_deleted, metadata, stream, stream, before_version, keep_last, limit)


SAVE_SNAPSHOT = (
    "INSERT INTO snapshots (stream, version, type, state, recorded_at) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (stream, version) DO UPDATE SET type = excluded.type, state = excluded.state,"
    " recorded_at = excluded.recorded_at"
)
LOAD_SNAPSHOT = (
    "SELECT stream, version, type, state, recorded_at FROM snapshots"
    " WHERE stream = %s AND version <= %s ORDER BY version DESC LIMIT 1"
)
_VERSION_OF_NAME = "(SELECT max(version) FROM events WHERE stream = name)"
STREAM_INFO = (
    f"SELECT name, {_VERSION_OF_NAME}, hard_deleted, metadata FROM streams WHERE name = %s"
)
LIST_STREAMS = (
    f"SELECT name, {_VERSION_OF_NAME}, hard_deleted, metadata FROM streams WHERE name > %s"
    " ORDER BY name LIMIT %s"
)
STREAM_STATE = f"SELECT {_VERSION_OF_NAME}, hard_deleted FROM streams WHERE name = %s"
# The settled horizon, computed once per statement (an InitPlan), not once per row.
_SETTLED = "tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))"
HEAD_POSITION = f"SELECT coalesce(max(position), 0) FROM events WHERE {_SETTLED}"
STATS = (
    "SELECT (SELECT count(*) FROM events),"
    " (SELECT count(*) FROM streams WHERE hard_deleted"
    " OR EXISTS (SELECT 1 FROM events WHERE stream = name)),"
    " (SELECT count(*) FROM snapshots)"
)
STORED_IDS = (
    "SELECT id, stream, version, position, type, data, metadata FROM events WHERE id = ANY(%s)"
)

COLUMNS = "id, stream, version, position, type, data, metadata, recorded_at"
_READ_STREAM_FORWARDS = (
    f"SELECT {COLUMNS} FROM events WHERE stream = %s AND version >= %s AND version <= %s"
    " ORDER BY version LIMIT %s"
)
_READ_STREAM_BACKWARDS = (
    f"SELECT {COLUMNS} FROM events WHERE stream = %s AND version <= %s AND version >= %s"
    " ORDER BY version DESC LIMIT %s"
)


# Refusals that append_events/append_event raise after releasing the position lock.
_RAISED_AFTER_THE_LOCK = {
    WRONG_EXPECTED_VERSION,
    STREAM_DELETED,
    NOT_FIRST_WRITE,
    ID_STORED,
    UNIQUE_VIOLATION,
}
RELEASE_POSITION_LOCK = "SELECT pg_advisory_unlock_all()"
"""Run on a connection whose append failed: the append functions take the position lock
(session-level) without a subtransaction to release it on error (see
``sql/0002_append_without_subtransaction.sql``); the pool's connections hold no other
session-level advisory lock."""


def pool_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of both recorders' connection pools (opened by the caller)."""
    return {
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_size,
        "kwargs": {"autocommit": True},
        "timeout": settings.pool_timeout,
        "reconnect_timeout": max(settings.pool_timeout, settings.connect_timeout),
        "name": settings.where,
        "open": False,
    }


def pool_open_timeout(settings: Settings) -> float:
    """How long opening the pool may wait for its first connections."""
    return settings.connect_timeout + settings.pool_timeout


def snapshot_params(snapshot: SnapshotRecord) -> tuple[Any, ...]:
    """The parameters of ``SAVE_SNAPSHOT``."""
    return (snapshot.stream, snapshot.version, snapshot.type, snapshot.state, snapshot.recorded_at)


def load_snapshot_params(stream: str, max_version: int | None) -> tuple[Any, ...]:
    """The parameters of ``LOAD_SNAPSHOT`` (no bound: the newest snapshot)."""
    return (stream, MAX_VERSION if max_version is None else max_version)


def snapshot_of(rows: Sequence[tuple[Any, ...]]) -> SnapshotRecord | None:
    """The snapshot in the rows of ``LOAD_SNAPSHOT``, None when there is none."""
    if not rows:
        return None
    name, version, type_, state, recorded_at = rows[0]
    return SnapshotRecord(name, version, type_, bytes(state), recorded_at)


def stats_of(
    settings: Settings,
    counts: Sequence[tuple[Any, ...]],
    head: int,
    appends: int,
    pool: Mapping[str, int],
    batches: int = 0,
    batched: int = 0,
) -> dict[str, int | str]:
    """A recorder's ``stats()``: the rows of ``STATS``, its head, appends and pool figures,
    and its group commit's (``commits`` calls sent carrying ``writes`` appends)."""
    events, streams, snapshots = counts[0]
    return {
        "backend": "postgresql",
        "server": settings.where,
        "schema": settings.schema,
        "schema_version": latest_version(),
        "events": int(events),
        "streams": int(streams),
        "snapshots": int(snapshots),
        "head_position": head,
        "appends": appends,
        "pool_size": settings.pool_size,
        "pool_connections": int(pool.get("pool_size", 0)),
        "writes": batched,
        "commits": batches,
    }


def may_hold_position_lock(exc: psycopg.Error, conn: Any) -> bool:
    """Whether the append that raised ``exc`` may have left the position lock held."""
    return not conn.closed and getattr(exc, "sqlstate", None) not in _RAISED_AFTER_THE_LOCK


def expected_code(expected: ExpectedVersion) -> int:
    """``expected`` as the bigint ``append_events`` takes (>= 0 exact, negative: a state)."""
    if isinstance(expected, StreamState):
        return _EXPECTED_CODES[expected]
    return expected


def append_call(
    stream: str, expected: ExpectedVersion, records: Sequence[Any]
) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters appending ``records`` (one event: scalar parameters)."""
    if len(records) == 1:
        (record,) = records
        return APPEND_ONE, (
            stream,
            expected_code(expected),
            record.id,
            record.type,
            record.data,
            record.metadata,
        )
    return APPEND, (
        stream,
        expected_code(expected),
        [r.id for r in records],
        [r.type for r in records],
        [r.data for r in records],
        [r.metadata for r in records],
    )


def batch_call(appends: Sequence[Any], *, atomic: bool) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters of ``append_batch`` for ``(stream, records, expected)``
    appends; ``atomic``: the first refusal raises (one transaction's appends), else each
    append gets its own status (a group commit's)."""
    streams: list[str] = []
    codes: list[int] = []
    counts: list[int] = []
    ids: list[uuid.UUID] = []
    types: list[str] = []
    data: list[bytes] = []
    metadata: list[bytes] = []
    for stream, records, expected in appends:
        streams.append(stream)
        codes.append(expected_code(expected))
        counts.append(len(records))
        for record in records:
            ids.append(record.id)
            types.append(record.type)
            data.append(record.data)
            metadata.append(record.metadata)
    return APPEND_BATCH, (streams, codes, counts, ids, types, data, metadata, atomic)


def batch_results(versions: Sequence[int | None], positions: Sequence[int]) -> list[AppendResult]:
    """The results of an atomic ``append_batch`` (every status is APPENDED)."""
    return [
        AppendResult(version=-1 if version is None else version, position=position)
        for version, position in zip(versions, positions, strict=True)
    ]


def batch_refusal(appends: Sequence[Any], exc: BaseException) -> Exception | None:
    """The store's error for an atomic ``append_batch`` that raised ``exc`` (its
    ``__cause__`` is psycopg's), naming the append's stream; None when it is a fault."""
    cause = exc.__cause__
    if not isinstance(cause, psycopg.Error):
        return None
    hint = cause.diag.message_hint
    if hint is None or not hint.isdigit() or not 1 <= int(hint) <= len(appends):
        if cause.sqlstate == UNIQUE_VIOLATION and cause.diag.constraint_name == EVENT_ID_CONSTRAINT:
            return repeated_within([r for _, records, _ in appends for r in records])
        return None
    stream, _, expected = appends[int(hint) - 1]
    if cause.sqlstate == STREAM_DELETED:
        return StreamDeleted(stream)
    if cause.sqlstate == WRONG_EXPECTED_VERSION:
        return wrong_version(stream, expected, cause.diag.message_detail)
    if cause.sqlstate == ID_STORED:
        stored = uuid.UUID(cause.diag.message_detail or "")
        return DuplicateEventId(stored, f"an event stored before (appending to {stream!r})")
    return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the database refused a write, as the recorder must report it."""

    error: Exception
    maybe_retry: bool  # an earlier identical append would make it a success: look first


def refusal(
    stream: str, expected: ExpectedVersion, records: Sequence[Any], exc: BaseException
) -> Refusal | None:
    """The store's answer to a write that raised ``exc`` (its ``__cause__`` is psycopg's).

    None when it is no refusal of ours (a fault, to re-raise as it is).
    """
    cause = exc.__cause__
    if not isinstance(cause, psycopg.Error):
        return None
    if cause.sqlstate == STREAM_DELETED:
        return Refusal(StreamDeleted(stream), maybe_retry=False)
    if cause.sqlstate == WRONG_EXPECTED_VERSION:
        detail = cause.diag.message_detail
        return Refusal(wrong_version(stream, expected, detail), maybe_retry=bool(records))
    if cause.sqlstate == UNIQUE_VIOLATION and cause.diag.constraint_name == EVENT_ID_CONSTRAINT:
        return Refusal(repeated_within(records), maybe_retry=True)
    return None


def status_refusal(
    stream: str, expected: ExpectedVersion, records: Sequence[Any], status: int, current: int | None
) -> Refusal:
    """The store's answer to an append that ``append_batch`` refused with ``status``."""
    if status == DELETED:
        return Refusal(StreamDeleted(stream), maybe_retry=False)
    if status == WRONG_VERSION:
        return Refusal(WrongExpectedVersion(stream, expected, current), maybe_retry=True)
    if status == ID_IS_STORED:
        return Refusal(repeated_within(records), maybe_retry=True)
    raise AssertionError(f"append_batch returned an unknown status {status}")


def wrong_version(
    stream: str, expected: ExpectedVersion, detail: str | None
) -> WrongExpectedVersion:
    """The error for an SS001 raised by the database (its DETAIL is the current version)."""
    actual = int(detail) if detail else None
    return WrongExpectedVersion(stream, expected, actual)


def earlier_result(
    stream: str, records: Sequence[Any], rows: Iterable[tuple[Any, ...]]
) -> AppendResult | None:
    """The original result if ``records`` were appended before exactly so; raise on other reuse.

    ``rows`` are the stored events among the ids of ``records`` (``STORED_IDS``). None means
    none of the ids is stored.
    """
    found = {row[0]: row for row in rows}
    if not found:
        return None
    previous: tuple[Any, ...] | None = None
    for record in records:
        row = found.get(record.id)
        if row is None:
            stored = next(r for r in records if r.id in found)
            version, other = found[stored.id][2], found[stored.id][1]
            raise DuplicateEventId(
                stored.id, f"version {version} of stream {other!r}, in another append"
            )
        _, stored_stream, version, _, type_, data, metadata = row
        if stored_stream != stream:
            raise DuplicateEventId(record.id, f"version {version} of stream {stored_stream!r}")
        if (type_, bytes(data), bytes(metadata)) != (record.type, record.data, record.metadata):
            raise DuplicateEventId(
                record.id, f"a different event at version {version} of {stream!r}"
            )
        if previous is not None and version != previous[2] + 1:
            raise DuplicateEventId(record.id, f"version {version} of {stream!r}, in another append")
        previous = row
    assert previous is not None
    return AppendResult(version=previous[2], position=previous[3])


def repeated_within(records: Sequence[Any]) -> DuplicateEventId:
    """The error for an append that names one id twice (no id of it is stored)."""
    seen: set[uuid.UUID] = set()
    for record in records:
        if record.id in seen:
            return DuplicateEventId(record.id, "another event of the same append")
        seen.add(record.id)
    # the colliding row belonged to a writer that has since rolled back: a rare race
    return DuplicateEventId(records[0].id, "an event of a concurrent append (retry this one)")


def empty_append(
    stream: str, expected: ExpectedVersion, rows: Sequence[tuple[Any, ...]]
) -> AppendResult:
    """What appending no events returns (``rows``: of ``STREAM_STATE``): the checks of an
    append, nothing written."""
    current, deleted = rows[0] if rows else (None, False)
    if deleted:
        raise StreamDeleted(stream)
    check_version_matches(stream, expected, current)
    return AppendResult(version=-1 if current is None else current, position=0)


def stream_info(stream: str, rows: Sequence[tuple[Any, ...]]) -> StreamInfo:
    """The stream's info from the rows of ``STREAM_INFO`` (none: a stream never written)."""
    if not rows:
        return StreamInfo(stream=stream, version=None, hard_deleted=False, metadata=None)
    return info_of(rows[0])


def info_of(row: tuple[Any, ...]) -> StreamInfo:
    name, version, deleted, metadata = row
    return StreamInfo(
        stream=name,
        version=version,
        hard_deleted=bool(deleted),
        metadata=None if metadata is None else bytes(metadata),
    )


class KeysetPager:
    """The query and cursor of one paged read: each page starts just past the key (version or
    position) of the last row of the page before, so a page costs an index range scan."""

    sql: str
    cursor: int
    remaining: int
    backwards: bool

    def _params(self, size: int) -> tuple[Any, ...]:
        raise NotImplementedError

    def _key(self, record: StoredRecord) -> int:
        raise NotImplementedError

    def next_query(self) -> tuple[str, tuple[Any, ...], int] | None:
        """The next page's SQL, parameters and size; None when the read is complete."""
        if self.remaining <= 0:
            return None
        size = min(PAGE_SIZE, self.remaining)
        return self.sql, self._params(size), size

    def advance(self, last_key: int, count: int, size: int) -> bool:
        """Move past a page of ``count`` rows; False when there is nothing more to read."""
        if count < size:
            return False
        self.remaining -= count
        self.cursor = last_key - 1 if self.backwards else last_key + 1
        return True

    def after_page(self, page: Sequence[StoredRecord], size: int) -> bool:
        """Move past ``page`` (read for ``size`` rows); False when the read is complete."""
        return bool(page) and self.advance(self._key(page[-1]), len(page), size)


class StreamPager(KeysetPager):
    """The query and cursor of one paged ``read_stream`` (keyset pagination on version)."""

    def __init__(
        self,
        stream: str,
        from_version: int | None,
        to_version: int | None,
        backwards: bool,
        limit: int | None,
    ) -> None:
        self.remaining = MAX_VERSION if limit is None else limit
        self.backwards = backwards
        self.stream = stream
        if backwards:
            self.sql = _READ_STREAM_BACKWARDS
            self.cursor = MAX_VERSION if from_version is None else from_version
            self.stop = -1 if to_version is None else to_version
        else:
            self.sql = _READ_STREAM_FORWARDS
            self.cursor = 0 if from_version is None else from_version
            self.stop = MAX_VERSION if to_version is None else to_version

    def _params(self, size: int) -> tuple[Any, ...]:
        return (self.stream, self.cursor, self.stop, size)

    def _key(self, record: StoredRecord) -> int:
        return record.version


class LogPager(KeysetPager):
    """The query and cursor of one paged ``read_all`` (keyset pagination on position)."""

    def __init__(
        self,
        from_position: int | None,
        backwards: bool,
        limit: int | None,
        filter: ReadAllFilter | None,
    ) -> None:
        self.remaining = MAX_VERSION if limit is None else limit
        self.backwards = backwards
        where = [_SETTLED]
        self.params: list[Any] = []
        if filter is not None and filter.category is not None:
            where.append("category = %s")
            self.params.append(filter.category)
        if filter is not None and filter.types is not None:
            if not filter.types:
                self.remaining = 0
            where.append("type = ANY(%s)")
            self.params.append(sorted(filter.types))
        if backwards:
            self.cursor = MAX_VERSION if from_position is None else from_position
            where.append("position <= %s")
            order = "DESC"
        else:
            self.cursor = 0 if from_position is None else from_position
            where.append("position >= %s")
            order = "ASC"
        self.sql = (
            f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)}"
            f" ORDER BY position {order} LIMIT %s"
        )

    def _params(self, size: int) -> tuple[Any, ...]:
        return (*self.params, self.cursor, size)

    def _key(self, record: StoredRecord) -> int:
        return record.position
