"""The write operations, each run by the group committer inside a write transaction.

They read and check the state they depend on (tombstones, the current version, reused ids)
in the same transaction that writes, so the answer cannot change before the COMMIT.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from streamsource.errors import DuplicateEventId, StreamDeleted, WrongExpectedVersion
from streamsource.eventstore.events import (
    AppendResult,
    ExpectedVersion,
    StreamState,
    category_of,
)
from streamsource.eventstore.recorder import EventRecord, SnapshotRecord
from streamsource.eventstore.validation import check_version_matches

# SQLite allows 32766 host parameters per statement; stay far below.
_ID_CHUNK = 500

_INSERT_EVENT = (
    "INSERT INTO events (stream, category, version, id, type, data, metadata, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# One query for all an append needs to know: the tombstone, and the last event's version and
# time (both through events_by_stream; the streams table holds no version to keep current).
_STREAM_STATE = """
SELECT s.hard_deleted, e.version, e.recorded_at
FROM (SELECT ? AS name) AS q
LEFT JOIN streams AS s ON s.name = q.name
LEFT JOIN events AS e ON e.position = (
    SELECT position FROM events WHERE stream = q.name ORDER BY version DESC LIMIT 1
)
"""

# One event appended in one statement when nothing is unusual: the checks of _STREAM_STATE
# and check_version_matches made in its WHERE clause. It inserts no row when the stream is
# tombstoned or the expected version does not match; the caller then takes the general path,
# which says why (or finds the retried original). A lone writer pays one statement less per
# commit, each statement a GIL round trip. ?8 is the expected version, or a code below.
_APPEND_ONE = """
INSERT INTO events (stream, category, version, id, type, data, metadata, recorded_at)
SELECT q.name, ?2, coalesce(e.version + 1, 0), ?3, ?4, ?5, ?6, max(?7, coalesce(e.recorded_at, 0))
FROM (SELECT ?1 AS name) AS q
LEFT JOIN streams AS s ON s.name = q.name
LEFT JOIN events AS e ON e.position = (
    SELECT position FROM events WHERE stream = q.name ORDER BY version DESC LIMIT 1
)
WHERE s.hard_deleted IS NOT 1
    AND (?8 = -1 OR (?8 = -2 AND e.version IS NULL) OR (?8 = -3 AND e.version IS NOT NULL)
        OR e.version = ?8)
RETURNING version, position
"""
_EXPECTED_CODES = {StreamState.ANY: -1, StreamState.NO_STREAM: -2, StreamState.STREAM_EXISTS: -3}


def now_micros() -> int:
    """The wall clock in microseconds since the epoch (what ``recorded_at`` stores)."""
    return time.time_ns() // 1000


def stream_state(conn: sqlite3.Connection, stream: str) -> tuple[bool, int | None, int]:
    """Whether ``stream`` is tombstoned, its last version (None: no events) and that time."""
    deleted, version, recorded_at = conn.execute(_STREAM_STATE, (stream,)).fetchone()
    return bool(deleted), version, recorded_at or 0


def append(
    conn: sqlite3.Connection,
    stream: str,
    records: Sequence[EventRecord],
    expected: ExpectedVersion,
) -> AppendResult:
    """Append ``records`` to ``stream`` (see the Recorder protocol for the exact rules).

    The common case costs one statement (one event) or one query and one insert: stored ids
    are looked for only when the expected version does not match (a retry after a lost
    reply) or an id collides.
    """
    if len(records) == 1:
        r = records[0]
        code = _EXPECTED_CODES[expected] if isinstance(expected, StreamState) else expected
        try:
            rows = conn.execute(
                _APPEND_ONE,
                (
                    stream,
                    category_of(stream),
                    r.id.bytes,
                    r.type,
                    r.data,
                    r.metadata,
                    now_micros(),
                    code,
                ),
            ).fetchall()
        except sqlite3.IntegrityError:
            rows = []  # an id collision: the statement wrote nothing, the general path says why
        if rows:
            ((version, position),) = rows
            if version == 0:
                conn.execute("INSERT OR IGNORE INTO streams (name) VALUES (?)", (stream,))
            return AppendResult(version, position)
    deleted, current, last_recorded_at = stream_state(conn, stream)
    if deleted:
        raise StreamDeleted(stream)
    if not records:
        check_version_matches(stream, expected, current)
        return AppendResult(version=-1 if current is None else current, position=0)
    try:
        check_version_matches(stream, expected, current)
    except WrongExpectedVersion:
        original = _already_appended(conn, stream, records)
        if original is not None:
            return original
        raise
    first = 0 if current is None else current + 1
    # recorded_at never decreases within a stream, even if the wall clock steps back.
    recorded_at = max(now_micros(), last_recorded_at)
    category = category_of(stream)
    try:
        if len(records) == 1:
            r = records[0]
            cursor = conn.execute(
                _INSERT_EVENT,
                (stream, category, first, r.id.bytes, r.type, r.data, r.metadata, recorded_at),
            )
            position = cursor.lastrowid
        else:
            conn.executemany(
                _INSERT_EVENT,
                [
                    (
                        stream,
                        category,
                        first + i,
                        r.id.bytes,
                        r.type,
                        r.data,
                        r.metadata,
                        recorded_at,
                    )
                    for i, r in enumerate(records)
                ],
            )
            position = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    except sqlite3.IntegrityError as exc:
        if "events.id" not in str(exc):
            raise
        repeated = _repeated_within(records)
        if repeated is not None:
            raise repeated from None
        # If every id was stored before, the first insert failed: this call wrote nothing.
        original = _already_appended(conn, stream, records)
        if original is not None:
            return original
        raise  # not reached: _already_appended raises for any other reuse
    if current is None:
        conn.execute("INSERT OR IGNORE INTO streams (name) VALUES (?)", (stream,))
    assert position is not None
    return AppendResult(version=first + len(records) - 1, position=position)


def _repeated_within(records: Sequence[EventRecord]) -> DuplicateEventId | None:
    seen: set[bytes] = set()
    for r in records:
        if r.id.bytes in seen:
            return DuplicateEventId(r.id, "another event of the same append")
        seen.add(r.id.bytes)
    return None


def _already_appended(
    conn: sqlite3.Connection, stream: str, records: Sequence[EventRecord]
) -> AppendResult | None:
    """The original result if this exact append was stored before; raise on any other reuse."""
    found: dict[bytes, tuple[Any, ...]] = {}
    ids = [r.id.bytes for r in records]
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT id, stream, version, position, type, data, metadata FROM events"
            f" WHERE id IN ({marks})",
            chunk,
        ):
            found[row[0]] = row
    if not found:
        return None
    previous: tuple[Any, ...] | None = None
    for r in records:
        row = found.get(r.id.bytes)
        if row is None:
            break  # a partial retry: some ids stored, some new
        _, stored_stream, version, _, type_, data, metadata = row
        if stored_stream != stream:
            raise DuplicateEventId(r.id, f"version {version} of stream {stored_stream!r}")
        if (type_, bytes(data), bytes(metadata)) != (r.type, r.data, r.metadata):
            raise DuplicateEventId(r.id, f"a different event at version {version} of {stream!r}")
        if previous is not None and version != previous[2] + 1:
            raise DuplicateEventId(r.id, f"version {version} of {stream!r}, in another append")
        previous = row
    else:
        assert previous is not None
        return AppendResult(version=previous[2], position=previous[3])
    stored = next(r for r in records if r.id.bytes in found)
    row = found[stored.id.bytes]
    raise DuplicateEventId(stored.id, f"version {row[2]} of stream {row[1]!r}, in another append")


def hard_delete(conn: sqlite3.Connection, stream: str, expected: ExpectedVersion) -> None:
    """Tombstone ``stream``: its events stay, every later append raises StreamDeleted."""
    deleted, current, _ = stream_state(conn, stream)
    if deleted:
        raise StreamDeleted(stream)
    check_version_matches(stream, expected, current)
    conn.execute(
        "INSERT INTO streams (name, hard_deleted) VALUES (?, 1)"
        " ON CONFLICT (name) DO UPDATE SET hard_deleted = 1",
        (stream,),
    )


def set_stream_metadata(conn: sqlite3.Connection, stream: str, metadata: bytes) -> None:
    """Replace the stream's encoded metadata (the facade decides what it means)."""
    deleted = conn.execute("SELECT hard_deleted FROM streams WHERE name = ?", (stream,)).fetchone()
    if deleted and deleted[0]:
        raise StreamDeleted(stream)
    conn.execute(
        "INSERT INTO streams (name, metadata) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET metadata = excluded.metadata",
        (stream, metadata),
    )


def save_snapshot(conn: sqlite3.Connection, snapshot: SnapshotRecord, recorded_at: int) -> None:
    """Store (or replace) the snapshot of ``snapshot.stream`` at ``snapshot.version``."""
    conn.execute(
        "INSERT OR REPLACE INTO snapshots (stream, version, type, state, recorded_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (snapshot.stream, snapshot.version, snapshot.type, snapshot.state, recorded_at),
    )


def replace_stream_metadata(
    conn: sqlite3.Connection,
    stream: str,
    metadata: bytes,
    version: int | None,
    previous: bytes | None,
) -> bool:
    """Store ``metadata`` if the stream is still live, at ``version``, with ``previous``
    metadata (read in the write transaction, so nothing can change before the COMMIT)."""
    deleted, current, _ = stream_state(conn, stream)
    row = conn.execute("SELECT metadata FROM streams WHERE name = ?", (stream,)).fetchone()
    stored = None if row is None or row[0] is None else bytes(row[0])
    if deleted or row is None or current != version or stored != previous:
        return False
    conn.execute("UPDATE streams SET metadata = ? WHERE name = ?", (metadata, stream))
    return True
