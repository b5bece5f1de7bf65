"""The event store: append-only streams of events with optimistic concurrency.

``open_store(url)`` / ``await open_async_store(url)`` pick a backend by URL scheme:
``memory://``, ``sqlite:///path/to/file.db`` (the default), ``postgresql://...``.
"""

from __future__ import annotations

import os
from typing import Any

from streamsource.errors import EventTooLarge, InvalidEventType
from streamsource.eventstore.async_store import AsyncEventStore
from streamsource.eventstore.backends import open_async_recorder, open_recorder
from streamsource.eventstore.events import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamMetadata,
    StreamState,
    StreamSummary,
    category_of,
)
from streamsource.eventstore.store import EventStore

DEFAULT_URL = "sqlite:///streamsource.db"
"""The store used when no URL is given and STREAMSOURCE_STORE is not set."""

URL_ENVIRONMENT_VARIABLE = "STREAMSOURCE_STORE"


def default_url() -> str:
    """The URL from the STREAMSOURCE_STORE environment variable, else :data:`DEFAULT_URL`."""
    return os.environ.get(URL_ENVIRONMENT_VARIABLE) or DEFAULT_URL


def open_store(url: str | None = None, **options: Any) -> EventStore:
    """Open the event store at ``url`` (default: :func:`default_url`); options go to the backend."""
    return EventStore(open_recorder(default_url() if url is None else url, **options))


async def open_async_store(url: str | None = None, **options: Any) -> AsyncEventStore:
    """Open the event store at ``url`` for asyncio code; same semantics as :func:`open_store`."""
    return AsyncEventStore(
        await open_async_recorder(default_url() if url is None else url, **options)
    )


__all__ = [
    "ANY",
    "DEFAULT_URL",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "AsyncEventStore",
    "EventStore",
    "EventTooLarge",
    "ExpectedVersion",
    "InvalidEventType",
    "NewEvent",
    "RecordedEvent",
    "Snapshot",
    "StreamMetadata",
    "StreamState",
    "StreamSummary",
    "category_of",
    "default_url",
    "open_async_store",
    "open_store",
]
