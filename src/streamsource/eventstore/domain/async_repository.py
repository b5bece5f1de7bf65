"""``AsyncRepository``: the asyncio twin of :class:`~streamsource.Repository`.

Same semantics (expected versions, snapshots, as-of loads, causation); only the store calls
are awaited. The shared logic lives in :mod:`.core`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from streamsource.errors import WrongExpectedVersion
from streamsource.eventstore.domain import core
from streamsource.eventstore.domain.aggregate import Aggregate
from streamsource.eventstore.domain.causation import Cause
from streamsource.eventstore.domain.core import AggregateNotFound, DecodedEvent
from streamsource.eventstore.domain.repository import ConflictHook, check_attempts
from streamsource.eventstore.domain.typed_events import EventRegistry
from streamsource.eventstore.events import AppendResult

if TYPE_CHECKING:  # imported lazily: the asyncio store is only needed by asyncio users
    from streamsource.eventstore.async_store import AsyncEventStore

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


async def async_retry_on_conflict(
    fn: Callable[[], Awaitable[T]], *, attempts: int = 3, on_conflict: ConflictHook | None = None
) -> T:
    """Await ``fn()`` again after WrongExpectedVersion (see :func:`retry_on_conflict`)."""
    check_attempts(attempts)
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except WrongExpectedVersion as conflict:
            if attempt == attempts:
                raise
            if on_conflict is not None:
                on_conflict(conflict, attempt)
    raise AssertionError("unreachable")


class AsyncRepository(Generic[A]):
    """Loads and saves aggregates of one type in an :class:`~streamsource.AsyncEventStore`."""

    def __init__(
        self,
        store: AsyncEventStore,
        aggregate_type: type[A],
        *,
        snapshot_every: int | None = None,
        registry: EventRegistry | None = None,
    ) -> None:
        self.store = store
        self.aggregate_type = aggregate_type
        every = aggregate_type.snapshot_every if snapshot_every is None else snapshot_every
        self.snapshot_every = core.check_snapshot_every(aggregate_type, every)
        self.registry = aggregate_type.registry if registry is None else registry

    def create(self, id: str) -> A:
        """A new, empty aggregate."""
        return core.new_aggregate(self.aggregate_type, id)

    async def load(
        self, id: str, *, as_of_version: int | None = None, as_of_time: datetime | None = None
    ) -> A:
        """The aggregate rebuilt from its stream (see :meth:`Repository.load`)."""
        aggregate = core.new_aggregate(self.aggregate_type, id)
        stream = aggregate.stream
        cutoff = as_of_version
        if as_of_time is not None:
            at_time = await self._version_at(stream, as_of_time)
            if at_time is None:
                raise AggregateNotFound(self.aggregate_type, id, f" at or before {as_of_time}")
            cutoff = at_time if cutoff is None else min(cutoff, at_time)
        if self.snapshot_every is not None:
            snapshot = await self.store.load_snapshot(stream, max_version=cutoff)
            if snapshot is not None and not core.snapshot_hidden(
                snapshot, await self.store.get_stream_metadata(stream)
            ):
                aggregate = core.restore_snapshot(self.aggregate_type, id, snapshot) or aggregate
        from_version = None if aggregate.version is None else aggregate.version + 1
        async for recorded in self.store.read_stream(
            stream, from_version=from_version, as_of_version=cutoff
        ):
            aggregate._replay(self.registry.decode_recorded(recorded), recorded.version)
        if aggregate.version is None:
            at = "" if cutoff is None else f" up to version {cutoff}"
            raise AggregateNotFound(self.aggregate_type, id, at)
        return aggregate

    async def exists(self, id: str) -> bool:
        """Whether the aggregate's stream has an event to load (see :meth:`Repository.exists`)."""
        events = self.store.read_stream(
            self.aggregate_type.stream_name(id), backwards=True, limit=1
        )
        try:
            async for _ in events:
                return True
            return False
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def save(
        self,
        aggregate: A,
        *,
        metadata: Mapping[str, Any] | None = None,
        caused_by: Cause | None = None,
    ) -> AppendResult | None:
        """Append the pending events (see :meth:`Repository.save`)."""
        events = core.new_events(aggregate, self.registry, metadata, caused_by)
        if not events:
            return None
        snapshot = core.snapshot_if_due(aggregate, self.snapshot_every)
        result = await self.store.append(
            aggregate.stream, events, expected_version=core.expected_version(aggregate)
        )
        aggregate._mark_saved(result.version)
        if snapshot is not None and snapshot.version == result.version:
            await self.store.save_snapshot(
                snapshot.stream, snapshot.version, snapshot.type, snapshot.state
            )
        return result

    async def update(
        self,
        id: str,
        command: Callable[[A], object],
        *,
        attempts: int = 3,
        metadata: Mapping[str, Any] | None = None,
        caused_by: Cause | None = None,
        on_conflict: ConflictHook | None = None,
    ) -> A:
        """Load, run ``command(aggregate)``, save; on a conflict reload and run it again."""

        async def attempt() -> A:
            aggregate = await self.load(id)
            command(aggregate)
            await self.save(aggregate, metadata=metadata, caused_by=caused_by)
            return aggregate

        return await async_retry_on_conflict(attempt, attempts=attempts, on_conflict=on_conflict)

    async def history(self, id: str) -> AsyncIterator[DecodedEvent]:
        """The aggregate's stored events, each with its typed event object, in order."""
        stream = self.aggregate_type.stream_name(id)
        async for recorded in self.store.read_stream(stream):
            yield DecodedEvent(recorded, self.registry.decode_recorded(recorded))

    async def _version_at(self, stream: str, when: datetime) -> int | None:
        async for recorded in self.store.read_stream(
            stream, as_of_time=when, backwards=True, limit=1
        ):
            return recorded.version
        return None
