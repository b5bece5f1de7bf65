"""The store-to-stream bridge: the outbox relay (store -> Kafka) and inbox consumers.

* :class:`OutboxRelay` publishes recorded events to Kafka topics (one per category by
  default, see :class:`TopicMapping`), with the stream as key and the event's id, type,
  version, position and metadata as headers; its checkpoint advances only once the broker
  acknowledged everything up to it.
* :class:`InboxConsumer` is a consumer-group member that applies each event once: the event
  id is recorded in an inbox table (:class:`SqliteInbox`, :class:`PostgresInbox`) in the same
  transaction as the handler's writes, and offsets are committed after it.
* :class:`AsyncInboxConsumer` is the same for asyncio code, with coroutine handlers and the
  inbox in the store's own database (:class:`AsyncStoreInbox`).
* :func:`streamsource.bridge.projection.projection_consumer` feeds a
  :class:`~streamsource.eventstore.projections.Projection` from Kafka the same way.

The relay's checkpoint lives beside the store (:func:`checkpoints_for`): for
``sqlite:///PATH``, a table in the file ``PATH-relay``; for PostgreSQL, a table in the
store's schema. ``streamsource relay --store URL --bootstrap HOST:PORT`` runs a relay.
"""

from __future__ import annotations

from streamsource.bridge.async_inbox import AsyncHandler, AsyncInboxConsumer, AsyncStoreInbox
from streamsource.bridge.checkpoints import (
    CheckpointStore,
    MemoryCheckpoints,
    PostgresCheckpoints,
    SqliteCheckpoints,
    checkpoints_for,
)
from streamsource.bridge.consumer import Handler, InboxConsumer
from streamsource.bridge.errors import (
    BridgeError,
    HandlerFailed,
    InvalidBridgeMessage,
    KafkaClientError,
)
from streamsource.bridge.inbox import Inbox, PostgresInbox, SqliteInbox
from streamsource.bridge.mapping import TopicMapping, sanitize_topic
from streamsource.bridge.messages import OutgoingMessage, event_from_message, message_for
from streamsource.bridge.relay import OutboxRelay
from streamsource.bridge.tracker import AckTracker

__all__ = [
    "AckTracker",
    "AsyncHandler",
    "AsyncInboxConsumer",
    "AsyncStoreInbox",
    "BridgeError",
    "CheckpointStore",
    "Handler",
    "HandlerFailed",
    "Inbox",
    "InboxConsumer",
    "InvalidBridgeMessage",
    "KafkaClientError",
    "MemoryCheckpoints",
    "OutboxRelay",
    "OutgoingMessage",
    "PostgresCheckpoints",
    "PostgresInbox",
    "SqliteCheckpoints",
    "SqliteInbox",
    "TopicMapping",
    "checkpoints_for",
    "event_from_message",
    "message_for",
    "sanitize_topic",
]
