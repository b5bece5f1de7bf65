"""Inbox tables: remember which events a consumer has applied, in the handler's transaction.

Kafka redelivers: after a consumer crash, a rebalance, or a relay resending events it had
not checkpointed. An :class:`Inbox` opens a database transaction, the consumer records the event ids of a
batch of messages in it (:meth:`Inbox.claim`) and calls the handler, with the same
transaction, for the events whose id is new; then commits: the handler's writes and the inbox row
commit together or not at all, so every event takes effect exactly once.

Three inboxes: :class:`StoreInbox` keeps the table in the event store's own database (the
transactions the store hands out, see :mod:`streamsource.eventstore.database`), so a handler
can append events (``tx.append``) and write its rows in the same transaction as the inbox
row: the basis of exactly-once sagas. :class:`SqliteInbox` and :class:`PostgresInbox` keep
it in a read-model database of their own. Driver errors are translated by the backend's one
translation (``backends/*/faults.py``).

Table ``streamsource_inbox`` (``consumer``, ``event_id``, ``position``, ``received_at``),
created on first use, one row per applied event per consumer name. Rows are never deleted
by streamsource; prune old ones yourself if the table grows too large (an event older than
any possible redelivery can no longer come back).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, Protocol

from streamsource.bridge.errors import InboxConflict
from streamsource.errors import InterfaceError
from streamsource.eventstore.backends.sqlite.faults import translate as sqlite_error
from streamsource.eventstore.database import ensure_tables, require_database
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.store import EventStore
from streamsource.eventstore.unit_of_work import UnitOfWork

TABLE = "streamsource_inbox"
_CHUNK = 500  # ids per "IN (...)" query: below every SQLite build's variable limit


def _first_unseen(
    events: Sequence[RecordedEvent], ids: Sequence[bytes], seen: set[bytes]
) -> list[RecordedEvent]:
    """``events`` whose id is not in ``seen``, each id once, in order (``seen`` is updated)."""
    new: list[RecordedEvent] = []
    for event, event_id in zip(events, ids, strict=True):
        if event_id not in seen:
            seen.add(event_id)
            new.append(event)
    return new


class Inbox(Protocol):
    """A database that can run a transaction and record event ids in it."""

    def transaction(self) -> AbstractContextManager[Any]:
        """A transaction; yields the connection handed to handlers. Commits on success."""
        ...

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        """Record the ids of ``events`` for ``consumer`` in ``tx``; return those not seen before.

        The result keeps the order of ``events``; an id repeated in the batch counts once.
        """
        ...

    def close(self) -> None: ...


class SqliteInbox:
    """An inbox in a SQLite file; handlers get its ``sqlite3.Connection``.

    ``durability="full"`` fsyncs every commit (survives a power loss); ``"normal"`` survives
    a crash of the process only, and is much faster. Writers in several processes on the
    same file take turns (``BEGIN IMMEDIATE``, waiting up to ``timeout`` seconds).
    """

    def __init__(
        self,
        path: str,
        *,
        durability: Literal["full", "normal"] = "full",
        timeout: float = 30.0,
    ) -> None:
        self.path = path
        try:
            self.connection = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute(f"PRAGMA synchronous={durability.upper()}")
            self.connection.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (consumer TEXT NOT NULL,"
                " event_id BLOB NOT NULL, position INTEGER NOT NULL,"
                " received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
                " PRIMARY KEY (consumer, event_id)) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise sqlite_error(exc, path) from exc
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self.connection
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise sqlite_error(exc, self.path) from exc
            try:
                yield db
            except sqlite3.Error as exc:  # the handler's own SQL, or the claim's
                db.execute("ROLLBACK")
                raise sqlite_error(exc, self.path) from exc
            except BaseException:
                db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise sqlite_error(exc, self.path) from exc

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        # BEGIN IMMEDIATE serialises writers, so "select the known ids, insert the others"
        # cannot race with another member doing the same.
        ids = [event.id.bytes for event in events]
        seen: set[bytes] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            seen.update(
                row[0]
                for row in tx.execute(
                    f"SELECT event_id FROM {TABLE} WHERE consumer = ? AND event_id IN ({marks})",
                    (consumer, *chunk),
                )
            )
        new = _first_unseen(events, ids, seen)
        tx.executemany(
            f"INSERT INTO {TABLE} (consumer, event_id, position) VALUES (?, ?, ?)",
            [(consumer, event.id.bytes, event.position) for event in new],
        )
        return new

    def applied(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has applied."""
        with self._lock:
            row = self.connection.execute(
                f"SELECT count(*) FROM {TABLE} WHERE consumer = ?", (consumer,)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self.connection.close()


class PostgresInbox:
    """An inbox in a PostgreSQL database; handlers get its ``psycopg.Connection``.

    A lost connection (server restarted, backend terminated) fails the transaction under way
    with a retriable OperationalError; the next transaction connects again.
    """

    def __init__(self, conninfo: str) -> None:
        try:
            import psycopg

            from streamsource.eventstore.backends.postgres.faults import translate
        except ModuleNotFoundError:
            raise InterfaceError(
                "a PostgreSQL inbox needs psycopg: pip install 'streamsource[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._translate = translate
        self.where = "PostgreSQL inbox"
        self._conninfo = conninfo
        self._lock = threading.Lock()
        try:
            self.connection = psycopg.connect(conninfo, autocommit=True)
            self.connection.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (consumer TEXT NOT NULL,"
                " event_id UUID NOT NULL, position BIGINT NOT NULL,"
                " received_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                " PRIMARY KEY (consumer, event_id))"
            )
        except psycopg.Error as exc:
            raise translate(exc, self.where, connecting=True) from exc

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            try:
                if self.connection.closed:  # lost during an earlier transaction
                    self.connection = self._psycopg.connect(self._conninfo, autocommit=True)
                with self.connection.transaction():
                    yield self.connection
            except self._psycopg.Error as exc:
                raise self._translate(exc, self.where) from exc

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        # One statement; a member inserting the same id concurrently makes this one wait
        # for its commit, then skip the row (ON CONFLICT DO NOTHING), never fail.
        unique = _first_unseen(events, [event.id.bytes for event in events], set())
        rows = tx.execute(
            f"INSERT INTO {TABLE} (consumer, event_id, position)"
            " SELECT %s, e.id, e.position FROM unnest(%s::uuid[], %s::bigint[]) AS e(id, position)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            (consumer, [event.id for event in unique], [event.position for event in unique]),
        ).fetchall()
        inserted = {row[0] for row in rows}
        return [event for event in unique if event.id in inserted]

    def applied(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has applied."""
        with self._lock:
            row = self.connection.execute(
                f"SELECT count(*) FROM {TABLE} WHERE consumer = %s", (consumer,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            self.connection.close()


class StoreInbox:
    """An inbox in the event store's own database; handlers get the store's transaction
    (a :class:`~streamsource.eventstore.unit_of_work.UnitOfWork`: ``tx.append``,
    ``tx.execute``), so the events they append, their rows and the inbox row commit together.

    The ids are looked up when the batch is claimed and inserted after the handlers ran
    (on PostgreSQL an append must be a transaction's first write, and a transaction appends
    once: there the consumer applies one event per transaction, ``events_per_transaction``). Two members that claimed
    the same id at once: the second one's insert finds the first's row, and its transaction
    rolls back with a retriable :class:`~streamsource.bridge.errors.InboxConflict`; tried
    again, it skips the event.
    """

    def __init__(self, store: EventStore) -> None:
        database = require_database(store.recorder, "an inbox in the store")
        self._store = store
        d = database.dialect
        self._dialect = d
        self.events_per_transaction = d.appends_per_transaction
        ensure_tables(
            database,
            f"CREATE TABLE IF NOT EXISTS {TABLE} (consumer TEXT NOT NULL,"
            f" event_id {d.uuid} NOT NULL, position {d.bigint} NOT NULL,"
            f" received_at {d.timestamp} NOT NULL DEFAULT {d.now},"
            f" PRIMARY KEY (consumer, event_id)){d.without_rowid}",
        )
        self._insert = (
            d.insert_or_ignore(TABLE, ("consumer", "event_id", "position")) + " RETURNING event_id"
        )
        self._pending: dict[int, tuple[str, list[RecordedEvent]]] = {}

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        with self._store.transaction() as tx:
            self._pending[id(tx)] = ("", [])
            try:
                yield tx
                consumer, new = self._pending[id(tx)]
                self._record(tx, consumer, new)
            finally:
                del self._pending[id(tx)]

    def claim(
        self, tx: UnitOfWork, consumer: str, events: Sequence[RecordedEvent]
    ) -> list[RecordedEvent]:
        d = self._dialect
        ids = [d.uuid_value(event.id) for event in events]
        seen: set[bytes] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = tx.execute(
                f"SELECT event_id FROM {TABLE} WHERE consumer = {d.placeholder}"
                f" AND event_id IN ({d.marks(len(chunk))})",
                (consumer, *chunk),
            )
            seen.update(_id_bytes(row[0]) for row in rows)
        new = _first_unseen(events, [event.id.bytes for event in events], seen)
        self._pending[id(tx)] = (consumer, new)
        return new

    def _record(self, tx: UnitOfWork, consumer: str, new: list[RecordedEvent]) -> None:
        d = self._dialect
        for event in new:
            inserted = tx.execute(self._insert, (consumer, d.uuid_value(event.id), event.position))
            if not inserted:
                raise InboxConflict(
                    f"inbox {consumer}: event {event.id} was applied by another member at the"
                    " same time; this batch rolls back and is tried again"
                )

    def applied(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has applied."""
        with self._store.transaction() as tx:
            rows = tx.execute(
                f"SELECT count(*) FROM {TABLE} WHERE consumer = {self._dialect.placeholder}",
                (consumer,),
            )
        return int(rows[0][0])

    def close(self) -> None:
        pass  # the store owns the database


def _id_bytes(value: Any) -> bytes:
    return value.bytes if hasattr(value, "bytes") else bytes(value)
