"""``AsyncRepository``: the asyncio twin of :class:`~streamsource.Repository`.

Same semantics (expected versions, snapshots, as-of loads, causation); only the store calls
are awaited. The shared logic lives in :mod:`.core`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from streamsource.errors import WrongExpectedVersion
from streamsource.eventstore.async_store import AsyncEventStore
from streamsource.eventstore.domain import core
from streamsource.eventstore.domain.aggregate import Aggregate
from streamsource.eventstore.domain.causation import Cause
from streamsource.eventstore.domain.core import (
    ConflictHook,
    DecodedEvent,
    RepositoryBase,
    check_attempts,
)
from streamsource.eventstore.events import AppendResult

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
            if not core.retry_after(conflict, attempt, attempts, on_conflict):
                raise
    raise AssertionError("unreachable")


class AsyncRepository(RepositoryBase[A, AsyncEventStore]):
    """Loads and saves aggregates of one type in an :class:`~streamsource.AsyncEventStore`."""

    async def load(
        self, id: str, *, as_of_version: int | None = None, as_of_time: datetime | None = None
    ) -> A:
        """The aggregate rebuilt from its stream (see :meth:`Repository.load`)."""
        aggregate = core.new_aggregate(self.aggregate_type, id)
        stream = aggregate.stream
        cutoff = as_of_version
        if as_of_time is not None:
            at_time = await self._version_at(stream, as_of_time)
            cutoff = core.cutoff_at(self.aggregate_type, id, cutoff, as_of_time, at_time)
        if self.snapshot_every is not None:
            snapshot = await self.store.load_snapshot(stream, max_version=cutoff)
            if snapshot is not None:
                metadata = await self.store.get_stream_metadata(stream)
                aggregate = core.start_from_snapshot(
                    self.aggregate_type, id, aggregate, snapshot, metadata
                )
        async for recorded in self.store.read_stream(
            stream, from_version=core.replay_from(aggregate), as_of_version=cutoff
        ):
            aggregate._replay(self.registry.decode_recorded(recorded), recorded.version)
        return core.check_loaded(self.aggregate_type, id, aggregate, cutoff)

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
        if (due := core.snapshot_to_save(snapshot, result)) is not None:
            await self.store.save_snapshot(due.stream, due.version, due.type, due.state)
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
