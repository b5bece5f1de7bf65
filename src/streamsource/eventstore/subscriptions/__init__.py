"""Subscriptions: catch-up subscriptions (history, then live) and persistent consumer groups."""

from streamsource.eventstore.subscriptions.async_persistent import AsyncPersistentSubscription
from streamsource.eventstore.subscriptions.catchup import (
    AsyncCatchUpSubscription,
    CatchUpSubscription,
    subscribe,
)
from streamsource.eventstore.subscriptions.persistent import (
    Message,
    PersistentSubscription,
    parked_stream,
)
from streamsource.eventstore.subscriptions.target import Target

__all__ = [
    "AsyncCatchUpSubscription",
    "AsyncPersistentSubscription",
    "CatchUpSubscription",
    "Message",
    "PersistentSubscription",
    "Target",
    "parked_stream",
    "subscribe",
]
