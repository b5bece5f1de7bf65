"""The consumer-group tables for asyncio code: the same tables, rows and statements as
:mod:`.group_tables`, through the asyncio database the store hands out.

Sync and asyncio consumers of one group can run side by side: they share the tables (and,
on the memory backend, the in-memory state with its lock).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from streamsource.errors import InterfaceError
from streamsource.eventstore.backends.threaded import ThreadedAsyncRecorder
from streamsource.eventstore.database import AsyncDatabase, AsyncTransaction, ensure_tables_async
from streamsource.eventstore.recorder import AsyncRecorder
from streamsource.eventstore.subscriptions.group_tables import (
    Entry,
    Group,
    GroupStatements,
    MemoryGroupTables,
)

_LOCK_POLL = 0.001
"""Seconds between tries for the memory state's thread lock (held by a sync consumer)."""


class AsyncGroupTables(Protocol):
    """:class:`~.group_tables.GroupTables`, awaited."""

    def transaction(self, name: str) -> AbstractAsyncContextManager[None]: ...

    async def group(self, name: str) -> Group | None: ...

    async def create_group(self, name: str, category: str) -> None: ...

    async def set_checkpoint(self, name: str, position: int) -> None: ...

    async def set_replayed(self, name: str, version: int) -> None: ...

    async def claimable(self, name: str, now: int, limit: int) -> list[Entry]: ...

    async def lease(
        self, name: str, position: int, consumer: str, until: int, attempts: int
    ) -> None: ...

    async def add(self, name: str, entry: Entry, until: int) -> None: ...

    async def entry(self, name: str, position: int) -> Entry | None: ...

    async def release(self, name: str, position: int, available_at: int, error: str) -> None: ...

    async def remove(self, name: str, position: int) -> None: ...

    async def next_expiry(self, name: str) -> int | None: ...

    async def in_flight(self, name: str) -> int: ...


class AsyncSqlGroupTables:
    """The group tables in the store's own database, through its asyncio transactions."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._database = database
        self._sql = GroupStatements.of(database.dialect)
        self._tx: AsyncTransaction | None = None

    async def create_tables(self) -> None:
        """Create the tables if they are missing (racing creators are fine)."""
        await ensure_tables_async(self._database, *self._sql.create)

    async def _all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._tx is None:
            raise InterfaceError("group tables are used outside their transaction")
        return await self._tx.execute(sql, params)

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[None]:
        async with self._database.transaction() as tx:
            self._tx = tx
            try:
                await tx.execute(self._sql.lock_group, (name,))
                yield
            finally:
                self._tx = None

    async def group(self, name: str) -> Group | None:
        rows = await self._all(self._sql.group, (name,))
        return Group(*rows[0]) if rows else None

    async def create_group(self, name: str, category: str) -> None:
        await self._all(self._sql.create_group, (name, category))

    async def set_checkpoint(self, name: str, position: int) -> None:
        await self._all(self._sql.set_checkpoint, (position, name))

    async def set_replayed(self, name: str, version: int) -> None:
        await self._all(self._sql.set_replayed, (version, name))

    async def claimable(self, name: str, now: int, limit: int) -> list[Entry]:
        return [Entry(*row) for row in await self._all(self._sql.claimable, (name, now, limit))]

    async def lease(
        self, name: str, position: int, consumer: str, until: int, attempts: int
    ) -> None:
        await self._all(self._sql.lease, (consumer, until, attempts, name, position))

    async def add(self, name: str, entry: Entry, until: int) -> None:
        params = (name, entry.position, entry.attempts, entry.replays, entry.consumer, until)
        await self._all(self._sql.add, params)

    async def entry(self, name: str, position: int) -> Entry | None:
        rows = await self._all(self._sql.entry, (name, position))
        return Entry(*rows[0]) if rows else None

    async def release(self, name: str, position: int, available_at: int, error: str) -> None:
        await self._all(self._sql.release, (available_at, error, name, position))

    async def remove(self, name: str, position: int) -> None:
        await self._all(self._sql.remove, (name, position))

    async def next_expiry(self, name: str) -> int | None:
        rows = await self._all(self._sql.next_expiry, (name,))
        return None if rows[0][0] is None else int(rows[0][0])

    async def in_flight(self, name: str) -> int:
        return int((await self._all(self._sql.in_flight, (name,)))[0][0])


_turns: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
_turns_lock = threading.Lock()


class AsyncMemoryGroupTables:
    """The memory backend's group tables for asyncio: the sync tables' state and lock.

    The state's lock is a thread lock that sync consumers hold while they work; tasks take
    it one at a time (an asyncio lock first) without blocking the event loop.
    """

    def __init__(self, recorder: Any) -> None:
        self._tables = MemoryGroupTables(recorder)
        # tasks run on one thread, where the reentrant thread lock would let them all in
        with _turns_lock:
            turn = _turns.get(recorder)
            if turn is None:
                turn = _turns[recorder] = asyncio.Lock()
        self._turn = turn

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[None]:
        async with self._turn:
            lock = self._tables.lock  # the sync consumers' lock of this store's groups
            while not lock.acquire(blocking=False):
                await asyncio.sleep(_LOCK_POLL)  # a sync consumer holds it for microseconds
            try:
                yield
            finally:
                lock.release()

    async def group(self, name: str) -> Group | None:
        return self._tables.group(name)

    async def create_group(self, name: str, category: str) -> None:
        self._tables.create_group(name, category)

    async def set_checkpoint(self, name: str, position: int) -> None:
        self._tables.set_checkpoint(name, position)

    async def set_replayed(self, name: str, version: int) -> None:
        self._tables.set_replayed(name, version)

    async def claimable(self, name: str, now: int, limit: int) -> list[Entry]:
        return self._tables.claimable(name, now, limit)

    async def lease(
        self, name: str, position: int, consumer: str, until: int, attempts: int
    ) -> None:
        self._tables.lease(name, position, consumer, until, attempts)

    async def add(self, name: str, entry: Entry, until: int) -> None:
        self._tables.add(name, entry, until)

    async def entry(self, name: str, position: int) -> Entry | None:
        return self._tables.entry(name, position)

    async def release(self, name: str, position: int, available_at: int, error: str) -> None:
        self._tables.release(name, position, available_at, error)

    async def remove(self, name: str, position: int) -> None:
        self._tables.remove(name, position)

    async def next_expiry(self, name: str) -> int | None:
        return self._tables.next_expiry(name)

    async def in_flight(self, name: str) -> int:
        return self._tables.in_flight(name)


async def open_async_group_tables(recorder: AsyncRecorder) -> AsyncGroupTables:
    """The group tables of the store behind ``recorder`` (see ``open_group_tables``)."""
    database = recorder.database
    if database is None:
        # a backend without SQL (memory) reaches asyncio through the thread adapter; its
        # sync recorder keys the state that sync consumers of the group use too
        sync = recorder.recorder if isinstance(recorder, ThreadedAsyncRecorder) else recorder
        return AsyncMemoryGroupTables(sync)
    tables = AsyncSqlGroupTables(database)
    await tables.create_tables()
    return tables
