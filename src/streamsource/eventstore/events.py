"""The value types of the event store's public API."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import msgspec

from streamsource.eventstore.event_ids import new_event_id


class StreamState(enum.Enum):
    """Expected-version conditions that are not an exact version (as in KurrentDB)."""

    ANY = "any"
    NO_STREAM = "no_stream"
    STREAM_EXISTS = "stream_exists"


ANY = StreamState.ANY
NO_STREAM = StreamState.NO_STREAM
STREAM_EXISTS = StreamState.STREAM_EXISTS

ExpectedVersion: TypeAlias = StreamState | int
"""ANY, NO_STREAM, STREAM_EXISTS, or the exact current version (the first event is 0)."""

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. ``id`` makes retried appends idempotent: keep it across retries.

    The default ``id`` is a new time-ordered UUID (:func:`new_event_id`); any UUID works.
    """

    type: str
    data: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=new_event_id)


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as stored: its place in its stream (``version``) and in the log (``position``).

    A msgspec Struct rather than a dataclass: readers build one per event, and a Struct's
    constructor costs a fraction of a frozen dataclass's.
    """

    id: uuid.UUID
    stream: str
    version: int
    position: int
    type: str
    data: Any
    metadata: Mapping[str, Any]
    recorded_at: datetime

    @property
    def category(self) -> str:
        return category_of(self.stream)

    @property
    def correlation_id(self) -> str | None:
        value = self.metadata.get(CORRELATION_ID)
        return None if value is None else str(value)

    @property
    def causation_id(self) -> str | None:
        value = self.metadata.get(CAUSATION_ID)
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append wrote: the stream's new version and that event's global position."""

    version: int
    position: int


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Per-stream settings that limit what reads return (events are not rewritten).

    ``max_count`` keeps the newest N events visible, ``max_age`` hides older events,
    ``truncate_before`` hides versions below it (what a soft delete sets).
    """

    max_count: int | None = None
    max_age: timedelta | None = None
    truncate_before: int | None = None
    custom: Mapping[str, Any] = field(default_factory=dict)


def category_of(stream: str) -> str:
    """The part of a stream name before its first ``-`` (the whole name if there is none)."""
    return stream.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state as of ``version`` of ``stream``, stored apart from its events."""

    stream: str
    version: int
    type: str
    state: Any
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """One stream as ``list_streams`` shows it."""

    stream: str
    version: int | None  # last version written; None for a stream tombstoned before any event
    hard_deleted: bool
    metadata: StreamMetadata | None
