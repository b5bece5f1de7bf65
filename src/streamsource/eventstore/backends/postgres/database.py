"""The PostgreSQL store's database as it hands it out: transactions on pooled connections.

A transaction borrows one connection of the recorder's pool and runs ``BEGIN`` ... ``COMMIT``
on it; ``tx.append`` calls the same ``append_events`` function as the recorder, so
expected versions, tombstones and duplicate ids are checked exactly as for a plain append,
and the events commit with the component's rows or not at all. Component tables live in the
store's schema (the pool's ``search_path``).

One rule of the store limits what a transaction may do: positions are ordered by transaction
id (rule 1 of the package docstring), so the append must be the first write of its
transaction. A transaction that appends therefore appends once, before it writes anything
else (reads may come first): ``tx.append`` for one stream, or ``tx.append_many`` for several
(one call of ``append_batch``, ``sql/0003_append_batch.sql``: the stream locks, every check,
then the transaction id and all the positions under the position lock once). Otherwise the
append raises NotSupportedError and the transaction rolls back. (SQLite has no such limit.)

A failed statement dooms the transaction (PostgreSQL refuses further statements until
ROLLBACK); the session-level position lock an append may leave behind on failure is
released after the rollback, before the connection goes back to the pool (see the
package docstring, rule 1). A committed transaction that appended wakes subscribers
through the recorder's NOTIFY, like a plain append.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg

from streamsource.errors import InterfaceError, NotSupportedError
from streamsource.eventstore import database as db
from streamsource.eventstore.database import Append
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import EventRecord

from . import queries as q
from .faults import DRIVER_ERRORS, NOT_FIRST_WRITE, translate


class _State:
    """What both transaction kinds track: the first failure (it dooms them), whether events
    were appended (then subscribers are woken after COMMIT) and the highest position
    appended (the recorder's reads of the log wait for it to settle: read-your-writes)."""

    dialect = db.POSTGRESQL

    def __init__(self, connection: Any, where: str) -> None:
        self.connection = connection
        self.where = where
        self.failure: BaseException | None = None
        self.appended = False
        self.position = 0

    def _check(self) -> None:
        if self.failure is not None:
            raise InterfaceError(
                f"{self.where}: the transaction failed ({self.failure}); it rolls back when"
                " its block ends"
            )

    def _failed(self, exc: BaseException) -> BaseException:
        error = translate(exc, self.where) if isinstance(exc, DRIVER_ERRORS) else exc
        if error is not exc:
            error.__cause__ = exc  # q.refusal reads psycopg's error from here
        self.failure = error
        return error

    def _refused(
        self, error: BaseException, stream: str, expected: ExpectedVersion, records: Any
    ) -> BaseException:
        refused = q.refusal(stream, expected, records, error)
        return self._refusal(error, None if refused is None else refused.error)

    def _refused_many(self, error: BaseException, appends: Sequence[Append]) -> BaseException:
        return self._refusal(error, q.batch_refusal(appends, error))

    def _refusal(self, error: BaseException, refused: BaseException | None) -> BaseException:
        if refused is None:
            if getattr(error.__cause__, "sqlstate", None) == NOT_FIRST_WRITE:
                self.failure = NotSupportedError(
                    f"{self.where}: on PostgreSQL a transaction appends once (tx.append, or"
                    " tx.append_many for several streams), before any other write (positions"
                    " follow transaction ids); append first, then write your rows"
                )
                return self.failure
            return error
        self.failure = refused
        return refused


class PostgresTransaction(_State):
    """A transaction on one pooled connection (see :class:`PostgresDatabase`)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._check()
        try:
            cursor = self.connection.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []
        except Exception as exc:
            raise self._failed(exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._check()
        try:
            self.connection.cursor().executemany(sql, rows)
        except Exception as exc:
            raise self._failed(exc) from exc

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        if not records:
            return q.empty_append(stream, expected, self.execute(q.STREAM_STATE, (stream,)))
        self._check()
        sql, params = q.append_call(stream, expected, records)
        try:
            version, position = self.connection.execute(sql, params, binary=True).fetchall()[0]
        except Exception as exc:
            error = self._refused(self._failed(exc), stream, expected, records)
            raise error from exc
        self.appended = True
        self.position = max(self.position, position)
        return AppendResult(version=version, position=position)

    def append_many(self, appends: Sequence[Append]) -> list[AppendResult]:
        self._check()
        if not appends:
            return []
        sql, params = q.batch_call(appends, atomic=True)
        try:
            _, versions, positions = self.connection.execute(sql, params, binary=True).fetchone()
        except Exception as exc:
            raise self._refused_many(self._failed(exc), appends) from exc
        self.appended = self.appended or any(records for _, records, _ in appends)
        results = q.batch_results(versions, positions)
        self.position = max([self.position, *(r.position for r in results)])
        return results


class AsyncPostgresTransaction(_State):
    """:class:`PostgresTransaction` on an asyncio connection."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._check()
        try:
            cursor = await self.connection.execute(sql, params)
            return await cursor.fetchall() if cursor.description is not None else []
        except Exception as exc:
            raise self._failed(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._check()
        try:
            await self.connection.cursor().executemany(sql, rows)
        except Exception as exc:
            raise self._failed(exc) from exc

    async def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        if not records:
            rows = await self.execute(q.STREAM_STATE, (stream,))
            return q.empty_append(stream, expected, rows)
        self._check()
        sql, params = q.append_call(stream, expected, records)
        try:
            cursor = await self.connection.execute(sql, params, binary=True)
            version, position = (await cursor.fetchall())[0]
        except Exception as exc:
            error = self._refused(self._failed(exc), stream, expected, records)
            raise error from exc
        self.appended = True
        self.position = max(self.position, position)
        return AppendResult(version=version, position=position)

    async def append_many(self, appends: Sequence[Append]) -> list[AppendResult]:
        self._check()
        if not appends:
            return []
        sql, params = q.batch_call(appends, atomic=True)
        try:
            cursor = await self.connection.execute(sql, params, binary=True)
            _, versions, positions = await cursor.fetchone()
        except Exception as exc:
            raise self._refused_many(self._failed(exc), appends) from exc
        self.appended = self.appended or any(records for _, records, _ in appends)
        results = q.batch_results(versions, positions)
        self.position = max([self.position, *(r.position for r in results)])
        return results


def _doomed(tx: _State) -> InterfaceError:
    return InterfaceError(
        f"{tx.where}: the transaction was rolled back: a statement in it failed ({tx.failure})"
    )


class PostgresDatabase:
    """The :class:`~streamsource.eventstore.database.Database` of a PostgreSQL store."""

    dialect = db.POSTGRESQL

    def __init__(
        self,
        pool: Any,
        where: str,
        fail: Callable[[Exception], Exception],
        appended: Callable[[int], None],
        conninfo: str = "",
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self.where = where
        self._fail = fail  # the recorder's translation (it also drops dead pooled connections)
        self._appended = appended

    def connect(self) -> Any:
        """A new autocommit session in the store's schema (outside the pool)."""
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except DRIVER_ERRORS as exc:
            raise translate(exc, self.where, connecting=True) from exc

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        db.check_not_inside(self, "a transaction")
        token = db.enter(self)
        try:
            with self._pool.connection() as conn:
                tx = PostgresTransaction(conn, self.where)
                try:
                    conn.execute("BEGIN")
                    yield tx
                except BaseException:
                    _end_quietly(conn)
                    raise
                if tx.failure is not None:
                    _end_quietly(conn)
                    raise _doomed(tx) from tx.failure
                conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            raise self._fail(exc) from exc
        finally:
            db.leave(self, token)
        if tx.appended:
            self._appended(tx.position)


class AsyncPostgresDatabase:
    """The :class:`~streamsource.eventstore.database.AsyncDatabase` of a PostgreSQL store."""

    dialect = db.POSTGRESQL

    def __init__(
        self,
        pool: Any,
        where: str,
        fail: Callable[[Exception], Any],
        appended: Callable[[int], None],
    ) -> None:
        self._pool = pool
        self.where = where
        self._fail = fail  # a coroutine function: the async recorder's translation
        self._appended = appended

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncPostgresTransaction]:
        db.check_not_inside(self, "a transaction")
        token = db.enter(self)
        try:
            async with self._pool.connection() as conn:
                tx = AsyncPostgresTransaction(conn, self.where)
                try:
                    await conn.execute("BEGIN")
                    yield tx
                except BaseException:
                    await _end_quietly_async(conn)
                    raise
                if tx.failure is not None:
                    await _end_quietly_async(conn)
                    raise _doomed(tx) from tx.failure
                await conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            raise await self._fail(exc) from exc
        finally:
            db.leave(self, token)
        if tx.appended:
            self._appended(tx.position)


def _end_quietly(conn: Any) -> None:
    """Roll back and drop any position lock a failed append left (a broken connection has
    neither: the server ended the session)."""
    try:
        conn.execute("ROLLBACK")
        conn.execute(q.RELEASE_POSITION_LOCK)
    except psycopg.Error:
        pass


async def _end_quietly_async(conn: Any) -> None:
    try:
        await conn.execute("ROLLBACK")
        await conn.execute(q.RELEASE_POSITION_LOCK)
    except psycopg.Error:
        pass
