"""The SQLite recorder: one group-committing write connection plus a pool of read connections."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from streamsource.errors import InterfaceError
from streamsource.eventstore import database as db
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import (
    EventRecord,
    ReadAllFilter,
    SnapshotRecord,
    StoredRecord,
    StreamInfo,
    Wakeups,
)

from . import reads, scavenge, schema, writes
from .batch_append import AppendRequest, append_together
from .checkpoints import Checkpointer
from .database import SqliteDatabase
from .faults import map_exceptions
from .groupcommit import MAX_BATCH, GroupCommitter
from .schema import Durability

# Idle read connections kept for reuse; busier moments open more and close the surplus.
_MAX_IDLE_READERS = 8


class SqliteRecorder:
    """A :class:`~streamsource.eventstore.recorder.Recorder` storing events in one SQLite file.

    Safe to share between threads; several processes may open the same file.
    """

    backend = "sqlite"
    max_appends_each = MAX_BATCH
    """The most appends one :meth:`append_each` call takes."""

    def __init__(self, path: str, *, durability: Durability = "full", timeout: float = 5.0) -> None:
        self.path = path
        self.durability: Durability = durability
        self.timeout = timeout
        schema.check_file(path)
        schema.ensure_parent_writable(path)
        conn = schema.connect(path, timeout, durability=durability, writer=True)
        try:
            schema.migrate(conn, path)
            # Checkpoints run beside the commits instead of inside one (see .checkpoints).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        self._checkpointer = Checkpointer(path, timeout, durability)
        self._committer = GroupCommitter(
            conn, path, together=append_together, checkpointer=self._checkpointer
        )
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.database = SqliteDatabase(self._committer, path, timeout)
        """The store's file, for tables beside the events (see :mod:`.database`)."""
        self.wakeups = Wakeups(key=("sqlite", os.path.realpath(path)))
        """Keyed by the file: every store opened on it in this process shares a signal.
        Other processes' appends are seen by polling."""

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writes -----------------------------------------------------------------------------

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        """Append atomically after checking ``expected``; idempotent for a retried append."""
        db.check_not_inside(self.database, "append")
        request = AppendRequest(stream, records, expected)
        return self._committer.run(request.run_alone, item=request)

    def append_each(
        self, appends: Sequence[tuple[str, Sequence[EventRecord], ExpectedVersion]]
    ) -> list[AppendResult | Exception]:
        """Several independent appends ``(stream, records, expected)`` handed over at once.

        Each one's result or error, in order, exactly as :meth:`append` would have returned or
        raised it (they share commits with each other and with concurrent callers; one
        failing fails alone). At most :attr:`max_appends_each` appends.
        """
        db.check_not_inside(self.database, "append_each")
        requests = [AppendRequest(*append) for append in appends]
        return self._committer.run_each([(request.run_alone, request) for request in requests])

    def hard_delete(self, stream: str, expected: ExpectedVersion) -> None:
        """Tombstone the stream: its events stay in the log, every later append fails."""
        db.check_not_inside(self.database, "hard_delete")
        self._committer.run(partial(writes.hard_delete, stream=stream, expected=expected))

    def set_stream_metadata(self, stream: str, metadata: bytes) -> None:
        """Store the stream's encoded metadata (replacing any earlier one)."""
        self._committer.run(partial(writes.set_stream_metadata, stream=stream, metadata=metadata))

    def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool:
        """Store the metadata if the stream is unchanged since the caller read it."""
        return self._committer.run(
            partial(
                writes.replace_stream_metadata,
                stream=stream,
                metadata=metadata,
                version=version,
                previous=previous,
            )
        )

    def remove_events(
        self,
        stream: str,
        before_version: int,
        *,
        hard_deleted: bool,
        metadata: bytes | None,
        limit: int,
    ) -> int:
        """Remove one batch of the stream's hidden events (see the Recorder protocol)."""
        return self._committer.run(
            partial(
                scavenge.remove_events,
                stream=stream,
                before_version=before_version,
                hard_deleted=hard_deleted,
                metadata=metadata,
                limit=limit,
            )
        )

    def reclaim_space(self, *, vacuum: bool = False) -> None:
        """Empty the WAL file; with ``vacuum``, also shrink the database file (it blocks
        writers while it rewrites the whole file)."""
        self._check_open()
        scavenge.reclaim_space(self.path, self.timeout, self.durability, vacuum=vacuum)

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Store a snapshot apart from the events (replacing one at the same version)."""
        recorded_at = reads.to_micros(snapshot.recorded_at)
        self._committer.run(
            partial(writes.save_snapshot, snapshot=snapshot, recorded_at=recorded_at)
        )

    # -- reads ------------------------------------------------------------------------------

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredRecord]:
        """The events of one stream, lazily, from ``from_version`` to ``to_version`` inclusive."""
        self._check_open()
        return reads.read_stream(self._query, stream, from_version, to_version, backwards, limit)

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> Iterator[StoredRecord]:
        """The whole log in global position order, lazily, optionally filtered."""
        self._check_open()
        return reads.read_all(self._query, from_position, backwards, limit, filter)

    def stream_info(self, stream: str) -> StreamInfo:
        """The stream's last version, tombstone and metadata."""
        return reads.stream_info(self._query, stream)

    def list_streams(self, after: str = "") -> Iterator[StreamInfo]:
        """Every stream that has events, metadata or a tombstone, in name order."""
        self._check_open()
        return reads.list_streams(self._query, after)

    def head_position(self) -> int:
        """The last committed global position, 0 when the store is empty."""
        rows = self._query("SELECT coalesce(max(position), 0) FROM events", ())
        return int(rows[0][0])

    def load_snapshot(self, stream: str, max_version: int | None = None) -> SnapshotRecord | None:
        """The newest snapshot of ``stream`` whose version is <= ``max_version``."""
        rows = self._query(
            "SELECT version, type, state, recorded_at FROM snapshots"
            " WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT 1",
            (stream, 2**63 - 1 if max_version is None else max_version),
        )
        if not rows:
            return None
        version, type_, state, recorded_at = rows[0]
        return SnapshotRecord(
            stream=stream,
            version=version,
            type=type_,
            state=state,
            recorded_at=reads.to_datetime(recorded_at),
        )

    def stats(self) -> dict[str, int | str]:
        """Counters of this recorder (``commits`` < ``writes`` shows group commit at work)."""
        committer = self._committer
        (events, streams, snapshots), *_ = self._query(
            "SELECT (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM streams WHERE hard_deleted"
            " OR EXISTS (SELECT 1 FROM events WHERE stream = name)),"
            " (SELECT count(*) FROM snapshots)",
            (),
        )
        return {
            "backend": "sqlite",
            "path": self.path,
            "durability": self.durability,
            "schema_version": schema.SCHEMA_VERSION,
            "events": events,
            "streams": streams,
            "snapshots": snapshots,
            "head_position": self.head_position(),
            "writes": committer.writes,
            "commits": committer.commits,
            "largest_batch": committer.largest_batch,
            "batches_together": committer.batches_together,
            "checkpoints_background": self._checkpointer.background,
            "checkpoints_in_writer": self._checkpointer.in_writer,
        }

    def close(self) -> None:
        """Wait for the write in progress, then close every connection. Idempotent."""
        with self._readers_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle_readers = self._idle_readers, []
        self._committer.close()
        self.database.close()
        self._checkpointer.stop()
        for conn in idle:
            conn.close()
        with map_exceptions(self.path):
            self._writer.close()  # the last connection to close checkpoints the WAL

    def __enter__(self) -> SqliteRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- read connections -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError(f"{self.path}: the store is closed")

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        held = self.database.reading_connection()
        if held is not None:  # inside a transaction: read what it sees (see .database)
            with map_exceptions(self.path):
                return held.execute(sql, params).fetchall()
        # Each query borrows a pooled connection for its duration only, so a lazy reader
        # moving between threads (as asyncio's thread pool does) is fine.
        with self._readers_lock:
            if self._closed:
                raise InterfaceError(f"{self.path}: the store is closed")
            conn = self._idle_readers.pop() if self._idle_readers else None
        with map_exceptions(self.path):
            if conn is None:
                conn = schema.connect(
                    self.path, self.timeout, durability=self.durability, writer=False
                )
            try:
                rows = conn.execute(sql, params).fetchall()
            except BaseException:
                conn.close()
                raise
        with self._readers_lock:
            if not self._closed and len(self._idle_readers) < _MAX_IDLE_READERS:
                self._idle_readers.append(conn)
                return rows
        conn.close()
        return rows
