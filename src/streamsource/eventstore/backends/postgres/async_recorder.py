"""The asyncio PostgreSQL recorder: the sync recorder's SQL and rules on psycopg's async pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool

from streamsource.errors import InterfaceError, StoreError, StreamDeleted
from streamsource.eventstore import database as db
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import (
    EventRecord,
    ReadAllFilter,
    SnapshotRecord,
    StoredRecord,
    StreamInfo,
)
from streamsource.observability import metrics

from . import groupcommit as gc
from . import own_writes
from . import queries as q
from .database import AsyncPostgresDatabase
from .faults import (
    DRIVER_ERRORS,
    CannotConnect,
    PoolExhausted,
    is_connection_failure,
    map_exceptions,
    translate,
)
from .notifier import AsyncNotifier, wakeups_of
from .own_writes import OwnWrites
from .recorder import prepare
from .settings import Settings

_RECORD_ROW = args_row(StoredRecord)

AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


class AsyncPostgresRecorder:
    """An :class:`~streamsource.eventstore.recorder.AsyncRecorder` on PostgreSQL.

    Open it with :meth:`open` (it migrates the store, then opens the pool).
    """

    backend = "postgresql"

    def __init__(self, settings: Settings, pool: AsyncConnectionPool[AsyncConn]) -> None:
        self.settings = settings
        self.where = settings.where
        self._pool = pool
        self._closed = False
        self._notifier = AsyncNotifier(settings.conninfo, settings.schema)
        self._own = OwnWrites()
        self._queue = gc.Queue()  # used on the event loop only: no lock
        self._last_batch = 0  # appends in the last batch sent (only leaders use it)
        self.appends = 0
        self.database = AsyncPostgresDatabase(pool, self.where, self._fail, self._appended)
        """The store's schema, for tables beside the events (see :mod:`.database`)."""
        self.wakeups = wakeups_of(settings)

    @property
    def closed(self) -> bool:
        return self._closed

    def _appended(self, position: int) -> None:
        """A transaction of the store's database appended up to ``position`` and committed."""
        self.appends += 1
        self._own.wrote(position)
        self._notifier.appended()

    @classmethod
    async def open(cls, settings: Settings) -> AsyncPostgresRecorder:
        """Migrate (in a worker thread: it is a few blocking statements), then open the pool."""
        await asyncio.to_thread(prepare, settings)
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            settings.conninfo, **q.pool_options(settings)
        )
        try:
            with map_exceptions(settings.where, settings.pool_timeout):
                await pool.open(wait=True, timeout=q.pool_open_timeout(settings))
        except BaseException:
            await pool.close()  # its worker tasks would keep trying to connect
            raise
        return cls(settings, pool)

    # -- plumbing ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError(f"{self.where}: the store is closed")

    async def _fail(self, exc: Exception) -> Exception:
        error = translate(exc, self.where, self.settings.pool_timeout)
        if isinstance(error, PoolExhausted):
            # The pool also times out when it cannot connect at all: say which it was.
            try:
                with map_exceptions(self.where, connecting=True):
                    await (await psycopg.AsyncConnection.connect(self.settings.conninfo)).close()
            except CannotConnect as unreachable:
                return unreachable
            return error
        if is_connection_failure(exc):
            try:
                await self._pool.check()  # drop stale connections before the caller retries
            except Exception:
                pass
        return error

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self._check_open()
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(sql, params, binary=True)
                return await cursor.fetchall() if cursor.description is not None else []
        except DRIVER_ERRORS as exc:
            raise await self._fail(exc) from exc

    async def _append_rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """:meth:`_fetch` for a call of an append function (see the sync recorder's)."""
        self._check_open()
        try:
            async with self._pool.connection() as conn:
                try:
                    cursor = await conn.execute(sql, params, binary=True)
                    return await cursor.fetchall()
                except psycopg.Error as exc:
                    if q.may_hold_position_lock(exc, conn):
                        try:
                            await conn.execute(q.RELEASE_POSITION_LOCK)
                        except psycopg.Error:
                            pass  # a broken connection: the server dropped its locks
                    raise
                except BaseException:
                    # interrupted mid-call (cancelled, Ctrl-C): end the session, and with it
                    # any lock it may hold, rather than pool a connection in doubt
                    conn.pgconn.finish()
                    raise
        except DRIVER_ERRORS as exc:
            raise await self._fail(exc) from exc

    async def _records(self, sql: str, params: tuple[Any, ...]) -> list[StoredRecord]:
        self._check_open()
        try:
            async with self._pool.connection() as conn:
                cursor = conn.cursor(binary=True, row_factory=_RECORD_ROW)
                await cursor.execute(sql, params)
                return await cursor.fetchall()
        except DRIVER_ERRORS as exc:
            raise await self._fail(exc) from exc

    # -- writes -----------------------------------------------------------------------------

    async def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        """Append atomically after checking ``expected``; idempotent for a retried append.

        Concurrent appends (tasks) share round trips and commits (see :mod:`.groupcommit`)."""
        db.check_not_inside(self.database, "append")
        if not records:
            return q.empty_append(stream, expected, await self._fetch(q.STREAM_STATE, (stream,)))
        self._check_open()
        job = gc.Job(stream, records, expected)
        if not self._queue.arrive(job):
            job.waiter = asyncio.get_running_loop().create_future()
            try:
                await job.waiter
            except BaseException:  # cancelled while queued (or while being promoted)
                successor = self._queue.withdraw(job)
                if successor is not None:
                    successor.waiter.set_result(None)  # it leads in our place
                raise
        if job.outcome is None:  # we lead: at once, or promoted by the previous leader
            await self._lead(job)
        return await self._settle(job)

    async def _lead(self, own: gc.Job) -> None:
        if self._last_batch > 1:
            await self._gather()
        batch = self._queue.take(own)
        self._last_batch = len(batch)
        metrics.count_batch(self.backend, len(batch))
        try:
            if len(batch) == 1:
                await self._try_one(own)
            else:
                await self._send_batch(batch)
        except BaseException:
            for job in batch:
                if job.outcome is None:
                    job.outcome = gc.ALONE
            raise
        finally:
            successor = self._queue.finish(batch)
            for job in batch:
                if job.waiter is not None and not job.waiter.done():
                    job.waiter.set_result(None)
            while successor is not None and successor.waiter.done():
                # its task was cancelled and has not withdrawn yet: pass it over
                successor = self._queue.withdraw(successor)
            if successor is not None:
                successor.waiter.set_result(None)  # it leads the next batch

    async def _gather(self) -> None:
        """Let the tasks just woken by the last commit queue for this one (see the sync
        recorder's ``_gather``): yield to the loop while that brings more of them."""
        for _ in gc.gathering(self._queue, self._last_batch):
            await asyncio.sleep(0)

    async def _try_one(self, job: gc.Job) -> None:
        """A leader's lone append (see the sync recorder's ``_try_one``)."""
        if len(job.records) > 1:
            await self._send_batch([job])
            return
        (record,) = job.records
        code = q.expected_code(job.expected)
        params = (job.stream, code, record.id, record.type, record.data, record.metadata)
        try:
            rows = await self._append_rows(q.TRY_APPEND_ONE, params)
        except StoreError as exc:
            job.outcome = exc
            return
        version, position = rows[0]
        busy = version is None
        job.outcome = gc.ALONE if busy else AppendResult(version=version, position=position)

    async def _send_one(self, job: gc.Job) -> None:
        """Send one append by itself: its outcome is its result or the StoreError raised."""
        try:
            rows = await self._append_rows(*q.append_call(job.stream, job.expected, job.records))
        except StoreError as exc:
            job.outcome = exc
            return
        version, position = rows[0]
        job.outcome = AppendResult(version=version, position=position)

    async def _send_batch(self, batch: list[gc.Job]) -> None:
        """Send several appends as one call; each gets its own outcome."""
        try:
            rows = await self._append_rows(*gc.batch_call(batch))
        except StoreError as exc:
            gc.batch_failed(batch, exc)
            return
        gc.batch_outcomes(batch, rows[0])

    async def _settle(self, job: gc.Job) -> AppendResult:
        """The caller's result (see the sync recorder's ``_settle``)."""
        if job.outcome is gc.ALONE:
            await self._send_one(job)
        decision = gc.decide(job)
        if isinstance(decision, AppendResult):
            self.appends += 1
            self._own.wrote(decision.position)
            self._notifier.appended()
            return decision
        if decision.maybe_retry:
            original = await self._earlier_result(job.stream, job.records)
            if original is not None:
                return original
        raise decision.error from None

    async def _earlier_result(
        self, stream: str, records: Sequence[EventRecord]
    ) -> AppendResult | None:
        rows = await self._fetch(q.STORED_IDS, ([r.id for r in records],))
        return q.earlier_result(stream, records, rows)

    async def hard_delete(self, stream: str, expected: ExpectedVersion) -> None:
        """Tombstone the stream: its events stay in the log, every later append fails."""
        try:
            await self._fetch(q.HARD_DELETE, (stream, q.expected_code(expected)))
        except StoreError as exc:
            refused = q.refusal(stream, expected, (), exc)
            if refused is None:
                raise
            raise refused.error from None

    async def set_stream_metadata(self, stream: str, metadata: bytes) -> None:
        """Store the stream's encoded metadata (replacing any earlier one)."""
        if not await self._fetch(q.SET_METADATA, (stream, metadata)):
            raise StreamDeleted(stream)

    async def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool:
        """Store the metadata if the stream is unchanged since the caller read it."""
        params = (metadata, stream, previous, stream, version)
        return bool(await self._fetch(q.REPLACE_METADATA, params))

    async def remove_events(
        self,
        stream: str,
        before_version: int,
        *,
        hard_deleted: bool,
        metadata: bytes | None,
        limit: int,
    ) -> int:
        """Remove one batch of the stream's hidden events (see the Recorder protocol)."""
        params = q.remove_events_params(stream, before_version, hard_deleted, metadata, limit)
        return int((await self._fetch(q.REMOVE_EVENTS, params))[0][0])

    async def reclaim_space(self, *, vacuum: bool = False) -> None:
        """Nothing to do: autovacuum makes the removed rows' space reusable."""
        self._check_open()

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Store a snapshot apart from the events (replacing one at the same version)."""
        await self._fetch(q.SAVE_SNAPSHOT, q.snapshot_params(snapshot))

    # -- reads ------------------------------------------------------------------------------

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[StoredRecord]:
        """The events of one stream, lazily, from ``from_version`` to ``to_version`` inclusive."""
        self._check_open()
        return self._pages(q.StreamPager(stream, from_version, to_version, backwards, limit))

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> AsyncIterator[StoredRecord]:
        """The settled global log in position order, lazily, optionally filtered."""
        self._check_open()
        return self._log_pages(q.LogPager(from_position, backwards, limit, filter))

    async def _log_pages(self, pager: q.LogPager) -> AsyncIterator[StoredRecord]:
        await self._settle_own_writes()
        async for record in self._pages(pager):
            yield record

    async def _settle_own_writes(self) -> int | None:
        """Wait (briefly) until this recorder's own appends are settled; the head if read."""
        target = self._own.ahead()
        if not target:
            return None
        deadline = time.monotonic() + own_writes.WAIT
        while True:
            head = int((await self._fetch(q.HEAD_POSITION, ()))[0][0])
            if head >= target or time.monotonic() >= deadline:
                self._own.settled(max(head, target))
                return head
            await asyncio.sleep(own_writes.PAUSE)

    async def _pages(self, pager: q.KeysetPager) -> AsyncIterator[StoredRecord]:
        while (query := pager.next_query()) is not None:
            sql, params, size = query
            page = await self._records(sql, params)
            for record in page:
                yield record
            if not pager.after_page(page, size):
                return

    async def stream_info(self, stream: str) -> StreamInfo:
        """The stream's last version, tombstone and metadata."""
        return q.stream_info(stream, await self._fetch(q.STREAM_INFO, (stream,)))

    def list_streams(self, after: str = "") -> AsyncIterator[StreamInfo]:
        """Every stream that has events, metadata or a tombstone, in name order."""
        self._check_open()
        return self._list_streams(after)

    async def _list_streams(self, after: str) -> AsyncIterator[StreamInfo]:
        while True:
            rows = await self._fetch(q.LIST_STREAMS, (after, q.PAGE_SIZE))
            for row in rows:
                yield q.info_of(row)
            if len(rows) < q.PAGE_SIZE:
                return
            after = rows[-1][0]

    async def head_position(self) -> int:
        """The last settled global position, 0 when the store is empty."""
        head = await self._settle_own_writes()
        return head if head is not None else int((await self._fetch(q.HEAD_POSITION, ()))[0][0])

    async def load_snapshot(
        self, stream: str, max_version: int | None = None
    ) -> SnapshotRecord | None:
        """The newest snapshot of ``stream`` whose version is <= ``max_version``."""
        return q.snapshot_of(
            await self._fetch(q.LOAD_SNAPSHOT, q.load_snapshot_params(stream, max_version))
        )

    async def stats(self) -> dict[str, int | str]:
        """Counts of events, streams and snapshots, and how the store is set up."""
        counts = await self._fetch(q.STATS, ())
        pool = self._pool.get_stats()
        head = await self.head_position()
        queue = self._queue
        return q.stats_of(
            self.settings, counts, head, self.appends, pool, queue.batches, queue.appends
        )

    async def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._notifier.close()
        await self._pool.close()
