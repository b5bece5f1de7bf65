"""The store-to-stream bridge: the outbox relay (store -> Kafka) and inbox consumers.

* :class:`OutboxRelay` publishes recorded events to Kafka topics (one per category by
  default, see :class:`TopicMapping`), with the stream as key and the event's id, type,
  version, position and metadata as headers; its checkpoint advances only once the broker
  acknowledged everything up to it. :class:`RelayGroup` runs several (one per store) in one
  thread through one producer.
* :class:`InboxConsumer` is a consumer-group member that applies each event once: the event
  id is recorded in an inbox table (:class:`StoreInbox` in the event store's own database,
  where handlers may also append events; :class:`SqliteInbox`, :class:`PostgresInbox` in a
  read model's) in the same transaction as the handler's writes, and offsets are committed
  after it.
* :class:`AsyncInboxConsumer` is the same for asyncio code, with coroutine handlers and the
  inbox in the store's own database (:class:`AsyncStoreInbox`).
* :func:`streamsource.bridge.projection.projection_consumer` feeds a
  :class:`~streamsource.eventstore.projections.Projection` from Kafka the same way.

The relay's checkpoint lives in the store's own database (:func:`checkpoints_for`): a
table in its SQLite file or its PostgreSQL schema, written through the store's transactions. ``streamsource relay --store URL --bootstrap HOST:PORT`` runs a relay.
"""

from __future__ import annotations

from streamsource.bridge.async_inbox import AsyncHandler, AsyncInboxConsumer, AsyncStoreInbox
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import (
    CheckpointStore,
    DatabaseCheckpoints,
    MemoryCheckpoints,
    checkpoints_for,
)
from streamsource.bridge.consumer import Handler, InboxConsumer
from streamsource.bridge.errors import (
    BridgeError,
    ConsumerStopped,
    HandlerFailed,
    InvalidBridgeMessage,
    KafkaClientError,
    RelayStopped,
)
from streamsource.bridge.inbox import Inbox, PostgresInbox, SqliteInbox, StoreInbox
from streamsource.bridge.mapping import TopicMapping, sanitize_topic
from streamsource.bridge.messages import OutgoingMessage, event_from_message, message_for
from streamsource.bridge.relay import OutboxRelay
from streamsource.bridge.relay_group import RelayGroup
from streamsource.bridge.tracker import AckTracker

__all__ = [
    "AckTracker",
    "AsyncHandler",
    "AsyncInboxConsumer",
    "AsyncStoreInbox",
    "Backoff",
    "BridgeError",
    "CheckpointStore",
    "ConsumerStopped",
    "DatabaseCheckpoints",
    "Handler",
    "HandlerFailed",
    "Inbox",
    "InboxConsumer",
    "InvalidBridgeMessage",
    "KafkaClientError",
    "MemoryCheckpoints",
    "OutboxRelay",
    "OutgoingMessage",
    "PostgresInbox",
    "RelayGroup",
    "RelayStopped",
    "SqliteInbox",
    "StoreInbox",
    "TopicMapping",
    "checkpoints_for",
    "event_from_message",
    "message_for",
    "sanitize_topic",
]
