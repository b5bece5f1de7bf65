"""The domain toolkit: typed events, aggregates, repositories, snapshots, causation."""

from streamsource.eventstore.domain.aggregate import Aggregate, PendingEvent, applies
from streamsource.eventstore.domain.async_repository import AsyncRepository, async_retry_on_conflict
from streamsource.eventstore.domain.causation import Causation, caused_by, current_causation
from streamsource.eventstore.domain.core import AggregateNotFound, DecodedEvent
from streamsource.eventstore.domain.repository import Repository, retry_on_conflict
from streamsource.eventstore.domain.typed_events import (
    SCHEMA_VERSION,
    EventRegistry,
    EventType,
    InvalidEventData,
    default_registry,
    event,
    upcaster,
)

__all__ = [
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
