"""streamsource: event sourcing and Kafka-compatible event streaming in one package.

>>> import streamsource as ss
>>> store = ss.open_store("memory://")
>>> store.append("account-1", [ss.NewEvent("Deposited", {"amount": 100})], ss.NO_STREAM)
AppendResult(version=0, position=1)
"""

from __future__ import annotations

from streamsource.bridge import (
    AsyncInboxConsumer,
    AsyncStoreInbox,
    InboxConsumer,
    OutboxRelay,
    PostgresInbox,
    SqliteInbox,
    TopicMapping,
)
from streamsource.errors import (
    CorruptStoreError,
    DatabaseError,
    DataError,
    DomainError,
    DuplicateEventId,
    EventNotSerializable,
    IntegrityError,
    InterfaceError,
    InvalidExpectedVersion,
    InvalidStreamName,
    MissingExtra,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StoreError,
    StreamDeleted,
    StreamsourceError,
    UnknownEventType,
    WrongExpectedVersion,
)
from streamsource.eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    AsyncEventStore,
    EventStore,
    EventTooLarge,
    InvalidEventType,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamMetadata,
    StreamSummary,
    open_async_store,
    open_store,
)
from streamsource.eventstore.domain import (
    SCHEMA_VERSION,
    Aggregate,
    AggregateNotFound,
    AsyncRepository,
    Causation,
    DecodedEvent,
    EventRegistry,
    EventType,
    InvalidEventData,
    PendingEvent,
    Repository,
    applies,
    async_retry_on_conflict,
    caused_by,
    current_causation,
    default_registry,
    event,
    retry_on_conflict,
    upcaster,
)
from streamsource.eventstore.projections import (
    Projection,
    ProjectionContext,
    ProjectionFailed,
    ProjectionRunner,
    ProjectionStatus,
)
from streamsource.eventstore.scavenging import ScavengeReport
from streamsource.eventstore.subscriptions import (
    AsyncCatchUpSubscription,
    AsyncPersistentSubscription,
    CatchUpSubscription,
    PersistentSubscription,
    subscribe,
)

__version__ = "0.1.0"

# Grouped by area; each group sorted. A new area adds its import above and one block here.
__all__ = [  # event store
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "AsyncEventStore",
    "EventStore",
    "NewEvent",
    "RecordedEvent",
    "ScavengeReport",
    "Snapshot",
    "StreamMetadata",
    "StreamSummary",
    "open_async_store",
    "open_store",
]
__all__ += [  # errors
    "CorruptStoreError",
    "DataError",
    "DatabaseError",
    "DomainError",
    "DuplicateEventId",
    "EventNotSerializable",
    "EventTooLarge",
    "IntegrityError",
    "InterfaceError",
    "InvalidEventType",
    "InvalidExpectedVersion",
    "InvalidStreamName",
    "MissingExtra",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "StoreError",
    "StreamDeleted",
    "StreamsourceError",
    "UnknownEventType",
    "WrongExpectedVersion",
]
__all__ += [  # domain toolkit
    "SCHEMA_VERSION",
    "Aggregate",
    "AggregateNotFound",
    "AsyncRepository",
    "Causation",
    "DecodedEvent",
    "EventRegistry",
    "EventType",
    "InvalidEventData",
    "PendingEvent",
    "Repository",
    "applies",
    "async_retry_on_conflict",
    "caused_by",
    "current_causation",
    "default_registry",
    "event",
    "retry_on_conflict",
    "upcaster",
]
__all__ += [  # store-to-stream bridge
    "AsyncInboxConsumer",
    "AsyncStoreInbox",
    "InboxConsumer",
    "OutboxRelay",
    "PostgresInbox",
    "SqliteInbox",
    "TopicMapping",
]
__all__ += [  # subscriptions and projections
    "AsyncCatchUpSubscription",
    "AsyncPersistentSubscription",
    "CatchUpSubscription",
    "PersistentSubscription",
    "Projection",
    "ProjectionContext",
    "ProjectionFailed",
    "ProjectionRunner",
    "ProjectionStatus",
    "subscribe",
]
