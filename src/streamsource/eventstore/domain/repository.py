"""``Repository``: load aggregates from their streams and save their pending events.

Saving appends the pending events with the version the aggregate was loaded at as the
expected version (``NO_STREAM`` for a new aggregate), so two writers that loaded the same
version cannot both save: the second gets :class:`~streamsource.WrongExpectedVersion`.
:func:`retry_on_conflict` (and :meth:`Repository.update`) reload and run the command again
on the fresh state.

Snapshots: with ``snapshot_every=N`` a snapshot of the state is stored (apart from the
events) each time a save crosses a multiple of N events; a load starts from the newest
snapshot at or below the requested version and applies only the events after it. An as-of
load never uses a snapshot newer than its version (or than the last event at its time).

Soft deletes: a soft-deleted aggregate does not exist (``exists`` is False, ``load`` raises
AggregateNotFound, snapshots from before the delete are ignored) and ``create`` + ``save``
re-creates it; its stream's versions continue after the deleted ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from streamsource.errors import WrongExpectedVersion
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
from streamsource.eventstore.store import EventStore

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

__all__ = ["ConflictHook", "Repository", "check_attempts", "retry_on_conflict"]


def retry_on_conflict(
    fn: Callable[[], T], *, attempts: int = 3, on_conflict: ConflictHook | None = None
) -> T:
    """Call ``fn`` (which loads, runs a command and saves) again after WrongExpectedVersion.

    ``fn`` must reload the aggregate on each call, so the command re-runs on fresh state.
    After ``attempts`` conflicts the last WrongExpectedVersion is raised; any other error
    (e.g. a DomainError from the command) is raised at once.
    """
    check_attempts(attempts)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except WrongExpectedVersion as conflict:
            if not core.retry_after(conflict, attempt, attempts, on_conflict):
                raise
    raise AssertionError("unreachable")


class Repository(RepositoryBase[A, EventStore]):
    """Loads and saves aggregates of one type in an :class:`~streamsource.EventStore`."""

    def load(
        self, id: str, *, as_of_version: int | None = None, as_of_time: datetime | None = None
    ) -> A:
        """The aggregate rebuilt from its stream, optionally as of a version or a time.

        Raises :class:`AggregateNotFound` when the stream has no event (at that point).
        """
        aggregate = core.new_aggregate(self.aggregate_type, id)
        stream = aggregate.stream
        cutoff = as_of_version
        if as_of_time is not None:
            at_time = self._version_at(stream, as_of_time)
            cutoff = core.cutoff_at(self.aggregate_type, id, cutoff, as_of_time, at_time)
        if self.snapshot_every is not None:
            snapshot = self.store.load_snapshot(stream, max_version=cutoff)
            if snapshot is not None:
                metadata = self.store.get_stream_metadata(stream)
                aggregate = core.start_from_snapshot(
                    self.aggregate_type, id, aggregate, snapshot, metadata
                )
        for recorded in self.store.read_stream(
            stream, from_version=core.replay_from(aggregate), as_of_version=cutoff
        ):
            aggregate._replay(self.registry.decode_recorded(recorded), recorded.version)
        return core.check_loaded(self.aggregate_type, id, aggregate, cutoff)

    def exists(self, id: str) -> bool:
        """Whether the aggregate's stream has an event to load (a soft-deleted one has none)."""
        events = self.store.read_stream(
            self.aggregate_type.stream_name(id), backwards=True, limit=1
        )
        try:
            return next(events, None) is not None
        finally:
            events.close()

    def save(
        self,
        aggregate: A,
        *,
        metadata: Mapping[str, Any] | None = None,
        caused_by: Cause | None = None,
    ) -> AppendResult | None:
        """Append the pending events (atomically); None if there were none.

        ``metadata`` is added to every event; ``caused_by`` (a stored event, a command id
        or a Causation; default: the enclosing ``with caused_by(...)``) sets their
        correlation_id and causation_id. Raises WrongExpectedVersion if the stream moved
        since the aggregate was loaded; the aggregate then keeps its pending events.
        """
        events = core.new_events(aggregate, self.registry, metadata, caused_by)
        if not events:
            return None
        snapshot = core.snapshot_if_due(aggregate, self.snapshot_every)  # fails before writing
        result = self.store.append(
            aggregate.stream, events, expected_version=core.expected_version(aggregate)
        )
        aggregate._mark_saved(result.version)
        if (due := core.snapshot_to_save(snapshot, result)) is not None:
            self.store.save_snapshot(due.stream, due.version, due.type, due.state)
        return result

    def update(
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

        def attempt() -> A:
            aggregate = self.load(id)
            command(aggregate)
            self.save(aggregate, metadata=metadata, caused_by=caused_by)
            return aggregate

        return retry_on_conflict(attempt, attempts=attempts, on_conflict=on_conflict)

    def history(self, id: str) -> Iterator[DecodedEvent]:
        """The aggregate's stored events, each with its typed event object, in order."""
        stream = self.aggregate_type.stream_name(id)
        for recorded in self.store.read_stream(stream):
            yield DecodedEvent(recorded, self.registry.decode_recorded(recorded))

    def _version_at(self, stream: str, when: datetime) -> int | None:
        for recorded in self.store.read_stream(stream, as_of_time=when, backwards=True, limit=1):
            return recorded.version
        return None
