"""One transaction for events and your own tables: ``store.transaction()``.

>>> with store.transaction() as tx:                     # doctest: +SKIP
...     tx.append("account-1", NewEvent("Deposited", {"amount": 5}), expected_version=3)
...     tx.execute(f"INSERT INTO outbox (id) VALUES ({tx.dialect.placeholder})", (key,))

The events (validated and encoded as by ``store.append``, checked against
``expected_version`` in the transaction) and every row written through ``tx`` commit
together when the block ends, or not at all if it raises. Any failed statement dooms the
transaction. Subscribers of the store wake after the commit. The store's backend must have a
SQL database (SQLite or PostgreSQL; see :mod:`streamsource.eventstore.database`).

Differences from ``store.append``: an append whose expected version does not match raises
WrongExpectedVersion (there is no idempotent-retry lookup: the transaction that stored the
same ids committed or rolled back as a whole), and a soft-deleted stream is not re-created
with NO_STREAM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from streamsource.eventstore import appended
from streamsource.eventstore.codec import encode_events
from streamsource.eventstore.database import (
    AsyncDatabase,
    AsyncTransaction,
    Database,
    Dialect,
    Transaction,
    require_database,
)
from streamsource.eventstore.events import ANY, AppendResult, ExpectedVersion, NewEvent
from streamsource.eventstore.validation import check_expected_version, check_stream_name


class UnitOfWork:
    """A transaction of an :class:`~streamsource.EventStore` (see the module docstring)."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.appended = False

    @property
    def dialect(self) -> Dialect:
        return self.tx.dialect

    @property
    def connection(self) -> Any:
        """The driver's connection, for code that needs it (its errors are the driver's)."""
        return self.tx.connection

    def append(
        self,
        stream: str,
        events: Iterable[NewEvent] | NewEvent,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append ``events`` to ``stream`` in this transaction if its version matches."""
        stream = check_stream_name(stream)
        expected = check_expected_version(expected_version, stream)
        result = self.tx.append(stream, encode_events(stream, events), expected)
        self.appended = True
        return result

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement of your own; its rows."""
        return self.tx.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.tx.executemany(sql, rows)


class AsyncUnitOfWork:
    """A transaction of an :class:`~streamsource.AsyncEventStore`: :class:`UnitOfWork`, awaited."""

    def __init__(self, tx: AsyncTransaction) -> None:
        self.tx = tx
        self.appended = False

    @property
    def dialect(self) -> Dialect:
        return self.tx.dialect

    @property
    def connection(self) -> Any:
        return self.tx.connection

    async def append(
        self,
        stream: str,
        events: Iterable[NewEvent] | NewEvent,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        stream = check_stream_name(stream)
        expected = check_expected_version(expected_version, stream)
        result = await self.tx.append(stream, encode_events(stream, events), expected)
        self.appended = True
        return result

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.tx.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.tx.executemany(sql, rows)


@contextmanager
def unit_of_work(recorder: Any) -> Iterator[UnitOfWork]:
    """A :class:`UnitOfWork` on ``recorder``'s database."""
    database: Database = require_database(recorder, "store.transaction()")
    with database.transaction() as tx:
        work = UnitOfWork(tx)
        yield work
    if work.appended:
        appended.notify(recorder)


@asynccontextmanager
async def async_unit_of_work(recorder: Any) -> AsyncIterator[AsyncUnitOfWork]:
    """An :class:`AsyncUnitOfWork` on ``recorder``'s database."""
    database: AsyncDatabase = require_database(recorder, "store.transaction()")
    async with database.transaction() as tx:
        work = AsyncUnitOfWork(tx)
        yield work
    if work.appended:
        appended.notify(recorder)
