"""Connections to the database that holds read models: a SQLite file or PostgreSQL.

A read model and its checkpoint must be written in one transaction, so projections talk to
their database directly rather than through the event store. Both dialects get the same
small interface: SQL with ``?`` placeholders (translated to ``%s`` for psycopg), explicit
transactions, and a per-name lock that serialises writers of one projection across
processes (SQLite's ``BEGIN IMMEDIATE`` already does; PostgreSQL takes an advisory lock).

A read model kept in the event store's own database (the default) goes through the
transactions the store hands out (:class:`StoreConnection`, see
:mod:`streamsource.eventstore.database`): on SQLite that is the store's write queue, the rule
for everything written beside the store. Errors of the drivers become
:mod:`streamsource.errors` types naming the database, by the backend's one translation.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol, cast

from streamsource.errors import InterfaceError
from streamsource.eventstore.backends.sqlite import parse_url
from streamsource.eventstore.backends.sqlite.faults import translate
from streamsource.eventstore.database import Database, Transaction

Dialect = Literal["sqlite", "postgresql"]

LOCK_TIMEOUT = 30.0
"""Seconds a projection transaction waits for another writer of the same database."""


class Rows(Protocol):
    """What ``execute`` returns: a driver cursor."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """One connection to a read-model database."""

    dialect: Dialect
    where: str  # the database, for messages (a path, or host/db)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def transaction(self, lock_name: str) -> Any:
        """A context manager: one write transaction, serialised with others of ``lock_name``."""
        ...

    def close(self) -> None: ...


class SqliteConnection:
    """A read-model connection to a SQLite file (WAL, so readers never block the projector).

    ``synchronous=NORMAL``: a commit survives a crash of the process; after a power loss the
    last commits may be lost, but a read model and its checkpoint are lost *together*, so
    exactly-once still holds (the events are simply handled again).
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.where = path
        try:
            self._conn = sqlite3.connect(
                path, timeout=LOCK_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate(exc, self.where) from exc

    @contextmanager
    def transaction(self, lock_name: str) -> Iterator[None]:
        # IMMEDIATE takes the write lock now: the checkpoint read inside is then current
        self.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


_QMARK = re.compile(r"'(?:[^']|'')*'|\?|%")


def to_format_style(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (and ``%`` to ``%%``), leaving string literals."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        return text.replace("%", "%%")

    return _QMARK.sub(replace, sql)


class PostgresConnection:
    """A read-model connection to PostgreSQL (psycopg 3, autocommit between transactions).

    Inside a projection's transaction, plain writes (INSERT/UPDATE/DELETE without
    RETURNING) are queued and sent in bulk before the next statement that returns rows, and
    before COMMIT: their order is kept, their result reads as empty, and an error they cause
    is reported for the batch rather than for one event.
    """

    dialect: Dialect = "postgresql"

    def __init__(
        self, conninfo: str, where: str, schema: str | None = None, *, session: Any = None
    ) -> None:
        try:
            import psycopg

            from streamsource.eventstore.backends.postgres.faults import translate as pg_error
        except ModuleNotFoundError:
            raise InterfaceError(
                "PostgreSQL read models need psycopg: pip install 'streamsource[postgres]'"
            ) from None
        self.where = where
        self._psycopg = psycopg
        self._pg_error = pg_error
        self._sql: dict[str, tuple[str, bool]] = {}
        self._pending: list[tuple[str, list[Sequence[Any]]]] = []
        self._in_transaction = False
        if session is not None:  # a session the store handed out (Database.connect)
            self._conn = session
            return
        try:
            self._conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise pg_error(exc, where, connecting=True) from exc
        if schema is not None:  # a read model may get a schema of its own: create it
            try:
                self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'.encode())
            except psycopg.errors.UniqueViolation:
                pass  # another process created it at the same moment
            except psycopg.Error as exc:
                raise pg_error(exc, where) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = (to_format_style(sql), _is_plain_write(sql))
        converted, plain_write = found
        if plain_write and self._in_transaction:
            # sent later in bulk (executemany): one round trip for a run of the same write
            pending = self._pending
            if pending and pending[-1][0] is converted:
                pending[-1][1].append(params)
            else:
                pending.append((converted, [params]))
            return _NO_ROWS
        try:
            self._flush()
            rows: Rows = self._conn.execute(converted, params)
            return rows
        except self._psycopg.Error as exc:
            raise self._pg_error(exc, self.where) from exc

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self._conn.cursor() as cursor:
            for sql, many in pending:
                cursor.executemany(sql, many)  # type: ignore[arg-type]

    @contextmanager
    def transaction(self, lock_name: str) -> Iterator[None]:
        # Pipeline mode: statements go out without waiting for each reply (a handler's
        # INSERT costs no round trip); reading a result, or the end of the block, syncs.
        # An error may thus surface a few statements after the one that caused it.
        self.execute("BEGIN")
        try:
            with self._conn.pipeline():
                self.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(lock_name),))
                self._in_transaction = True
                yield
                self._flush()
        except self._psycopg.Error as exc:
            self._rollback()
            raise self._pg_error(exc, self.where) from exc
        except BaseException:
            self._rollback()
            raise
        finally:
            self._in_transaction = False
            self._pending = []
        self.execute("COMMIT")

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except self._psycopg.Error:
            pass

    def close(self) -> None:
        self._conn.close()


class StoreConnection:
    """A read-model connection on the event store's own database (its handed-out
    transactions): ``?`` placeholders as everywhere in projections, converted once per
    statement for a dialect that uses another marker."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.dialect = cast(Dialect, database.dialect.name)
        self.where = database.where
        self._tx: Transaction | None = None
        self._sql: dict[str, str] = {}

    def _converted(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            marker = self._database.dialect.placeholder
            found = self._sql[sql] = sql if marker == "?" else to_format_style(sql)
        return found

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        if self._tx is not None:
            return _Rows(self._tx.execute(self._converted(sql), params))
        with self._database.transaction() as tx:
            return _Rows(tx.execute(self._converted(sql), params))

    @contextmanager
    def transaction(self, lock_name: str) -> Iterator[None]:
        with self._database.transaction() as tx:
            lock = self._database.dialect.advisory_lock
            if lock:
                tx.execute(lock, (_lock_key(lock_name),))
            self._tx = tx
            try:
                yield
            finally:
                self._tx = None

    def close(self) -> None:
        pass  # the store owns the database


class _Rows:
    """Rows already fetched, read like a cursor."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class _NoRows:
    """The result of a write sent later in bulk: it has no rows to show."""

    def fetchone(self) -> Any:
        return None

    def fetchall(self) -> list[Any]:
        return []


_NO_ROWS = _NoRows()
_PLAIN_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _is_plain_write(sql: str) -> bool:
    """A write whose result nobody can read (no RETURNING): it may be sent later."""
    return _PLAIN_WRITE.match(sql) is not None and "RETURNING" not in sql.upper()


def _lock_key(name: str) -> int:
    # advisory locks take a bigint; a stable hash of the projection name picks one
    return zlib.crc32(b"streamsource-projection:" + name.encode()) - 2**31


def connect(url: str) -> Connection:
    """Open the read-model database named by ``url`` (``sqlite:///...`` or ``postgresql://...``)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        path, _query = parse_url(url)
        return SqliteConnection(path)
    if scheme in ("postgresql", "postgres"):
        # the store's URL rules: ?schema=NAME puts the read model in that schema
        from streamsource.eventstore.backends.postgres.settings import parse

        settings = parse(url, {})
        return PostgresConnection(settings.conninfo, settings.where, settings.schema)
    raise InterfaceError(
        f"a read model lives in sqlite:///PATH or postgresql://..., not {url!r}"
        " (a memory:// store needs a separate read-model URL)"
    )
