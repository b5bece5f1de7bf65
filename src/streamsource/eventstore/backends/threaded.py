"""An AsyncRecorder that runs a synchronous Recorder in worker threads.

Backends without a native asyncio driver (memory, SQLite) get their async API from this
adapter. Each call is one hop to a worker thread; a read moves a whole page of records per
hop (not one record), so an asyncio reader pays the thread hand-off once per page.

A sync recorder's read iterators must allow being advanced from different threads, one at a
time (the memory and SQLite backends borrow their resources per page, not per iterator).

Appends of many tasks share one hop when the recorder can take several at once
(:class:`EachAppender`, as SQLite's does): while one hand-off is in flight, the appends made
meanwhile queue on the loop, and the next hop carries all of them to the recorder's group
commit; the results come back with that hop and go to each task. A hop per append would cost
a thread wake-up and a GIL hand-over each, which measured as most of an append's time with 8
tasks writing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, runtime_checkable

from streamsource.errors import InterfaceError
from streamsource.eventstore import database as db
from streamsource.eventstore.database import Append, Database, Dialect, Transaction
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import (
    EventRecord,
    ReadAllFilter,
    Recorder,
    SnapshotRecord,
    StoredRecord,
    StreamInfo,
    Wakeups,
)

T = TypeVar("T")
Runner = Callable[..., Awaitable[Any]]

PAGE_SIZE = 1000
"""Records moved from the worker thread to the event loop per hop."""

DEFAULT_WORKERS = 16
"""Worker threads: enough for many concurrent appends to share a group commit."""


@runtime_checkable
class EachAppender(Protocol):
    """A sync recorder that takes several independent appends in one call."""

    max_appends_each: int

    def append_each(self, appends: Sequence[Append]) -> list[AppendResult | Exception]:
        """Each append's result or error, in order, as ``append`` would return or raise it."""
        ...


class SharedHops:
    """Carries the appends of many tasks to an :class:`EachAppender`, one hop at a time.

    At most one hop is in flight; appends made meanwhile queue (on the loop, so no lock) and
    go together in the next one. Cancelling a waiting task cancels its future: if its append
    is still queued it is dropped before its hop, never written; if it is in flight it is
    written once and only its result is lost, as with any cancelled call.
    """

    def __init__(self, recorder: EachAppender, executor: ThreadPoolExecutor) -> None:
        self._recorder = recorder
        self._executor = executor
        self._queued: list[tuple[Append, asyncio.Future[AppendResult]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # of the hop in flight, if any
        self._drained: asyncio.Event | None = None  # set when nothing is queued nor in flight

    async def append(self, append: Append) -> AppendResult:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise InterfaceError("the event store is in use by another event loop")
            # A loop closed with a hop in flight never got its results: start afresh.
            self._queued, self._loop = [], loop
            # Not at once: the tasks made ready with this one (a gather) queue first.
            loop.call_soon(self._send)
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._queued.append((append, future))
        return await future

    async def drain(self) -> None:
        """Wait until every append accepted so far has its outcome."""
        if self._loop is asyncio.get_running_loop():
            self._drained = asyncio.Event()
            await self._drained.wait()

    def _send(self) -> None:
        loop = self._loop
        assert loop is not None
        live = [entry for entry in self._queued if not entry[1].done()]
        limit = self._recorder.max_appends_each
        batch, self._queued = live[:limit], live[limit:]
        if not batch:
            self._loop = None
            if self._drained is not None:
                self._drained.set()
            return
        try:
            hop = loop.run_in_executor(
                self._executor, self._recorder.append_each, [append for append, _ in batch]
            )
        except RuntimeError:  # the executor is shut down: the store was closed
            self._fail(batch + self._queued, InterfaceError("the event store is closed"))
            self._queued, self._loop = [], None
            return
        hop.add_done_callback(functools.partial(self._deliver, batch))

    def _deliver(
        self,
        batch: list[tuple[Append, asyncio.Future[AppendResult]]],
        hop: asyncio.Future[list[AppendResult | Exception]],
    ) -> None:
        error = hop.exception()
        if error is not None:  # the call as a whole failed: each append gets that error
            self._fail(batch, error)
        else:
            for (_, future), outcome in zip(batch, hop.result(), strict=True):
                if future.done():  # cancelled while in flight
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        self._send()

    @staticmethod
    def _fail(
        entries: list[tuple[Append, asyncio.Future[AppendResult]]], error: BaseException
    ) -> None:
        for _, future in entries:
            if not future.done():
                future.set_exception(error)


class ThreadedAsyncRecorder:
    """The :class:`~streamsource.eventstore.recorder.AsyncRecorder` face of a sync recorder."""

    def __init__(self, recorder: Recorder, *, max_workers: int = DEFAULT_WORKERS) -> None:
        self._recorder = recorder
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="streamsource-store")
        self._closed = False
        self._database: ThreadedAsyncDatabase | None = None
        self._hops: SharedHops | None = None
        if isinstance(recorder, EachAppender):
            self._hops = SharedHops(recorder, self._executor)

    @property
    def recorder(self) -> Recorder:
        """The synchronous recorder doing the work."""
        return self._recorder

    @property
    def backend(self) -> str:
        return self._recorder.backend

    @property
    def wakeups(self) -> Wakeups:
        """The sync recorder's: the adapter is the same store."""
        return self._recorder.wakeups

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def database(self) -> ThreadedAsyncDatabase | None:
        """The sync recorder's database, its calls run in worker threads (None if it has none)."""
        database = self._recorder.database
        if database is None:
            return None
        if self._database is None or self._database.sync is not database:
            self._database = ThreadedAsyncDatabase(database, self._run)
        return self._database

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise InterfaceError("the event store is closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(function, *args, **kwargs) if kwargs else function
        return await loop.run_in_executor(self._executor, call, *(() if kwargs else args))

    async def _paged(self, open_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        iterator = await self._run(open_iterator)
        try:
            while True:
                page = await self._run(_next_page, iterator)
                for item in page:
                    yield item
                if len(page) < PAGE_SIZE:
                    return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None and not self._closed:
                close()  # releases a generator's resources; cheap, so on the loop

    async def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        if self._database is not None:
            db.check_not_inside(self._database, "append")
        if self._hops is None:
            return await self._run(self._recorder.append, stream, records, expected)
        if self._closed:
            raise InterfaceError("the event store is closed")
        return await self._hops.append((stream, records, expected))

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[StoredRecord]:
        return self._paged(
            functools.partial(
                self._recorder.read_stream,
                stream,
                from_version=from_version,
                to_version=to_version,
                backwards=backwards,
                limit=limit,
            )
        )

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> AsyncIterator[StoredRecord]:
        return self._paged(
            functools.partial(
                self._recorder.read_all,
                from_position=from_position,
                backwards=backwards,
                limit=limit,
                filter=filter,
            )
        )

    async def stream_info(self, stream: str) -> StreamInfo:
        return await self._run(self._recorder.stream_info, stream)

    async def set_stream_metadata(self, stream: str, metadata: bytes) -> None:
        await self._run(self._recorder.set_stream_metadata, stream, metadata)

    async def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool:
        return await self._run(
            self._recorder.replace_stream_metadata,
            stream,
            metadata,
            version=version,
            previous=previous,
        )

    async def remove_events(
        self,
        stream: str,
        before_version: int,
        *,
        hard_deleted: bool,
        metadata: bytes | None,
        limit: int,
    ) -> int:
        return await self._run(
            self._recorder.remove_events,
            stream,
            before_version,
            hard_deleted=hard_deleted,
            metadata=metadata,
            limit=limit,
        )

    async def reclaim_space(self, *, vacuum: bool = False) -> None:
        await self._run(self._recorder.reclaim_space, vacuum=vacuum)

    async def hard_delete(self, stream: str, expected: ExpectedVersion) -> None:
        await self._run(self._recorder.hard_delete, stream, expected)

    def list_streams(self, after: str = "") -> AsyncIterator[StreamInfo]:
        return self._paged(lambda: self._recorder.list_streams(after))

    async def head_position(self) -> int:
        return await self._run(self._recorder.head_position)

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        await self._run(self._recorder.save_snapshot, snapshot)

    async def load_snapshot(
        self, stream: str, max_version: int | None = None
    ) -> SnapshotRecord | None:
        return await self._run(self._recorder.load_snapshot, stream, max_version)

    async def stats(self) -> dict[str, int | str]:
        return await self._run(self._recorder.stats)

    async def close(self) -> None:
        if self._closed:
            return
        if self._hops is not None:
            await self._hops.drain()  # the appends already accepted finish first
        await self._run(self._recorder.close)
        self._closed = True
        # workers finish what they run; nothing new can be submitted after this
        self._executor.shutdown(wait=False)


class ThreadedAsyncTransaction:
    """An :class:`~streamsource.eventstore.database.AsyncTransaction` over a sync one."""

    def __init__(self, tx: Transaction, run: Runner) -> None:
        self.sync = tx
        self._run = run

    @property
    def dialect(self) -> Dialect:
        return self.sync.dialect

    @property
    def connection(self) -> Any:
        return self.sync.connection

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._run(self.sync.execute, sql, params)
        return rows

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._run(self.sync.executemany, sql, rows)

    async def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        result: AppendResult = await self._run(self.sync.append, stream, records, expected)
        return result

    async def append_many(self, appends: Sequence[Append]) -> list[AppendResult]:
        results: list[AppendResult] = await self._run(self.sync.append_many, appends)
        return results


class ThreadedAsyncDatabase:
    """An :class:`~streamsource.eventstore.database.AsyncDatabase` over a sync one.

    Each transaction runs on a worker thread of its own, from entering to leaving: a sync
    transaction belongs to the thread that opened it (its context marks the store as inside
    a transaction), and no other task's call may run on that thread meanwhile.
    """

    def __init__(self, database: Database, run: Runner) -> None:
        self.sync = database
        self._run = run  # the recorder's: refuses once the store is closed

    @property
    def dialect(self) -> Dialect:
        return self.sync.dialect

    @property
    def where(self) -> str:
        return self.sync.where

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[ThreadedAsyncTransaction]:
        db.check_not_inside(self, "a transaction")
        await self._run(_nothing)  # the store is open
        worker = ThreadPoolExecutor(1, thread_name_prefix="streamsource-tx")

        async def on_worker(function: Callable[..., T], *args: Any) -> T:
            return await asyncio.wrap_future(worker.submit(function, *args))

        try:
            manager = self.sync.transaction()
            tx = await on_worker(manager.__enter__)
            token = db.enter(self)
            try:
                yield ThreadedAsyncTransaction(tx, on_worker)
            except BaseException as exc:
                db.leave(self, token)
                if not await on_worker(manager.__exit__, type(exc), exc, exc.__traceback__):
                    raise
            else:
                db.leave(self, token)
                await on_worker(manager.__exit__, None, None, None)
        finally:
            worker.shutdown(wait=False)


def _nothing() -> None:
    pass


def _next_page(iterator: Iterator[T]) -> list[T]:
    return list(itertools.islice(iterator, PAGE_SIZE))
