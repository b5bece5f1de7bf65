"""The appends of one shared commit, planned together: one state query and one insert.

Running each append of a group commit on its own costs four statements (savepoint, state,
insert, release), each a round trip through the GIL while other writers hold it. When every
append of a batch is ordinary, they can instead be checked in Python against one read of
their streams' state, in order (a later append sees the versions an earlier one wrote), and
inserted with a single ``executemany`` at explicit positions.

Anything unusual sends the batch back to the one-by-one path, which has the exact sequential
semantics: an expected version that does not match (it may be a retry whose original is in
this very batch) or an id collision (an idempotent retry or a DuplicateEventId). The caller
runs this inside a savepoint, so falling back leaves nothing behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamsource.errors import StoreError, StreamDeleted, WrongExpectedVersion
from streamsource.eventstore.events import AppendResult, ExpectedVersion, category_of
from streamsource.eventstore.recorder import EventRecord
from streamsource.eventstore.validation import check_version_matches

from .writes import now_micros


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One caller's append, as the group committer queues it."""

    stream: str
    records: Sequence[EventRecord]
    expected: ExpectedVersion


_STATES = """
SELECT q.value, s.hard_deleted, e.version, e.recorded_at
FROM json_each(?) AS q
LEFT JOIN streams AS s ON s.name = q.value
LEFT JOIN events AS e ON e.position = (
    SELECT position FROM events WHERE stream = q.value ORDER BY version DESC LIMIT 1
)
"""
_INSERT_AT = (
    "INSERT INTO events (position, stream, category, version, id, type, data, metadata,"
    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def append_together(
    conn: sqlite3.Connection, requests: list[AppendRequest]
) -> list[AppendResult | StoreError] | None:
    """Each request's result or error, in order; None: run them one by one instead.

    Raises sqlite3.IntegrityError on an id collision (the caller falls back then too).
    """
    names = sorted({request.stream for request in requests})
    state: dict[str, tuple[bool, int | None, int]] = {
        name: (bool(deleted), version, recorded_at or 0)
        for name, deleted, version, recorded_at in conn.execute(_STATES, (json.dumps(names),))
    }
    # We hold the write lock: nobody else can take positions until our COMMIT.
    position = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    now = now_micros()
    rows: list[tuple[Any, ...]] = []
    new_streams: list[tuple[str]] = []
    outcomes: list[AppendResult | StoreError] = []
    for request in requests:
        stream = request.stream
        deleted, current, last_recorded_at = state[stream]
        if deleted:
            outcomes.append(StreamDeleted(stream))
            continue
        try:
            check_version_matches(stream, request.expected, current)
        except WrongExpectedVersion:
            return None
        if not request.records:
            outcomes.append(AppendResult(-1 if current is None else current, 0))
            continue
        recorded_at = max(now, last_recorded_at)
        category = category_of(stream)
        version = -1 if current is None else current
        for r in request.records:
            position += 1
            version += 1
            rows.append(
                (
                    position,
                    stream,
                    category,
                    version,
                    r.id.bytes,
                    r.type,
                    r.data,
                    r.metadata,
                    recorded_at,
                )
            )
        if current is None:
            new_streams.append((stream,))
        state[stream] = (False, version, recorded_at)
        outcomes.append(AppendResult(version, position))
    if rows:
        conn.executemany(_INSERT_AT, rows)
    if new_streams:
        conn.executemany("INSERT OR IGNORE INTO streams (name) VALUES (?)", new_streams)
    return outcomes
