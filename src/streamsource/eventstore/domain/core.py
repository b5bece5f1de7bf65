"""The I/O-free part of repositories, shared by the sync and asyncio ones.

Turning pending events into ``NewEvent``s (type name, data, schema version, causation),
deciding when a snapshot is due, encoding/decoding snapshots, the as-of and not-found rules
of a load and the retry rule of a conflict live here, so :mod:`.repository` and
:mod:`.async_repository` only differ in how they call the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from streamsource.errors import ProgrammingError, StreamsourceError, WrongExpectedVersion
from streamsource.eventstore.codec import encode_snapshot_state
from streamsource.eventstore.domain.aggregate import Aggregate
from streamsource.eventstore.domain.causation import Cause, as_causation, current_causation
from streamsource.eventstore.domain.typed_events import SCHEMA_VERSION, EventRegistry
from streamsource.eventstore.events import (
    NO_STREAM,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamMetadata,
)

A = TypeVar("A", bound=Aggregate)
S = TypeVar("S")  # the store: EventStore or AsyncEventStore

ConflictHook = Callable[[WrongExpectedVersion, int], None]
"""Called with the conflict and the attempt number (1-based) before each retry."""


class AggregateNotFound(StreamsourceError, LookupError):
    """No event of the aggregate's stream exists (at the requested version or time)."""

    def __init__(self, aggregate_type: type[Aggregate], id: str, detail: str = "") -> None:
        self.aggregate_type = aggregate_type
        self.id = id
        self.detail = detail
        stream = aggregate_type.stream_name(id)
        super().__init__(
            f"{aggregate_type.__qualname__} {id!r} not found (stream {stream!r} has no events"
            f"{detail})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.aggregate_type, self.id, self.detail))


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """A stored event together with its typed event object (upcast to the current class)."""

    record: RecordedEvent
    event: Any

    @property
    def type(self) -> str:
        return self.record.type

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def recorded_at(self) -> datetime:
        return self.record.recorded_at

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.record.metadata


def check_snapshot_every(aggregate_type: type[Aggregate], every: int | None) -> int | None:
    """Validate a snapshot interval (0 or None: never), and that the aggregate has the hooks."""
    if isinstance(every, bool) or not isinstance(every, int | None) or (every or 0) < 0:
        raise ProgrammingError(f"snapshot_every must be an int >= 0 or None, not {every!r}")
    if not every:  # None or 0: no snapshots
        return None
    if (
        aggregate_type.snapshot_state is Aggregate.snapshot_state
        or aggregate_type.restore_snapshot is Aggregate.restore_snapshot
    ):
        raise ProgrammingError(
            f"snapshots of {aggregate_type.__qualname__} need snapshot_state() and "
            "restore_snapshot() overrides"
        )
    return every


def expected_version(aggregate: Aggregate) -> ExpectedVersion:
    """The version the stream must still be at for a save to succeed."""
    saved = aggregate.saved_version
    return NO_STREAM if saved is None else saved


def new_events(
    aggregate: Aggregate,
    registry: EventRegistry,
    metadata: Mapping[str, Any] | None,
    caused_by: Cause | None,
) -> list[NewEvent]:
    """The pending events as NewEvents, with schema version and causation in their metadata."""
    causation = as_causation(caused_by) if caused_by is not None else current_causation()
    shared: dict[str, Any] = dict(causation.metadata()) if causation else {}
    shared.update(metadata or {})
    result = []
    for pending in aggregate._pending_list():
        name, data, version = registry.encode(pending.event)
        event_metadata = {**shared, **pending.metadata, SCHEMA_VERSION: version}
        result.append(NewEvent(name, data, metadata=event_metadata, id=pending.id))
    return result


def snapshot_if_due(aggregate: Aggregate, every: int | None) -> Snapshot | None:
    """The snapshot to store once the pending events are saved, if that save makes one due.

    Encoded before the append so that unserialisable state fails before anything is written.
    """
    if aggregate.version is None or not snapshot_due(
        aggregate.saved_version, aggregate.version, every
    ):
        return None
    return encode_snapshot(aggregate)


def snapshot_due(before: int | None, after: int, every: int | None) -> bool:
    """True when saving moved the stream across a multiple of ``every`` events."""
    if every is None:
        return False
    count_before = 0 if before is None else before + 1
    return (after + 1) // every > count_before // every


def snapshot_type(aggregate_type: type[Aggregate]) -> str:
    """The snapshot type tag: the aggregate class and its snapshot schema."""
    return f"{aggregate_type.__qualname__}@{aggregate_type.snapshot_schema}"


def encode_snapshot(aggregate: Aggregate) -> Snapshot:
    """The aggregate's current state as a snapshot at its version (checked to be JSON)."""
    assert aggregate.version is not None
    state = aggregate.snapshot_state()
    encode_snapshot_state(aggregate.stream, state)  # raises EventNotSerializable if not JSON
    return Snapshot(
        stream=aggregate.stream,
        version=aggregate.version,
        type=snapshot_type(type(aggregate)),
        state=state,
        recorded_at=datetime.now(UTC),
    )


def snapshot_hidden(snapshot: Snapshot, metadata: StreamMetadata) -> bool:
    """True when the snapshot covers events that ``truncate_before`` hides (a soft delete).

    Loading from it would bring back state that a plain replay of the stream no longer sees.
    """
    hidden_below = metadata.truncate_before
    return hidden_below is not None and snapshot.version < hidden_below


def restore_snapshot(aggregate_type: type[A], id: str, snapshot: Snapshot) -> A | None:
    """An aggregate rebuilt from ``snapshot``; None if the snapshot is of another schema."""
    if snapshot.type != snapshot_type(aggregate_type):
        return None
    aggregate = aggregate_type(id)
    aggregate.restore_snapshot(snapshot.state)
    aggregate._restored_at(snapshot.version)
    return aggregate


def new_aggregate(aggregate_type: type[A], id: str) -> A:
    if not isinstance(id, str) or not id:
        raise ProgrammingError(f"aggregate id must be a non-empty str, not {id!r}")
    return aggregate_type(id)


class RepositoryBase(Generic[A, S]):
    """The settings and factory of a repository of one aggregate type over a store ``S``."""

    def __init__(
        self,
        store: S,
        aggregate_type: type[A],
        *,
        snapshot_every: int | None = None,
        registry: EventRegistry | None = None,
    ) -> None:
        """``snapshot_every`` overrides the aggregate class's setting when given (0: never)."""
        self.store = store
        self.aggregate_type = aggregate_type
        every = aggregate_type.snapshot_every if snapshot_every is None else snapshot_every
        self.snapshot_every = check_snapshot_every(aggregate_type, every)
        self.registry = aggregate_type.registry if registry is None else registry

    def create(self, id: str) -> A:
        """A new, empty aggregate (nothing is stored until it records events and is saved)."""
        return new_aggregate(self.aggregate_type, id)


def cutoff_at(
    aggregate_type: type[Aggregate],
    id: str,
    as_of_version: int | None,
    as_of_time: datetime,
    version_at_time: int | None,
) -> int | None:
    """The last version an as-of-time load may see (``version_at_time``: the stream's last
    version at ``as_of_time``); raises AggregateNotFound when the stream had none yet."""
    if version_at_time is None:
        raise AggregateNotFound(aggregate_type, id, f" at or before {as_of_time}")
    return version_at_time if as_of_version is None else min(as_of_version, version_at_time)


def start_from_snapshot(
    aggregate_type: type[A], id: str, fresh: A, snapshot: Snapshot, metadata: StreamMetadata
) -> A:
    """The aggregate a load replays onto: restored from ``snapshot`` when it may be used,
    else ``fresh``."""
    if snapshot_hidden(snapshot, metadata):
        return fresh
    return restore_snapshot(aggregate_type, id, snapshot) or fresh


def replay_from(aggregate: Aggregate) -> int | None:
    """The first stream version a load still has to replay onto ``aggregate``."""
    return None if aggregate.version is None else aggregate.version + 1


def check_loaded(aggregate_type: type[A], id: str, aggregate: A, cutoff: int | None) -> A:
    """``aggregate`` if the load found an event of it, else raise AggregateNotFound."""
    if aggregate.version is None:
        at = "" if cutoff is None else f" up to version {cutoff}"
        raise AggregateNotFound(aggregate_type, id, at)
    return aggregate


def snapshot_to_save(snapshot: Snapshot | None, result: AppendResult) -> Snapshot | None:
    """The due snapshot, unless the append did not end at its version (an idempotent retry
    of an earlier append returns that append's result)."""
    if snapshot is not None and snapshot.version == result.version:
        return snapshot
    return None


def check_attempts(attempts: int) -> None:
    """Refuse an ``attempts`` that is not an int >= 1."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ProgrammingError(f"attempts must be an int >= 1, not {attempts!r}")


def retry_after(
    conflict: WrongExpectedVersion, attempt: int, attempts: int, on_conflict: ConflictHook | None
) -> bool:
    """Whether to try again after ``conflict`` ended ``attempt`` (1-based) of ``attempts``;
    calls ``on_conflict`` before a retry."""
    if attempt == attempts:
        return False
    if on_conflict is not None:
        on_conflict(conflict, attempt)
    return True
