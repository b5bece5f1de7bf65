"""The synchronous PostgreSQL recorder: a psycopg connection pool, one statement per write."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import args_row
from psycopg_pool import ConnectionPool

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

from . import direct, own_writes
from . import groupcommit as gc
from . import queries as q
from .database import PostgresDatabase
from .faults import (
    DRIVER_ERRORS,
    CannotConnect,
    PoolExhausted,
    is_connection_failure,
    map_exceptions,
    translate,
)
from .notifier import Notifier, wakeups_of
from .own_writes import OwnWrites
from .schema import check_current, migrate
from .settings import Settings

_RECORD_ROW = args_row(StoredRecord)
T = TypeVar("T")

Conn = psycopg.Connection[tuple[Any, ...]]


def connect(settings: Settings) -> Conn:
    """One autocommit connection, outside the pool (migrations, the CLI)."""
    with map_exceptions(settings.where, connecting=True):
        return psycopg.connect(settings.conninfo, autocommit=True)


def prepare(settings: Settings) -> None:
    """Migrate the store (or check that it is migrated, with ``migrate=False``).

    A direct connection, not the pool's: a wrong password or an unreachable host fails here
    at once with libpq's own reason, instead of as a pool timeout later.
    """
    with connect(settings) as conn, map_exceptions(settings.where):
        if settings.migrate:
            migrate(conn, settings.schema, settings.where)
        else:
            check_current(conn, settings.schema, settings.where)


class PostgresRecorder:
    """A :class:`~streamsource.eventstore.recorder.Recorder` on PostgreSQL. Thread-safe."""

    backend = "postgresql"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.where = settings.where
        prepare(settings)
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            settings.conninfo, **q.pool_options(settings)
        )
        try:
            with map_exceptions(self.where, settings.pool_timeout):
                self._pool.open(wait=True, timeout=q.pool_open_timeout(settings))
        except BaseException:
            self._pool.close()  # its worker threads would keep trying to connect
            raise
        self._closed = False
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._last_batch = 0  # appends in the last batch sent (only leaders use it)
        self._queue = gc.Queue()
        self._notifier = Notifier(settings.conninfo, settings.schema)
        self._own = OwnWrites()
        self.appends = 0
        self.database = PostgresDatabase(
            self._pool, self.where, self._fail, self._appended, settings.conninfo
        )
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

    # -- plumbing ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError(f"{self.where}: the store is closed")

    def _fail(self, exc: Exception) -> Exception:
        error = translate(exc, self.where, self.settings.pool_timeout)
        if isinstance(error, PoolExhausted):
            # The pool also times out when it cannot connect at all: say which it was.
            try:
                connect(self.settings).close()
            except CannotConnect as unreachable:
                return unreachable
            return error
        if is_connection_failure(exc):
            # the server went away: drop every idle connection now, so the caller's retry
            # gets a fresh one instead of the next stale one
            try:
                self._pool.check()
            except Exception:
                pass
        return error

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self._check_open()
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(sql, params, binary=True)
                return cursor.fetchall() if cursor.description is not None else []
        except DRIVER_ERRORS as exc:
            raise self._fail(exc) from exc

    def _append_on(self, call: Callable[[Conn], T]) -> T:
        """Run the append ``call`` on a pooled connection: one round trip, and no position
        lock left behind on the connection if it failed half-way."""
        self._check_open()
        try:
            with self._pool.connection() as conn:
                try:
                    return call(conn)
                except psycopg.Error as exc:
                    if q.may_hold_position_lock(exc, conn):
                        try:
                            conn.execute(q.RELEASE_POSITION_LOCK)
                        except psycopg.Error:
                            pass  # a broken connection: the server dropped its locks
                    raise
                except BaseException:
                    # interrupted mid-call (cancelled, Ctrl-C): end the session, and with it
                    # any lock it may hold, rather than pool a connection in doubt
                    conn.pgconn.finish()
                    raise
        except DRIVER_ERRORS as exc:
            raise self._fail(exc) from exc

    def _records(self, sql: str, params: tuple[Any, ...]) -> list[StoredRecord]:
        self._check_open()
        try:
            with self._pool.connection() as conn:
                cursor = conn.cursor(binary=True, row_factory=_RECORD_ROW)
                return cursor.execute(sql, params).fetchall()
        except DRIVER_ERRORS as exc:
            raise self._fail(exc) from exc

    # -- writes -----------------------------------------------------------------------------

    def append(
        self, stream: str, records: Sequence[EventRecord], expected: ExpectedVersion
    ) -> AppendResult:
        """Append atomically after checking ``expected``; idempotent for a retried append.

        Concurrent appends share round trips and commits (see :mod:`.groupcommit`)."""
        db.check_not_inside(self.database, "append")
        if not records:
            return q.empty_append(stream, expected, self._fetch(q.STREAM_STATE, (stream,)))
        self._check_open()
        job = gc.Job(stream, records, expected)
        with self._queue_lock:
            lead = self._queue.arrive(job)
            if not lead:
                job.waiter = _thread.allocate_lock()
                job.waiter.acquire()
        if not lead:
            try:
                job.waiter.acquire()
            except BaseException:  # e.g. KeyboardInterrupt while queued
                self._abandon(job)
                raise
            lead = job.outcome is None  # promoted by the previous leader
        if lead:
            self._lead(job)
        return self._settle(job)

    def _abandon(self, job: gc.Job) -> None:
        with self._queue_lock:
            successor = self._queue.withdraw(job)
        if successor is not None:
            successor.waiter.release()  # it leads in our place

    def _lead(self, own: gc.Job) -> None:
        if self._last_batch > 1:
            self._gather()
        with self._queue_lock:
            batch = self._queue.take(own)
        self._last_batch = len(batch)
        metrics.count_batch(self.backend, len(batch))
        try:
            if len(batch) == 1:
                self._try_one(own)
            else:
                self._send_batch(batch)
        except BaseException:
            for job in batch:
                if job.outcome is None:
                    job.outcome = gc.ALONE
            raise
        finally:
            with self._queue_lock:
                successor = self._queue.finish(batch)
            for job in batch:
                if job.waiter is not None and job is not own:
                    job.waiter.release()
            if successor is not None:
                successor.waiter.release()  # it leads the next batch

    def _gather(self) -> None:
        """Let the writers just woken by the last commit queue for this one (as many as it had).

        They need the GIL to get here, which the leader holds: yield it while that brings
        more of them (at most a few tries without a newcomer, and GATHER seconds)."""
        for _ in gc.gathering(self._queue, self._last_batch):
            time.sleep(0)

    def _try_one(self, job: gc.Job) -> None:
        """A leader's lone append: sent unless another transaction holds its stream (then
        its outcome is ALONE: its caller sends it, outside the queue, and waits)."""
        if len(job.records) > 1:
            self._send_batch([job])
            return
        record = job.records[0]
        stream, code = job.stream, q.expected_code(job.expected)

        def call(conn: Conn) -> tuple[int, int] | None:
            return direct.append_event(
                conn,
                stream,
                code,
                record.id.bytes,
                record.type,
                record.data,
                record.metadata,
                wait=False,
            )

        try:
            done = self._append_on(call)
        except StoreError as exc:
            job.outcome = exc
            return
        job.outcome = gc.ALONE if done is None else AppendResult(*done)

    def _send_one(self, job: gc.Job) -> None:
        """Send one append by itself, waiting for its stream if another transaction holds
        it: its outcome is its result or the StoreError raised."""
        records = job.records
        code = q.expected_code(job.expected)
        call: Callable[[Conn], tuple[int, int]]
        if len(records) == 1:  # the common case, on libpq directly (see .direct)
            record = records[0]
            stream = job.stream

            def call(conn: Conn) -> tuple[int, int]:
                done = direct.append_event(
                    conn, stream, code, record.id.bytes, record.type, record.data, record.metadata
                )
                assert done is not None  # it waits for the stream
                return done
        else:
            sql, params = q.append_call(job.stream, job.expected, records)

            def call(conn: Conn) -> tuple[int, int]:
                version, position = conn.execute(sql, params, binary=True).fetchall()[0]
                return version, position

        try:
            version, position = self._append_on(call)
        except StoreError as exc:
            job.outcome = exc
            return
        job.outcome = AppendResult(version=version, position=position)

    def _send_batch(self, batch: list[gc.Job]) -> None:
        """Send several appends as one call; each gets its own outcome."""
        sql, params = gc.batch_call(batch)

        def call(conn: Conn) -> Any:
            return conn.execute(sql, params, binary=True).fetchone()

        try:
            row = self._append_on(call)
        except StoreError as exc:
            gc.batch_failed(batch, exc)
            return
        gc.batch_outcomes(batch, row)

    def _settle(self, job: gc.Job) -> AppendResult:
        """The caller's result from its job's outcome: refusals as the one-append path has
        them (an identical earlier append is a success), faults raised."""
        if job.outcome is gc.ALONE:
            self._send_one(job)
        decision = gc.decide(job)
        if isinstance(decision, AppendResult):
            self.appends += 1
            self._own.wrote(decision.position)
            self._notifier.appended()
            return decision
        if decision.maybe_retry:
            original = self._earlier_result(job.stream, job.records)
            if original is not None:
                return original
        raise decision.error from None

    def _earlier_result(self, stream: str, records: Sequence[EventRecord]) -> AppendResult | None:
        rows = self._fetch(q.STORED_IDS, ([r.id for r in records],))
        return q.earlier_result(stream, records, rows)

    def hard_delete(self, stream: str, expected: ExpectedVersion) -> None:
        """Tombstone the stream: its events stay in the log, every later append fails."""
        db.check_not_inside(self.database, "hard_delete")
        try:
            self._fetch(q.HARD_DELETE, (stream, q.expected_code(expected)))
        except StoreError as exc:
            refused = q.refusal(stream, expected, (), exc)
            if refused is None:
                raise
            raise refused.error from None

    def set_stream_metadata(self, stream: str, metadata: bytes) -> None:
        """Store the stream's encoded metadata (replacing any earlier one)."""
        if not self._fetch(q.SET_METADATA, (stream, metadata)):
            raise StreamDeleted(stream)

    def replace_stream_metadata(
        self, stream: str, metadata: bytes, *, version: int | None, previous: bytes | None
    ) -> bool:
        """Store the metadata if the stream is unchanged since the caller read it."""
        params = (metadata, stream, previous, stream, version)
        return bool(self._fetch(q.REPLACE_METADATA, params))

    def remove_events(
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
        return int((self._fetch(q.REMOVE_EVENTS, params))[0][0])

    def reclaim_space(self, *, vacuum: bool = False) -> None:
        """Nothing to do: autovacuum makes the removed rows' space reusable."""
        self._check_open()

    def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Store a snapshot apart from the events (replacing one at the same version)."""
        self._fetch(q.SAVE_SNAPSHOT, q.snapshot_params(snapshot))

    # -- reads ------------------------------------------------------------------------------

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[StoredRecord]:
        """The events of one stream, lazily, from ``from_version`` to ``to_version`` inclusive."""
        self._check_open()
        pager = q.StreamPager(stream, from_version, to_version, backwards, limit)
        return self._pages(pager)

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        filter: ReadAllFilter | None = None,
    ) -> Iterator[StoredRecord]:
        """The settled global log in position order, lazily, optionally filtered."""
        self._check_open()
        return self._log_pages(q.LogPager(from_position, backwards, limit, filter))

    def _log_pages(self, pager: q.LogPager) -> Iterator[StoredRecord]:
        self._settle_own_writes()
        yield from self._pages(pager)

    def _settle_own_writes(self) -> int | None:
        """Wait (briefly) until this recorder's own appends are settled; the head if read."""
        target = self._own.ahead()
        if not target:
            return None
        deadline = time.monotonic() + own_writes.WAIT
        while True:
            head = int(self._fetch(q.HEAD_POSITION, ())[0][0])
            if head >= target or time.monotonic() >= deadline:
                self._own.settled(max(head, target))
                return head
            time.sleep(own_writes.PAUSE)

    def _pages(self, pager: q.KeysetPager) -> Iterator[StoredRecord]:
        # Each page is one short query on a pooled connection: a slow consumer holds nothing.
        while (query := pager.next_query()) is not None:
            sql, params, size = query
            page = self._records(sql, params)
            yield from page
            if not pager.after_page(page, size):
                return

    def stream_info(self, stream: str) -> StreamInfo:
        """The stream's last version, tombstone and metadata."""
        return q.stream_info(stream, self._fetch(q.STREAM_INFO, (stream,)))

    def list_streams(self, after: str = "") -> Iterator[StreamInfo]:
        """Every stream that has events, metadata or a tombstone, in name order."""
        self._check_open()
        return self._list_streams(after)

    def _list_streams(self, after: str) -> Iterator[StreamInfo]:
        while True:
            rows = self._fetch(q.LIST_STREAMS, (after, q.PAGE_SIZE))
            for row in rows:
                yield q.info_of(row)
            if len(rows) < q.PAGE_SIZE:
                return
            after = rows[-1][0]

    def head_position(self) -> int:
        """The last settled global position, 0 when the store is empty."""
        head = self._settle_own_writes()
        return head if head is not None else int(self._fetch(q.HEAD_POSITION, ())[0][0])

    def load_snapshot(self, stream: str, max_version: int | None = None) -> SnapshotRecord | None:
        """The newest snapshot of ``stream`` whose version is <= ``max_version``."""
        return q.snapshot_of(
            self._fetch(q.LOAD_SNAPSHOT, q.load_snapshot_params(stream, max_version))
        )

    def stats(self) -> dict[str, int | str]:
        """Counts of events, streams and snapshots, and how the store is set up."""
        counts = self._fetch(q.STATS, ())
        pool = self._pool.get_stats()
        head = self.head_position()
        queue = self._queue
        return q.stats_of(
            self.settings, counts, head, self.appends, pool, queue.batches, queue.appends
        )

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._notifier.close()
        self._pool.close()

    def __enter__(self) -> PostgresRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
