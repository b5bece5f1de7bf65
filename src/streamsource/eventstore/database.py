"""The database behind a store, as a backend hands it out to components that write beside it.

Persistent-subscription tables, relay checkpoints, inboxes, projection read models (and the
coming saga state and outbox tables) keep their own tables in the store's database. They get
it from the recorder's ``database`` attribute, never by looking at a recorder's class, its
private attributes or its URL:

* ``recorder.database`` is a :class:`Database` (sync recorders) or an :class:`AsyncDatabase`
  (async recorders), or ``None`` when the backend has no SQL database (memory). A component
  that needs one calls :func:`require_database`, which names the backend and what is missing.
* ``database.dialect`` says how to write SQL for it (:class:`Dialect`: placeholders, types,
  upserts); components build their statements once from it, no string rewriting.
* ``database.transaction()`` is one transaction on the store's own database. Inside it,
  ``tx.append`` appends through the backend's normal append path (expected-version checks,
  tombstones, duplicate ids), ``tx.append_many`` appends to several streams at once (each
  append with its own expected version; one refusal fails them all) and ``tx.execute`` runs
  the component's own SQL: the events and
  the rows commit together or not at all. Any error inside dooms the transaction (it rolls
  back when the block ends), the same on every backend. Driver errors come out translated by
  the backend's one translation (``backends/*/faults.py``).

The rule that holds on every backend: append first (one ``append`` or ``append_many``), then
the other writes. PostgreSQL requires it (positions follow transaction ids, so an append
must be the transaction's first write: ``appends_per_transaction`` is 1, and a second append
call or an append after a write raises NotSupportedError); SQLite allows any order.

Inside a transaction, write through ``tx`` only: the store's own ``append`` would wait for
this very transaction; the recorders refuse that with an :class:`~streamsource.errors.InterfaceError`
instead of hanging.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from streamsource.errors import (
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    ProgrammingError,
    StreamsourceError,
)
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import AsyncRecorder, EventRecord, Recorder

Append = tuple[str, Sequence[EventRecord], ExpectedVersion]
"""One append of several: the stream, its encoded records, its expected version."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL of one database family: what components need to write portable statements."""

    name: str  # "sqlite", "postgresql"
    placeholder: str  # the driver's parameter marker
    bigint: str  # a 64-bit integer column
    blob: str  # a byte-string column
    timestamp: str  # a column holding a point in time
    now: str  # the expression of the current time, for such a column's default
    uuid: str  # a column holding a UUID (the driver converts uuid.UUID)
    without_rowid: str  # table suffix that drops SQLite's hidden rowid ("" elsewhere)
    for_update: str  # SELECT suffix locking the rows read until the end of the transaction
    uuid_as_bytes: bool  # the driver cannot bind uuid.UUID: pass its 16 bytes
    appends_per_transaction: int | None  # None: any number, in any order with other writes;
    # 1: one append call (append or append_many), as the transaction's first write
    advisory_lock: str  # statement taking a transaction-long lock on an integer key ("": none
    # needed, a write transaction runs alone)
    single_writer: bool  # one write transaction at a time per database (SQLite): components
    # write through transaction() only; otherwise they may also use sessions of their own

    def uuid_value(self, value: UUID) -> Any:
        """``value`` as this dialect's driver binds a UUID column."""
        return value.bytes if self.uuid_as_bytes else value

    def marks(self, count: int) -> str:
        """``count`` placeholders separated by commas, for a VALUES list."""
        return ", ".join([self.placeholder] * count)

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """INSERT a row, or update the non-key ``columns`` of the row with the same ``key``."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({self.marks(len(columns))})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        )

    def insert_or_ignore(self, table: str, columns: Sequence[str]) -> str:
        """INSERT a row unless one with the same primary key (or unique key) exists."""
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({self.marks(len(columns))})"
            " ON CONFLICT DO NOTHING"
        )


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    bigint="INTEGER",
    blob="BLOB",
    timestamp="TEXT",
    now="(strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
    uuid="BLOB",
    without_rowid=" WITHOUT ROWID",
    for_update="",  # a SQLite write transaction runs alone: nothing else to lock
    uuid_as_bytes=True,
    appends_per_transaction=None,
    advisory_lock="",
    single_writer=True,
)
POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    bigint="BIGINT",
    blob="BYTEA",
    timestamp="TIMESTAMPTZ",
    now="now()",
    uuid="UUID",
    without_rowid="",
    for_update=" FOR UPDATE",
    uuid_as_bytes=False,
    appends_per_transaction=1,  # as the first write: positions follow transaction ids
    advisory_lock="SELECT pg_advisory_xact_lock(%s)",
    single_writer=False,
)


class Transaction(Protocol):
    """One open transaction on the store's database."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def connection(self) -> Any:
        """The driver's connection (``sqlite3.Connection``, ``psycopg.Connection``) for code
        that needs it directly; errors raised through it are the driver's own."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (empty for a statement without a result)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        """Append encoded records in this transaction, with the recorder's checks."""
        ...

    def append_many(self, appends: Sequence[Append]) -> list[AppendResult]:
        """Several appends in this transaction, in order, each checked against its own
        expected version (an earlier append of the same stream counts); their positions
        follow that order. One refusal (WrongExpectedVersion, StreamDeleted,
        DuplicateEventId naming its stream) dooms the transaction: nothing is written."""
        ...


class Database(Protocol):
    """The SQL database of a synchronous recorder."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def where(self) -> str:
        """The database, as error messages name it (a file path, a server without password)."""
        ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction: commits when the block ends, rolls back if it raises."""
        ...

    def connect(self) -> Any:
        """A new autocommit session of the driver on this database (the store's schema), for
        a component that needs one of its own (LISTEN, pipelined bulk writes). Its errors are
        the driver's. On a ``single_writer`` dialect, write through :meth:`transaction`."""
        ...


class AsyncTransaction(Protocol):
    """:class:`Transaction` for asyncio: the same operations, awaited."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def connection(self) -> Any: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult: ...

    async def append_many(self, appends: Sequence[Append]) -> list[AppendResult]: ...


class AsyncDatabase(Protocol):
    """The SQL database of an asyncio recorder."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def where(self) -> str: ...

    def transaction(self) -> AbstractAsyncContextManager[AsyncTransaction]: ...


def require_database(recorder: Recorder | AsyncRecorder, purpose: str) -> Any:
    """``recorder.database``, or a NotSupportedError saying that ``purpose`` needs one."""
    database = recorder.database
    if database is None:
        raise NotSupportedError(
            f"{purpose} needs a SQL database beside the events, and the {recorder.backend} backend"
            " has none (use sqlite:///PATH or postgresql://...)"
        )
    return database


_CREATE_ATTEMPTS = 3


def _create_race(exc: StreamsourceError) -> bool:
    """A failure another creator caused: its table or type already there, or a deadlock
    between two processes creating the same tables and indexes (retriable), which
    PostgreSQL ends by aborting one of them."""
    return isinstance(exc, IntegrityError | ProgrammingError) or exc.retriable


def ensure_tables(database: Database, *statements: str) -> None:
    """Run ``CREATE TABLE IF NOT EXISTS`` statements; safe when several processes race.

    PostgreSQL lets two concurrent creators of the same table both pass the "if not exists"
    check and fails the second on a catalog unique index (an ``IntegrityError``) or with
    "type ... already exists" (a ``ProgrammingError``); by then the first has committed, so
    running the statements once more finds the table. Two creators can also deadlock on
    each other's catalog locks (indexes created beside the tables); PostgreSQL aborts one,
    which runs again. A real mistake fails every time and is raised.
    """
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            with database.transaction() as tx:
                for statement in statements:
                    tx.execute(statement)
            return
        except StreamsourceError as exc:
            if attempt == _CREATE_ATTEMPTS or not _create_race(exc):
                raise


async def ensure_tables_async(database: AsyncDatabase, *statements: str) -> None:
    """:func:`ensure_tables` through an asyncio database."""
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            async with database.transaction() as tx:
                for statement in statements:
                    await tx.execute(statement)
            return
        except StreamsourceError as exc:
            if attempt == _CREATE_ATTEMPTS or not _create_race(exc):
                raise


# The databases with a transaction open in the current thread or task: their recorders'
# own writes would wait for that transaction, so they refuse instead (check_not_inside).
_inside: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "streamsource_transactions", default=()
)


def enter(database: object) -> contextvars.Token[tuple[object, ...]]:
    """Mark ``database`` as in a transaction in this context (its recorder checks it)."""
    return _inside.set((*_inside.get(), database))


def leave(database: object, token: contextvars.Token[tuple[object, ...]]) -> None:
    """Undo :func:`enter` (also from another task than the one that entered)."""
    try:
        _inside.reset(token)
    except ValueError:  # the token is of another context: drop just this database
        _inside.set(tuple(d for d in _inside.get() if d is not database))


def check_not_inside(database: object, operation: str) -> None:
    """Refuse a recorder's own write while this context holds a transaction on its database."""
    if database in _inside.get():
        raise InterfaceError(
            f"{operation} inside a transaction of the same store would wait for that"
            " transaction: write through the transaction (tx.append, tx.execute) instead"
        )
