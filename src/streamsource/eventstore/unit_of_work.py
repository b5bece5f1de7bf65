"""One transaction for events and your own tables: ``store.transaction()``.

>>> with store.transaction() as tx:                     # doctest: +SKIP
...     tx.append("account-1", NewEvent("Deposited", {"amount": 5}), expected_version=3)
...     tx.execute(f"INSERT INTO outbox (id) VALUES ({tx.dialect.placeholder})", (key,))

Several streams at once, each with its own expected version, with ``tx.append_many``:

>>> with store.transaction() as tx:                     # doctest: +SKIP
...     tx.append_many([
...         ("account-1", NewEvent("Withdrawn", {"amount": 5}), 3),
...         ("account-2", NewEvent("Deposited", {"amount": 5}), NO_STREAM),
...     ])
...     tx.execute(...)  # then the other writes

Append first, then write the rest: one ``append`` or ``append_many`` call, before any other
write, is what every backend takes (PostgreSQL requires it: positions follow transaction
ids; SQLite allows any order and any number of appends).

The events (validated and encoded as by ``store.append``, checked against
``expected_version`` in the transaction) and every row written through ``tx`` commit
together when the block ends, or not at all if it raises. Any failed statement dooms the
transaction. Subscribers of the store wake after the commit. The store's backend must have a
SQL database (SQLite or PostgreSQL; see :mod:`streamsource.eventstore.database`).

Differences from ``store.append``: an append whose expected version does not match raises
WrongExpectedVersion (there is no idempotent-retry lookup: the transaction that stored the
same ids committed or rolled back as a whole), and a soft-deleted stream is not re-created
with NO_STREAM. A refusal in any append of ``append_many`` (wrong expected version,
tombstone, an event id stored before) names its stream and leaves nothing written.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from streamsource.errors import DuplicateEventId, ProgrammingError
from streamsource.eventstore import appended
from streamsource.eventstore.codec import encode_events
from streamsource.eventstore.database import (
    Append,
    AsyncDatabase,
    AsyncTransaction,
    Database,
    Dialect,
    Transaction,
    require_database,
)
from streamsource.eventstore.events import ANY, AppendResult, ExpectedVersion, NewEvent
from streamsource.eventstore.validation import check_expected_version, check_stream_name
from streamsource.observability import metrics

Appends = Iterable[tuple[str, Iterable[NewEvent] | NewEvent, ExpectedVersion]]
"""What ``append_many`` takes: ``(stream, events, expected_version)`` per append."""


def encode_appends(appends: Appends) -> list[Append]:
    """Validate and encode every append of an ``append_many`` before anything is written."""
    if isinstance(appends, str | bytes | tuple):
        raise ProgrammingError(
            "append_many takes a list of (stream, events, expected_version) tuples,"
            f" got {type(appends).__name__}"
        )
    encoded: list[Append] = []
    seen: dict[Any, str] = {}
    for number, append in enumerate(appends, 1):
        if not isinstance(append, tuple) or len(append) != 3:
            raise ProgrammingError(
                f"append_many: append {number} must be a (stream, events, expected_version)"
                f" tuple, got {append!r:.80}"
            )
        stream, events, expected_version = append
        stream = check_stream_name(stream)
        expected = check_expected_version(expected_version, stream)
        records = encode_events(stream, events)
        for record in records:
            if record.id in seen:
                raise DuplicateEventId(
                    record.id, f"an event of append {seen[record.id]} of the same append_many"
                )
            seen[record.id] = f"{number} ({stream!r})"
        encoded.append((stream, records, expected))
    return encoded


class _Counts:
    """What a transaction appended, for the store's metrics once it commits."""

    __slots__ = ("appends", "events", "started")

    def __init__(self) -> None:
        self.appends = self.events = 0
        self.started = 0.0

    def starting(self) -> None:
        if not self.started:
            self.started = time.perf_counter()

    def add(self, appends: int, events: int) -> None:
        self.appends += appends
        self.events += events

    def committed(self, backend: str) -> None:
        instruments = metrics.INSTRUMENTS
        if instruments is not None and self.appends:
            metrics.count_append(instruments, backend, self.events, self.started, self.appends)


class UnitOfWork:
    """A transaction of an :class:`~streamsource.EventStore` (see the module docstring)."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.appended = False
        self.counts = _Counts()

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
        records = encode_events(stream, events)
        self.counts.starting()
        result = self.tx.append(stream, records, expected)
        self.appended = True
        self.counts.add(1, len(records))
        return result

    def append_many(self, appends: Appends) -> list[AppendResult]:
        """Append to several streams in this transaction, each ``(stream, events,
        expected_version)`` checked in order (an earlier append of the same stream counts);
        the results in the same order. One refusal fails the transaction."""
        encoded = encode_appends(appends)
        self.counts.starting()
        results = self.tx.append_many(encoded)
        self.appended = True
        self.counts.add(len(encoded), sum(len(records) for _, records, _ in encoded))
        return results

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
        self.counts = _Counts()

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
        records = encode_events(stream, events)
        self.counts.starting()
        result = await self.tx.append(stream, records, expected)
        self.appended = True
        self.counts.add(1, len(records))
        return result

    async def append_many(self, appends: Appends) -> list[AppendResult]:
        encoded = encode_appends(appends)
        self.counts.starting()
        results = await self.tx.append_many(encoded)
        self.appended = True
        self.counts.add(len(encoded), sum(len(records) for _, records, _ in encoded))
        return results

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
        work.counts.committed(recorder.backend)


@asynccontextmanager
async def async_unit_of_work(recorder: Any) -> AsyncIterator[AsyncUnitOfWork]:
    """An :class:`AsyncUnitOfWork` on ``recorder``'s database."""
    database: AsyncDatabase = require_database(recorder, "store.transaction()")
    async with database.transaction() as tx:
        work = AsyncUnitOfWork(tx)
        yield work
    if work.appended:
        appended.notify(recorder)
        work.counts.committed(recorder.backend)
