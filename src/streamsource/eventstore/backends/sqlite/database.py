"""The SQLite store's database as it hands it out: transactions on the store's own writer.

One rule for everything that writes beside the store on SQLite (persistent-subscription
tables, relay checkpoints, inboxes, projection read models kept in the store, saga state):
it writes in the store's own file, through the store's own write queue (the group committer
of :mod:`.groupcommit`). Why:

* SQLite has one write lock per file. A second connection of the same process competes for
  it through SQLite's busy handler, which sleeps in steps of up to 100 ms: an inbox or an
  ack loop would make the application's appends stall (and time out) behind it. Through the
  committer, every writer of the process queues in order and nobody sleeps.
* A write beside the store shares the commit (and its fsync) of the appends it meets in the
  queue. Its cost is printed by ``benchmarks/subscriptions.py --only-beside``: with a save
  every millisecond beside 4 appending threads (``durability=full``), one run on a loaded
  2-core machine gave appends at 0.79x of appends alone through the queue (503 saves/s),
  0.85x with a file of its own (665 saves/s; no atomicity with the events) and 0.82x on a
  second connection to the store's file, where the saves themselves managed only 101/s
  against SQLite's busy handler. The rule costs about what a separate file costs and buys
  one transaction for events and rows.
* Events and the component's rows can commit in one transaction: the basis of exactly-once
  handlers (inbox row, appended events, outbox rows, saga state together).

How: when no commit is running, :meth:`SqliteDatabase.transaction` takes the committer's lead
itself (as a lone appender does) and runs ``BEGIN IMMEDIATE`` ... ``COMMIT`` on the caller's
own thread: no thread hand-off at all. The reference mall runs one per message handled, so
this is its common case. When a commit is running, the caller queues one job on the committer
and waits on that job's own lock; when the leader of a batch runs it, the job lends the write
connection to the caller's thread and waits until the caller's block ends, then returns
(commit) or raises (rollback of just this job's savepoint); the caller then waits for the
batch's COMMIT. A job of a shared batch runs in its own savepoint, so a transaction that
rolls back never takes the others' appends with it, and transactions that meet in the queue
share one commit (and fsync). Only when the job is next to lead a batch that others wait to
share does a helper thread lead it (the caller's thread runs its block within it; alone, the
caller leads its own commit): three thread wake-ups
for a queued transaction, where a helper thread per transaction took five. Measured with 4
threads each running transactions (an append and an upsert) on one file with
``durability=full``: 3,400 -> 4,600 transactions a second, 210 -> 155 us of CPU each.

Inside a transaction, the store's reads made in the same context (``store.read_stream``,
``stream_version``, a ``Repository.load``) run on the transaction's connection
(:meth:`SqliteDatabase.reading_connection`): they see what the transaction wrote so far, and
nothing another writer commits meanwhile (none can: the transaction holds the write lock).
A message handler that loads an aggregate, changes it and appends in one transaction
therefore reads exactly the state its append's expected version is checked against, and
several messages can be handled one after another in one transaction.
"""

from __future__ import annotations

import contextvars
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from streamsource.errors import InterfaceError
from streamsource.eventstore import database as db
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import EventRecord

from . import writes
from .faults import translate
from .groupcommit import GroupCommitter, Lent

# Helper threads that lead a batch whose turn came to a transaction's job (its caller's
# thread runs the transaction's block meanwhile); one at a time leads.
_HELPERS = 2


# The write connection of the transaction this context holds, per database (usually none or
# one): the store's reads in that context run on it (see the module docstring).
_held: contextvars.ContextVar[tuple[tuple[object, sqlite3.Connection], ...]] = (
    contextvars.ContextVar("streamsource_sqlite_held", default=())
)


class SqliteTransaction:
    """A transaction on the store file's write connection (see :class:`SqliteDatabase`)."""

    dialect = db.SQLITE

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.connection = conn
        self._path = path
        self.failure: BaseException | None = None  # dooms the transaction: rolled back
        self.appended = False

    def _guarded(self, run: Callable[[], Any]) -> Any:
        if self.failure is not None:
            raise InterfaceError(
                f"{self._path}: the transaction failed ({self.failure}); it rolls back when"
                " its block ends"
            )
        try:
            return run()
        except sqlite3.Error as exc:
            self.failure = translate(exc, self._path)
            raise self.failure from exc
        except BaseException as exc:
            self.failure = exc
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._guarded(lambda: self.connection.execute(sql, params).fetchall())  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._guarded(lambda: self.connection.executemany(sql, rows))

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        result: AppendResult = self._guarded(
            lambda: writes.append(self.connection, stream, records, expected)
        )
        self.appended = self.appended or bool(records)
        return result

    def append_many(self, appends: Sequence[db.Append]) -> list[AppendResult]:
        """The appends one after the other: on SQLite a transaction runs alone, so that is
        all it takes (the first refusal dooms the transaction, as for ``append``)."""
        return [self.append(stream, records, expected) for stream, records, expected in appends]


class SqliteDatabase:
    """The :class:`~streamsource.eventstore.database.Database` of a SQLite store."""

    dialect = db.SQLITE

    def __init__(self, committer: GroupCommitter, path: str, timeout: float):
        self._committer = committer
        self.where = path
        self._timeout = timeout
        self._helpers: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        db.check_not_inside(self, "a transaction")
        lent = self._committer.lend(self._spawn)
        if lent.leads:
            with self._leading() as tx:
                yield tx
        else:
            with self._lent(lent) as tx:
                yield tx

    @contextmanager
    def _leading(self) -> Iterator[SqliteTransaction]:
        """The transaction on the caller's thread, the committer's lead ours meanwhile."""
        conn = self._committer.connection
        committed = False
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.where) from exc
            tx = SqliteTransaction(conn, self.where)
            token = db.enter(self)
            held = _held.set((*_held.get(), (self, conn)))
            try:
                yield tx
            finally:
                _release(held, self)
                db.leave(self, token)
            if tx.failure is not None:
                raise _rolled_back(self.where, tx.failure) from tx.failure
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise translate(exc, self.where) from exc
            committed = True
        finally:
            if not committed and conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error that got us here is the one to report
            self._committer.step_down(committed)

    def _spawn(self, lead: Callable[[], None]) -> None:
        with self._lock:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(_HELPERS, thread_name_prefix="streamsource-tx")
            self._helpers.submit(lead)

    @contextmanager
    def _lent(self, lent: Lent) -> Iterator[SqliteTransaction]:
        """The transaction as one job of a leader's batch: the committer lent its
        connection to this thread, and commits (or rolls back this job's savepoint) when the
        block ends."""
        assert lent.conn is not None
        tx = SqliteTransaction(lent.conn, self.where)
        token = db.enter(self)
        held = _held.set((*_held.get(), (self, lent.conn)))
        try:
            yield tx
        except BaseException:
            self._committer.give_back(lent, commit=False)
            raise
        finally:
            _release(held, self)
            db.leave(self, token)
        if tx.failure is not None:
            self._committer.give_back(lent, commit=False)
            raise _rolled_back(self.where, tx.failure) from tx.failure
        self._committer.give_back(lent, commit=True)  # raises what failed the COMMIT

    def reading_connection(self) -> sqlite3.Connection | None:
        """The write connection of the transaction this context holds on this database, if
        any: the store reads on it (see the module docstring)."""
        for database, conn in _held.get():
            if database is self:
                return conn
        return None

    def connect(self) -> sqlite3.Connection:
        """A connection of its own to the store's file (for reading: see the module docstring)."""
        try:
            return sqlite3.connect(
                self.where, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise translate(exc, self.where) from exc

    def close(self) -> None:
        with self._lock:
            helpers, self._helpers = self._helpers, None
        if helpers is not None:
            helpers.shutdown(wait=True)


def _release(token: contextvars.Token[Any], database: SqliteDatabase) -> None:
    """Undo the ``_held`` entry of a transaction (also from another task than its own)."""
    try:
        _held.reset(token)
    except ValueError:  # the token is of another context: drop just this database
        _held.set(tuple(entry for entry in _held.get() if entry[0] is not database))


def _rolled_back(where: str, failure: BaseException | None) -> InterfaceError:
    """What a transaction whose statement failed raises when its block ends."""
    return InterfaceError(
        f"{where}: the transaction was rolled back: a statement in it failed ({failure})"
    )
