"""One service's store: its events, its read-model tables, and what a handler writes.

A command or a message handler computes a :class:`Unit` (at most one append, then SQL
statements) outside any transaction, from aggregates it loaded; :meth:`ServiceStore.commit`
writes the unit, and the consumer's checkpoint when a message caused it, in one transaction
of the service's own database. One append per transaction, first, because that is what
PostgreSQL allows (positions follow transaction ids); SQLite has no such limit.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamsource as ss

READ_SESSIONS = 4  # idle read sessions kept per service

CHECKPOINTS = (
    "CREATE TABLE IF NOT EXISTS mall_checkpoints (consumer TEXT PRIMARY KEY, position BIGINT)"
)
DEAD_LETTERS = (
    "CREATE TABLE IF NOT EXISTS mall_dead_letters"
    " (consumer TEXT, event_id TEXT, type TEXT, error TEXT)"
)


@dataclass
class Unit:
    """What one command or handler writes: one append (optional), then SQL statements."""

    stream: str | None = None
    events: list[ss.NewEvent] = field(default_factory=list)
    expected: Any = ss.ANY
    statements: list[tuple[str, Sequence[Any]]] = field(default_factory=list)
    cause: ss.RecordedEvent | None = None

    def save(self, aggregate: ss.Aggregate, metadata: Mapping[str, Any] | None = None) -> None:
        """Append ``aggregate``'s pending events, checked against the version it was loaded at."""
        if self.stream is not None and self.stream != aggregate.stream:
            raise ss.ProgrammingError("a unit appends to one stream")
        shared: dict[str, Any] = {}
        if self.cause is not None:
            shared.update(ss.Causation.from_event(self.cause).metadata())
        shared.update(metadata or {})
        # the pending entries, not just the events: their own metadata (a command's routing)
        # and ids (kept across retries) go into the store as the repository's save does
        for pending in aggregate._pending_list():
            name, data, version = aggregate.registry.encode(pending.event)
            metadata = {**shared, **pending.metadata, ss.SCHEMA_VERSION: version}
            self.events.append(ss.NewEvent(name, data, metadata=metadata, id=pending.id))
        self.stream = aggregate.stream
        saved = aggregate.saved_version
        self.expected = ss.NO_STREAM if saved is None else saved

    def append(self, stream: str, event: ss.NewEvent, expected: Any = ss.ANY) -> None:
        if self.stream is not None and self.stream != stream:
            raise ss.ProgrammingError("a unit appends to one stream")
        self.stream, self.expected = stream, expected
        self.events.append(event)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A statement written with ``?`` placeholders, run after the append."""
        self.statements.append((sql, params))


class ServiceStore:
    """A service's event store plus a few read sessions on the same database."""

    def __init__(self, service: str, url: str, tables: Sequence[str] = ()) -> None:
        self.service = service
        self.url = url
        self.store = ss.open_store(url)
        database = self.store.recorder.database
        if database is None:
            raise ss.NotSupportedError(f"the {service} service needs an SQL store, not {url}")
        self.database = database
        self.dialect = database.dialect
        self._idle: queue.Queue[Any] = queue.Queue(maxsize=READ_SESSIONS)
        with self.store.transaction() as tx:
            for statement in (CHECKPOINTS, DEAD_LETTERS, *tables):
                tx.execute(self.sql(statement))

    def sql(self, statement: str) -> str:
        # Example code with a handful of statements: written once with `?`, adapted here.
        return statement.replace("?", self.dialect.placeholder)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read on one of a few pooled autocommit sessions (never a write)."""
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self.database.connect()
        try:
            rows = list(connection.execute(self.sql(statement), params).fetchall())
        except BaseException:
            connection.close()  # its state is unknown after a failure
            raise
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()
        return rows

    def commit(self, unit: Unit, checkpoint: tuple[str, int] | None = None) -> bool:
        """Write ``unit`` (and the consumer checkpoint); False if the checkpoint had passed it."""
        with self.store.transaction() as tx:
            if checkpoint is not None:
                consumer, position = checkpoint
                # a plain read: on PostgreSQL a locking read would be a write before the append
                rows = tx.execute(
                    self.sql("SELECT position FROM mall_checkpoints WHERE consumer = ?"),
                    (consumer,),
                )
                if rows and rows[0][0] >= position:
                    return False
            if unit.stream is not None and unit.events:
                tx.append(unit.stream, unit.events, expected_version=unit.expected)
            for statement, params in unit.statements:
                tx.execute(self.sql(statement), params)
            if checkpoint is not None:
                tx.execute(
                    self.sql(
                        "INSERT INTO mall_checkpoints (consumer, position) VALUES (?, ?)"
                        " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position"
                    ),
                    checkpoint,
                )
        return True

    def checkpoint(self, consumer: str) -> int | None:
        rows = self.query("SELECT position FROM mall_checkpoints WHERE consumer = ?", (consumer,))
        return int(rows[0][0]) if rows else None

    def run(self, command: Callable[[], Unit], attempts: int = 5) -> Unit:
        """Compute and commit a unit, again on fresh state after a concurrent write."""

        def attempt() -> Unit:
            unit = command()
            self.commit(unit)
            return unit

        return ss.retry_on_conflict(attempt, attempts=attempts)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
        self.store.close()
