"""Removing the events that stream metadata and deletes hide (scavenging), and giving the
space back.

Each call removes one bounded batch of one stream's oldest events in one write transaction
through the group committer, so appends keep flowing between batches and a ``kill -9``
leaves every stream either before or after a whole batch: a stream's remaining events are
always a suffix of its versions, and a rerun carries on where the killed run stopped.
"""

from __future__ import annotations

import sqlite3

from .faults import map_exceptions
from .schema import Durability, connect
from .writes import stream_state

# Removes the stream's oldest events below the bound, but never the newest event of the log:
# positions are rowids handed out as max + 1, so removing the head would let the next append
# reuse its position under a reader's checkpoint.
_REMOVE = """
DELETE FROM events WHERE position IN (
    SELECT position FROM events
    WHERE stream = ? AND version < ? AND position < (SELECT max(position) FROM events)
    ORDER BY version LIMIT ?
)
"""


def remove_events(
    conn: sqlite3.Connection,
    stream: str,
    before_version: int,
    hard_deleted: bool,
    metadata: bytes | None,
    limit: int,
) -> int:
    """Remove up to ``limit`` of the stream's oldest events below ``before_version``, if its
    tombstone and metadata are still as the caller saw them (see Recorder.remove_events)."""
    deleted, current, _ = stream_state(conn, stream)
    row = conn.execute("SELECT metadata FROM streams WHERE name = ?", (stream,)).fetchone()
    stored = None if row is None or row[0] is None else bytes(row[0])
    if row is None or current is None or deleted != hard_deleted or stored != metadata:
        return 0
    bound = min(before_version, current + 1 if deleted else current)
    return conn.execute(_REMOVE, (stream, bound, limit)).rowcount


def reclaim_space(path: str, timeout: float, durability: Durability, *, vacuum: bool) -> None:
    """Give the space of removed events back where SQLite reasonably can.

    Removed rows leave free pages inside the file that later appends reuse. A WAL checkpoint
    (TRUNCATE) empties the write-ahead log file; ``vacuum`` also rewrites the whole database
    to shrink the file, which needs as much free disk as the store and blocks every writer
    until it is done.
    """
    conn = connect(path, timeout, durability=durability, writer=True)
    try:
        with map_exceptions(path):
            if vacuum:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
