"""The appends of one shared commit, planned together: one state query and one insert.

Running each append of a group commit on its own costs four statements (savepoint, state,
insert, release), each a round trip through the GIL while other writers hold it. When every
append of a batch is ordinary, they can instead be checked in Python against one read of
their streams' state, in order (a later append sees the versions an earlier one wrote), and
inserted at explicit positions with multi-row INSERTs.

Anything unusual sends the batch back to the one-by-one path, which has the exact sequential
semantics: an expected version that does not match (it may be a retry whose original is in
this very batch) or an id collision (an idempotent retry or a DuplicateEventId). Falling back
leaves nothing behind: the usual batch writes with one statement, which SQLite undoes as a
whole when it fails; a batch of several statements (new streams, many rows) runs them inside
a savepoint. Fewer statements matter here: each one releases the GIL and may wait to get it
back from the other writers while the write lock is held.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from streamsource.errors import StoreError, StreamDeleted, WrongExpectedVersion
from streamsource.eventstore.events import AppendResult, ExpectedVersion, category_of
from streamsource.eventstore.recorder import EventRecord
from streamsource.eventstore.validation import check_version_matches

from .writes import append, now_micros


class AppendRequest(msgspec.Struct, frozen=True, gc=False):
    """One caller's append, as the group committer queues it (a Struct: one is built per
    append, and its constructor costs a fraction of a frozen dataclass's)."""

    stream: str
    records: Sequence[EventRecord]
    expected: ExpectedVersion

    def run_alone(self, conn: sqlite3.Connection) -> AppendResult:
        """This append on its own, with the exact sequential semantics (see writes.append)."""
        return append(conn, self.stream, self.records, self.expected)


# Each stream's state and the head position in one row: every row fetched releases the GIL
# and may wait to get it back from the other writers. We hold the write lock: nobody else
# can take positions until our COMMIT.
_STATES = """
SELECT json_group_array(json_array(q.value, s.hard_deleted, e.version, e.recorded_at)),
    (SELECT coalesce(max(position), 0) FROM events)
FROM json_each(?) AS q
LEFT JOIN streams AS s ON s.name = q.value
LEFT JOIN events AS e ON e.position = (
    SELECT position FROM events WHERE stream = q.value ORDER BY version DESC LIMIT 1
)
"""
_encode_names = msgspec.json.Encoder().encode
_decode_states = msgspec.json.Decoder(list[tuple[str, int | None, int | None, int | None]]).decode

_COLUMNS = 9
# Rows per INSERT statement. One multi-row INSERT instead of an executemany: executemany
# releases and retakes the GIL for every row, and each retake may wait behind the other
# writers' Python work while we hold the write lock (measured with 8 writers, fsync per
# commit: about 10% more appends a second). 32 rows bind 288 parameters, far below SQLite's
# limit, and give at most 32 distinct statements to cache.
_ROWS_PER_INSERT = 32


@functools.cache
def _insert_rows(count: int) -> str:
    """The INSERT of ``count`` events at explicit positions (one statement per count)."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * count)
    return (
        "INSERT INTO events (position, stream, category, version, id, type, data, metadata,"
        f" recorded_at) VALUES {values}"
    )


def append_together(
    conn: sqlite3.Connection, requests: list[AppendRequest]
) -> list[AppendResult | StoreError] | None:
    """Each request's result or error, in order; None: run them one by one instead.

    Raises sqlite3.IntegrityError on an id collision (the caller falls back then too). Either
    way nothing of the batch is left written.
    """
    names = list({request.stream: None for request in requests})
    states, position = conn.execute(_STATES, (_encode_names(names).decode(),)).fetchone()
    state: dict[str, tuple[bool, int | None, int]] = {
        name: (bool(deleted), version, recorded_at or 0)
        for name, deleted, version, recorded_at in _decode_states(states)
    }
    now = now_micros()
    row_values: list[Any] = []  # the rows' values one after the other, _COLUMNS per row
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
            row_values += (
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
        if current is None:
            new_streams.append((stream,))
        state[stream] = (False, version, recorded_at)
        outcomes.append(AppendResult(version, position))
    step = _ROWS_PER_INSERT * _COLUMNS
    if not new_streams and len(row_values) <= step:
        if row_values:  # one statement: SQLite undoes all of it if it fails
            conn.execute(_insert_rows(len(row_values) // _COLUMNS), row_values)
        return outcomes
    # A savepoint rather than rolling the transaction back: that would give up the write
    # lock, and waiting for it again behind other processes is slower and may time out.
    conn.execute("SAVEPOINT batch")
    try:
        for start in range(0, len(row_values), step):
            values = row_values[start : start + step]
            conn.execute(_insert_rows(len(values) // _COLUMNS), values)
        if new_streams:
            conn.executemany("INSERT OR IGNORE INTO streams (name) VALUES (?)", new_streams)
    except sqlite3.Error:
        if conn.in_transaction:  # else SQLite gave up the whole transaction itself
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
        raise
    conn.execute("RELEASE batch")
    return outcomes
