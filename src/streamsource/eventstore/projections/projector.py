"""Feeding one generation of one projection, a batch per transaction, exactly once.

Each batch runs in one transaction of the read-model database that (1) checks the
generation is still served or being built, (2) reads the checkpoint *inside* the
transaction, (3) hands the handler only events after it, and (4) writes the new checkpoint.
A crash anywhere loses the whole batch and its checkpoint together; two runners of the same
projection (say two processes) serialise on the transaction and skip what the other did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from streamsource.errors import StoreError
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.projections import catalog
from streamsource.eventstore.projections.database import Connection
from streamsource.eventstore.projections.projection import (
    Projection,
    ProjectionContext,
    ProjectionFailed,
)
from streamsource.eventstore.recorder import ReadAllFilter
from streamsource.eventstore.store import EventStore
from streamsource.eventstore.subscriptions.catchup import CatchUpSubscription
from streamsource.eventstore.subscriptions.target import SYSTEM_PREFIX, make_target
from streamsource.observability import tracing

DEFAULT_BATCH_SIZE = 500
"""Events handled per transaction: large enough to amortise the commit, small enough to
keep other writers of the database waiting only briefly."""

LAG_COUNT_LIMIT = 1_000_000
"""A lag is counted event by event up to this many; beyond it the status says "at least"."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class GenerationRetired(Exception):
    """The generation this projector fills is no longer served nor being built."""


def micros(when: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class Projector:
    """Applies the events after its checkpoint to one generation of a projection."""

    def __init__(
        self,
        store: EventStore,
        conn: Connection,
        projection: Projection,
        generation: int,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.store = store
        self.conn = conn
        self.projection = projection
        self.generation = generation
        self.batch_size = batch_size
        self.target = make_target(
            None, projection.category, projection.types, projection.include_system
        )
        found = catalog.read_checkpoint(conn, projection.name, generation)
        if found is None:
            raise GenerationRetired(projection.name)
        self.position = found.position
        self._subscription = self._subscribe(found.position)

    def _subscribe(self, after: int | None) -> CatchUpSubscription:
        return CatchUpSubscription(self.store, self.target, after=after, page_size=self.batch_size)

    @property
    def caught_up(self) -> bool:
        """Whether the last read found no more events."""
        return self._subscription.caught_up

    def step(self) -> int:
        """Read the next batch and apply it; the number of events read (0 at the head)."""
        batch = self._subscription.read_batch(self.batch_size)
        if batch:
            try:
                self.apply(batch)
            except BaseException:
                # the batch was read but not applied: read it again next time
                self._subscription = self._subscribe(self.position)
                raise
        return len(batch)

    def apply(self, batch: list[RecordedEvent], *, switch_if_caught_up: bool = False) -> None:
        """Apply ``batch`` (events in log order) and advance the checkpoint, atomically.

        With ``switch_if_caught_up`` (a rebuild), the same transaction makes this generation
        the served one when the subscription has reached the head.
        """
        try:
            self._apply(batch, switch_if_caught_up)
        except StoreError as exc:  # the commit failed, e.g. a write sent in bulk
            if exc.retriable or not batch:
                raise
            raise ProjectionFailed(
                self.projection.name, batch[-1].position, exc, batch=True
            ) from exc

    def _apply(self, batch: list[RecordedEvent], switch_if_caught_up: bool) -> None:
        projection, conn = self.projection, self.conn
        name = projection.name
        with conn.transaction(name):
            self._check_alive()
            checkpoint = catalog.read_checkpoint(conn, name, self.generation)
            assert checkpoint is not None
            done = checkpoint.position
            events = [e for e in batch if done is None or e.position > done] if batch else []
            if events:
                context = ProjectionContext(conn, projection.tables, self.generation)
                handle = projection.handle if tracing.TRACER is None else _traced(projection)
                for event in events:
                    try:
                        handle(event, context)
                    except Exception as exc:
                        raise ProjectionFailed(name, event.position, exc) from exc
                last = events[-1]
                catalog.write_checkpoint(
                    conn,
                    name,
                    self.generation,
                    last.position,
                    checkpoint.events + len(events),
                    micros(last.recorded_at),
                )
                done = last.position
            if switch_if_caught_up and self._subscription.caught_up:
                catalog.switch_to(conn, projection, self.generation)
        if batch and done is not None and done > batch[-1].position:
            self._subscription = self._subscribe(done)  # another runner got further: follow it
        self.position = done

    def switch_if_caught_up(self) -> bool:
        """For a rebuild at the head: serve this generation now. True if it switched."""
        if not self._subscription.caught_up:
            return False
        self.apply([], switch_if_caught_up=True)
        return True

    def _check_alive(self) -> None:
        found = catalog.generations(self.conn, self.projection.name)
        if found is None or self.generation not in (found.current, found.building):
            raise GenerationRetired(self.projection.name)

    def lag(self) -> tuple[int, float]:
        """Events after the checkpoint (up to :data:`LAG_COUNT_LIMIT`) and the age in seconds
        of the oldest of them (0 when caught up)."""
        target = self.target
        return lag_after(
            self.store, target.category, target.types, self.position, target.include_system
        )


def lag_after(
    store: EventStore,
    category: str | None,
    types: frozenset[str] | None,
    position: int | None,
    include_system: bool = False,
) -> tuple[int, float]:
    """How many matching events follow ``position``, and how old the first of them is."""
    narrowing = None
    if category is not None or types is not None:
        narrowing = ReadAllFilter(category=category, types=types)
    records = store.recorder.read_all(
        from_position=(position or 0) + 1, limit=LAG_COUNT_LIMIT, filter=narrowing
    )
    count = 0
    oldest: datetime | None = None
    for record in records:
        if category is None and not include_system and record.stream.startswith(SYSTEM_PREFIX):
            continue  # not delivered to a projection of $all (see Target.wants)
        if oldest is None:
            oldest = record.recorded_at
        count += 1
    if oldest is None:
        return 0, 0.0
    return count, max(0.0, (datetime.now(UTC) - oldest).total_seconds())


def _traced(projection: Projection) -> Callable[[RecordedEvent, ProjectionContext], None]:
    """``projection.handle`` in a span per event, child of the append that recorded it."""

    def handle(event: RecordedEvent, context: ProjectionContext) -> None:
        with tracing.span(
            "streamsource.projection.handle",
            parent=tracing.metadata_traceparent(event.metadata),
            kind="CONSUMER",
            attributes={"streamsource.projection": projection.name},
        ):
            projection.handle(event, context)

    return handle
