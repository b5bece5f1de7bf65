"""The runner: keeps a set of projections up to date, reports their lag, rebuilds one.

>>> runner = ProjectionRunner(store, [Balances()], read_model="sqlite:///read.db")
>>> runner.run_until_caught_up()      # or runner.start() for a background thread
>>> runner.status()                    # position, lag in events and seconds, per projection
>>> runner.rebuild("balances")         # a new generation; the old one serves until it caught up

The read model defaults to the event store's own SQLite file. The runner's thread wakes on
the store's append signal (and polls for other processes' appends).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streamsource.errors import InterfaceError, ProgrammingError, StreamsourceError
from streamsource.eventstore.projections import catalog
from streamsource.eventstore.projections.database import (
    Connection,
    PostgresConnection,
    StoreConnection,
    connect,
)
from streamsource.eventstore.projections.projection import (
    Projection,
    ProjectionFailed,
    check_projection,
)
from streamsource.eventstore.projections.projector import (
    DEFAULT_BATCH_SIZE,
    GenerationRetired,
    Projector,
    lag_after,
)
from streamsource.eventstore.store import EventStore
from streamsource.eventstore.subscriptions.target import check_page_size, make_target
from streamsource.eventstore.subscriptions.wakeups import wakeup_for
from streamsource.observability import live, metrics

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where one projection stands."""

    name: str
    generation: int  # the generation readers see
    position: int | None  # last position it handled
    events: int  # events that took effect in this generation
    lag_events: int  # matching events not handled yet
    lag_seconds: float  # age of the oldest of them (0 when caught up)
    last_event_at: datetime | None
    rebuilding: int | None  # the generation a rebuild is filling, if any
    rebuild_position: int | None
    error: str | None = None  # why the runner stopped feeding it, if it did


def read_model_opener(store: EventStore, url: str | None) -> tuple[str, Callable[[], Connection]]:
    """What the read model is called and how to connect to it: ``url``, or when it is None,
    the store's own database, as the store hands it out."""
    if url is not None:
        return url, lambda: connect(url)
    database = store.recorder.database
    if database is None:
        raise ProgrammingError(
            f"the {store.recorder.backend} backend has no database a read model can live in:"
            " pass read_model='sqlite:///PATH' or 'postgresql://...'"
        )
    if database.dialect.single_writer:  # SQLite: through the store's write queue
        return database.where, lambda: StoreConnection(database)
    # PostgreSQL: a session of its own in the store's schema, with pipelined writes
    return database.where, lambda: PostgresConnection(
        "", database.where, session=database.connect()
    )


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    """How far a rebuild has come (see :meth:`ProjectionRunner.rebuild`)."""

    projection: str
    events: int  # events handled by this run of the rebuild
    position: int  # the global position reached
    head: int  # the store's head position when the batch was done


class ProjectionRunner:
    """Keeps projections up to date from one event store."""

    def __init__(
        self,
        store: EventStore,
        projections: Iterable[Projection],
        *,
        read_model: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float | None = None,
    ) -> None:
        self.store = store
        self.projections: dict[str, Projection] = {}
        for projection in projections:
            checked = check_projection(projection)
            if checked.name in self.projections:
                raise ProgrammingError(f"two projections are named {checked.name!r}")
            self.projections[checked.name] = checked
        self.read_model, self._open = read_model_opener(store, read_model)
        self.batch_size = check_page_size(batch_size, "batch_size")
        self._signal, default_poll = wakeup_for(store.recorder)
        self.poll_interval = default_poll if poll_interval is None else poll_interval
        self._conn: Connection | None = None
        self._projectors: dict[str, Projector] = {}
        self.errors: dict[str, ProjectionFailed] = {}
        self.last_error: StreamsourceError | None = None  # the last retriable failure seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one feeding loop at a time over _conn
        live.track("projections", self)

    # -- feeding --------------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._open()
            catalog.ensure_catalog(self._conn)
        return self._conn

    def _projector(self, name: str) -> Projector:
        projector = self._projectors.get(name)
        if projector is None:
            conn = self._connection()
            projection = self.projections[name]
            generations = catalog.set_up(conn, projection)
            with conn.transaction(name):
                catalog.clear_error(conn, name)  # fed again: an older failure is history
            projector = Projector(
                self.store, conn, projection, generations.current, batch_size=self.batch_size
            )
            self._projectors[name] = projector
        return projector

    def run_once(self) -> int:
        """Apply one batch to every projection that has events waiting; events read."""
        with self._lock:
            total = 0
            for name in self.projections:
                if name in self.errors:
                    continue
                try:
                    total += self._projector(name).step()
                except GenerationRetired:
                    self._projectors.pop(name, None)  # a rebuild switched: follow the new one
                    total += 1  # not idle: go round again at once
                except ProjectionFailed as failed:
                    self.errors[name] = failed
                    self._projectors.pop(name, None)
                    _count_error(name)
                    self._keep_error(name, failed)
                except StreamsourceError as exc:
                    self._projectors.pop(name, None)  # start again from its checkpoint
                    _count_error(name)
                    if exc.retriable:
                        self._drop_connection()  # it may be the one that broke
                    raise
            instruments = metrics.INSTRUMENTS
            if instruments is not None and total:
                instruments.projection_events.inc(total)
            return total

    def _keep_error(self, name: str, failed: ProjectionFailed) -> None:
        """Record the failure where status readers in other processes see it."""
        conn = self._connection()
        try:
            with conn.transaction(name):
                catalog.record_error(conn, name, str(failed))
        except StreamsourceError:
            pass  # the failure stays in self.errors; the database is the lesser report

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._projectors.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass  # already broken: nothing to flush

    def run_until_caught_up(self) -> None:
        """Feed every projection until none has events waiting; raise the first failure."""
        while self.run_once():
            pass
        if self.errors:
            raise next(iter(self.errors.values()))

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Feed projections until ``stop`` (or :meth:`stop`) is set; waits at the head."""
        stopping = self._stop if stop is None else stop
        while not stopping.is_set() and not self._stop.is_set():
            seen = self._signal.seq
            try:
                handled = self.run_once()
            except StreamsourceError as exc:
                if not exc.retriable:
                    raise
                self.last_error = exc  # the database is away or locked: try again soon
                handled = 0
            if handled == 0:
                self._signal.wait(seen, self.poll_interval)

    async def run_async(self, stop: asyncio.Event | None = None) -> None:
        """:meth:`run_forever` as an asyncio task: batches run in a worker thread (they do
        blocking I/O), waits at the head block no thread. Cancel the task or set ``stop``."""
        while not (stop is not None and stop.is_set()) and not self._stop.is_set():
            seen = self._signal.seq
            try:
                handled = await asyncio.to_thread(self.run_once)
            except StreamsourceError as exc:
                if not exc.retriable:
                    raise
                self.last_error = exc
                handled = 0
            if handled == 0:
                await self._signal.wait_async(seen, self.poll_interval)

    def start(self) -> None:
        """Run :meth:`run_forever` in a daemon thread."""
        if self._thread is not None:
            raise InterfaceError("the projection runner is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, name="streamsource-projections", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current batch and wait for it."""
        self._stop.set()
        self._signal.notify()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def close(self) -> None:
        """Stop and close the read-model connection."""
        live.untrack("projections", self)
        self.stop()
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> ProjectionRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rebuild --------------------------------------------------------------------------

    def rebuild(
        self, name: str, *, progress: Callable[[RebuildProgress], None] | None = None
    ) -> int:
        """Rebuild ``name`` from the first event into a new generation, then serve it.

        Readers keep seeing the old generation (and the runner keeps updating it) until the
        new one has caught up; the switch is one transaction. An interrupted rebuild resumes
        where it stopped. Returns the new generation. ``progress`` is called after each
        batch with the events handled so far, the position reached and the store's head.
        """
        projection = self._known(name)
        conn = self._open()  # its own: the runner's thread may be feeding
        try:
            catalog.ensure_catalog(conn)
            catalog.set_up(conn, projection)
            generation = catalog.start_rebuild(conn, projection)
            projector = Projector(
                self.store, conn, projection, generation, batch_size=self.batch_size
            )
            events = 0
            while True:
                read = projector.step()
                events += read
                if read == 0 and projector.switch_if_caught_up():
                    return generation
                if progress is not None and read:
                    head = self.store.head_position()
                    progress(RebuildProgress(name, events, projector.position or 0, head))
        finally:
            conn.close()

    # -- status ---------------------------------------------------------------------------

    def status(self) -> list[ProjectionStatus]:
        """Every projection's generation, position and lag (read from the database)."""
        conn = self._open()
        try:
            catalog.ensure_catalog(conn)
            return [self._status(conn, projection) for projection in self.projections.values()]
        finally:
            conn.close()

    def _status(self, conn: Connection, projection: Projection) -> ProjectionStatus:
        error = self.errors.get(projection.name)
        message = catalog.read_error(conn, projection.name) if error is None else str(error)
        target = make_target(None, projection.category, projection.types, projection.include_system)
        found = catalog.generations(conn, projection.name)
        checkpoint = (
            None if found is None else catalog.read_checkpoint(conn, projection.name, found.current)
        )
        position = None if checkpoint is None else checkpoint.position
        lag_events, lag_seconds = lag_after(
            self.store, target.category, target.types, position, target.include_system
        )
        building = None
        if found is not None and found.building is not None:
            building = catalog.read_checkpoint(conn, projection.name, found.building)
        return ProjectionStatus(
            name=projection.name,
            generation=0 if found is None else found.current,
            position=position,
            events=0 if checkpoint is None else checkpoint.events,
            lag_events=lag_events,
            lag_seconds=lag_seconds,
            last_event_at=None
            if checkpoint is None or checkpoint.last_event_at is None
            else _EPOCH + timedelta(microseconds=checkpoint.last_event_at),
            rebuilding=None if found is None else found.building,
            rebuild_position=None if building is None else building.position,
            error=message,
        )

    def _known(self, name: str) -> Projection:
        try:
            return self.projections[name]
        except KeyError:
            known = ", ".join(sorted(self.projections)) or "none"
            raise ProgrammingError(f"no projection named {name!r} (known: {known})") from None


def _count_error(projection: str) -> None:
    instruments = metrics.INSTRUMENTS
    if instruments is not None:
        instruments.child(instruments.projection_errors, projection).inc()
