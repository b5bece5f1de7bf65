"""The inbox consumer: a Kafka consumer group member that applies each event exactly once.

For each batch of messages polled from the group, :class:`InboxConsumer` opens one
transaction of its :class:`~streamsource.bridge.inbox.Inbox`, and for every message whose
event id the inbox has not seen, records the id and calls the handler with the event and
that transaction; then commits the transaction, and only then commits the Kafka offsets
(synchronously). A crash between the two commits redelivers the batch, and the inbox skips
it. With ``commit_interval`` the offsets of several batches are committed together, at most
that often (and when partitions are revoked, and on close): a crash then redelivers the
batches of up to that long, which the inbox skips, and the broker serves one OffsetCommit
per interval instead of one per batch (for an inbox that takes one message per batch, one
per message). A handler that raises rolls the whole batch back: nothing of it is applied and its
offsets are not committed (the consumer stops; a restart redelivers from there).

A projection fed from Kafka is just a handler: ``handler(event, tx)`` writes its read model
through ``tx`` (the inbox's connection), in the same transaction as the inbox row.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from streamsource.bridge.background import BackgroundLoop
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.errors import (
    ConsumerStopped,
    HandlerFailed,
    InvalidBridgeMessage,
    KafkaClientError,
    kafka_error,
)
from streamsource.bridge.inbox import Inbox
from streamsource.bridge.messages import event_from_message
from streamsource.bridge.relay import client_log
from streamsource.errors import InterfaceError, StreamsourceError
from streamsource.eventstore.events import RecordedEvent
from streamsource.extras import require
from streamsource.kafka.client_security import ClientSecurity
from streamsource.observability import tracing

log = logging.getLogger("streamsource.bridge.consumer")

Handler = Callable[[RecordedEvent, Any], None]
"""``handler(event, tx)``: apply one event, writing through ``tx`` (the inbox's connection)."""

CONSUMER_DEFAULTS: Mapping[str, Any] = {
    "enable.auto.commit": False,  # offsets are committed after the inbox transaction
    "auto.offset.reset": "earliest",
    "enable.partition.eof": False,
}


class InboxConsumer(BackgroundLoop):
    """Consumes ``topics`` as a member of ``group_id`` and applies events through ``inbox``.

    ``name`` identifies the consumer in the inbox (default: the group id); members of one
    group share it, so an event applied by one member is skipped by another after a
    rebalance. ``consumer_config`` adds or overrides librdkafka settings. A poll waits up to
    ``poll_timeout`` seconds for ``batch_size`` messages: together they bound the delay a
    batch adds and the number of transactions per second. With ``fill_batches=False`` a poll
    returns as soon as one message is there, with whatever else has arrived by then
    (latency first: for an inbox that takes a transaction per message anyway). A message that is not an event
    stops the consumer, unless ``on_invalid(message, error)`` is given: it then sets the
    message aside (a dead letter) and the batch goes on without it.
    """

    thread_kind = "inbox"

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        inbox: Inbox,
        *,
        name: str | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        poll_timeout: float = 0.05,
        fill_batches: bool = True,
        commit_interval: float = 0.0,
        backoff: Backoff | None = None,
        on_invalid: Callable[[Any, InvalidBridgeMessage], None] | None = None,
    ) -> None:
        require("confluent_kafka", "kafka", "an inbox consumer")  # the client the methods import
        # a kafka:// URL carries its security settings (ClientSecurity): librdkafka's names
        bootstrap, security = ClientSecurity.resolve(bootstrap, consumer_config)
        if not topics:
            raise InterfaceError("an inbox consumer needs at least one topic")
        if not 1 <= batch_size <= 100_000:
            raise InterfaceError("batch_size must be between 1 and 100,000")
        if not 0 <= commit_interval <= 60:
            raise InterfaceError("commit_interval must be between 0 and 60 seconds")
        self.group_id = group_id
        self.topics = list(topics)
        self.handler = handler
        self.inbox = inbox
        self.name = name or group_id
        self._config: dict[str, Any] = {
            **CONSUMER_DEFAULTS,
            "logger": client_log,
            **(consumer_config or {}),
            **security.librdkafka(),
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
        }
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self._fill_batches = fill_batches
        self._commit_interval = commit_interval
        self._uncommitted: dict[tuple[str, int], int] = {}  # applied, offsets not committed
        self._committed_at = 0.0
        self.backoff = backoff or Backoff()
        self.on_invalid = on_invalid
        self.retries = 0  # waits after a retriable fault
        self._consumer: Any = None
        super().__init__()
        self.handled = 0  # events applied by this member
        self.skipped = 0  # redeliveries the inbox recognised
        self.assignments = 0  # partition assignments received (one per rebalance)
        self.commit_failures = 0  # batches applied whose offsets the broker did not confirm
        self._trace_parents: dict[uuid.UUID, str] = {}  # event id -> its message's traceparent
        # event id -> its message's topic, for an inbox that routes by topic (it reads and
        # clears it in claim)
        self.topic_of: dict[uuid.UUID, str] | None = (
            {} if getattr(inbox, "routes_by_topic", False) else None
        )

    def open(self) -> None:
        """Create the Kafka consumer and subscribe (``run`` and ``poll`` do this themselves)."""
        if self._consumer is not None:
            return
        from confluent_kafka import Consumer, KafkaException

        try:
            self._consumer = Consumer(self._config)
            self._consumer.subscribe(
                self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke
            )
        except KafkaException as exc:
            raise KafkaClientError(f"cannot create the Kafka consumer: {exc}") from None

    def poll(self, timeout: float | None = None) -> int:
        """Poll one batch, apply it and commit; return the number of messages in it.

        If anything fails before the transaction commits (a handler raising: HandlerFailed;
        a message that is not an event: InvalidBridgeMessage; the database: a store error),
        nothing of the batch is applied and the consumer is moved back to its start, so the
        next ``poll`` tries the same batch again.
        """
        from confluent_kafka import KafkaException

        self.open()
        consumer = self._consumer
        wait = self._poll_timeout if timeout is None else timeout
        try:
            if self._fill_batches:
                messages = consumer.consume(self._batch_size, wait)
            else:  # consume() would wait out its timeout unless the batch fills
                first = consumer.poll(wait)
                messages = [] if first is None else [first]
                if first is not None and self._batch_size > 1:
                    messages += consumer.consume(self._batch_size - 1, 0)
        except KafkaException as exc:
            raise kafka_error(exc.args[0], f"consumer {self.name}") from None
        batch = [m for m in messages if self._usable(m)]
        if not batch:
            if self._uncommitted and self._commit_due():
                self._commit_applied()
            return 0
        try:
            handled, skipped, offsets = self._apply(batch)
        except BaseException:
            self._rewind(batch)
            raise
        self.handled += handled
        self.skipped += skipped
        self._uncommitted.update(offsets)
        if self._commit_due():
            self._commit_applied()
        return len(batch)

    def _commit_due(self) -> bool:
        return time.monotonic() - self._committed_at >= self._commit_interval

    def _commit_applied(self) -> None:
        """Commit the offsets of the batches applied since the last commit."""
        offsets, self._uncommitted = self._uncommitted, {}
        self._committed_at = time.monotonic()
        if offsets and self._consumer is not None:
            self._commit(offsets)

    def _apply(self, batch: list[Any]) -> tuple[int, int, dict[tuple[str, int], int]]:
        offsets: dict[tuple[str, int], int] = {}
        events: list[RecordedEvent] = []
        if self.topic_of:  # left by a batch that failed before its claim
            self.topic_of.clear()
        for message in batch:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            try:
                event = event_from_message(message.key(), message.value(), message.headers())
            except InvalidBridgeMessage as exc:
                error = InvalidBridgeMessage(f"{topic}[{partition}]@{offset}: {exc}")
                if self.on_invalid is None:
                    raise error from None
                self.on_invalid(message, error)  # set aside: the batch goes on without it
                offsets[(topic, partition)] = offset + 1
                continue
            events.append(event)
            offsets[(topic, partition)] = offset + 1
            if self.topic_of is not None:
                self.topic_of[event.id] = topic
            if tracing.TRACER is not None:
                parent = tracing.header_traceparent(message.headers())
                if parent is not None:
                    self._trace_parents[event.id] = parent
        # An inbox whose transactions may append only so often (StoreInbox on PostgreSQL)
        # takes the batch in slices; a failure leaves the slices before it applied, and the
        # redelivered batch skips them.
        size = getattr(self.inbox, "events_per_transaction", None) or len(events) or 1
        new = 0
        for start in range(0, len(events), size):
            new += self._apply_events(events[start : start + size])
        return new, len(events) - new, offsets

    def _apply_events(self, events: list[RecordedEvent]) -> int:
        """Claim ``events`` in the inbox and handle the new ones, in one transaction; how
        many were new. (The asyncio consumer runs this part on its event loop instead.)"""
        handler = self.handler
        with self.inbox.transaction() as tx:
            new = self.inbox.claim(tx, self.name, events)
            for event in new:
                try:
                    if tracing.TRACER is None:
                        handler(event, tx)
                    else:
                        self._handle_traced(event, tx)
                except Exception as exc:
                    raise handler_failed(self.name, event, exc) from exc
        self._trace_parents.clear()
        return len(new)

    def _handle_traced(self, event: RecordedEvent, tx: Any) -> None:
        with handle_span(self.name, event, self._trace_parents):
            self.handler(event, tx)

    def _rewind(self, batch: list[Any]) -> None:
        """Move back to the first offset of ``batch`` in each partition (not applied)."""
        from confluent_kafka import KafkaException, TopicPartition

        first: dict[tuple[str, int], int] = {}
        for message in batch:
            first.setdefault((message.topic(), message.partition()), message.offset())
        try:
            for (topic, partition), offset in first.items():
                self._consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException:
            self.close()  # lost the partition meanwhile: rejoin from the committed offsets

    def run(self, stop: threading.Event | None = None) -> None:
        """Poll and apply until ``stop`` (or :meth:`stop`) is set; then leave the group.

        Retriable faults (the database busy or away, the broker away) are retried after a
        capped exponential backoff with full jitter, the batch again from its start; a
        permanent one (a handler raising, a message that is not an event, a missing table,
        bad credentials) stops the consumer: this raises
        :class:`~streamsource.bridge.errors.ConsumerStopped` naming the cause.
        """
        stop = stop or self._stop
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    self.poll()
                    attempt = 0
                except StreamsourceError as exc:
                    if not exc.retriable or isinstance(exc, HandlerFailed):
                        raise ConsumerStopped(f"consumer {self.name} stopped: {exc}", exc) from exc
                    if isinstance(exc, KafkaClientError):
                        self.close()  # a fatal client state needs a new consumer: rejoin
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    self.retries += 1
                    log.warning("consumer %s: %s; retrying in %.2fs", self.name, exc, delay)
                    stop.wait(delay)
        finally:
            self.close()

    def close(self) -> None:
        """Commit what was applied, leave the group and close the Kafka consumer."""
        if self._consumer is not None and self._uncommitted:
            self._commit_applied()
        consumer, self._consumer = self._consumer, None
        self._uncommitted = {}
        if consumer is not None:
            consumer.close()

    def __enter__(self) -> InboxConsumer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def member(self) -> str:
        """This member's id in the group ("" before it joined)."""
        consumer = self._consumer
        return "" if consumer is None else str(consumer.memberid() or "")

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self.assignments += 1
        log.info("consumer %s (%s): assigned %s", self.name, self.member, _describe(partitions))

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        log.info("consumer %s (%s): revoked %s", self.name, self.member, _describe(partitions))
        if self._uncommitted:  # while the partitions are still ours to commit
            self._commit_applied()

    def _usable(self, message: Any) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise kafka_error(error, f"consumer {self.name}")
        log.debug("consumer %s: %s", self.name, error)  # e.g. broker down: the client retries
        return False

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        # A commit fails when a rebalance took the partition away (the group's generation
        # moved on: after a broker restart every member rejoins) or the broker is down. The
        # new owner, or this member after rejoining, then gets the batch again from the last
        # committed offset and the inbox skips it: expected at-least-once redelivery.
        try:
            answer = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            self.commit_failures += 1
            log.info("consumer %s: offsets not committed (%s)", self.name, exc)
            return
        refused = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in answer or () if tp.error]
        if refused:  # the broker answered, but not for every partition
            self.commit_failures += 1
            log.info("consumer %s: offsets not committed for %s", self.name, ", ".join(refused))


def handle_span(
    consumer: str, event: RecordedEvent, parents: Mapping[uuid.UUID, str]
) -> AbstractContextManager[Any]:
    """The ``streamsource.inbox.handle`` span of one event: the child of its Kafka message's
    ``traceparent`` header (in ``parents`` by event id), else of its metadata's."""
    parent = parents.get(event.id) or tracing.metadata_traceparent(event.metadata)
    attributes = {"streamsource.consumer": consumer, "streamsource.stream": event.stream}
    return tracing.span(
        "streamsource.inbox.handle", parent=parent, kind="CONSUMER", attributes=attributes
    )


def handler_failed(consumer: str, event: RecordedEvent, exc: Exception) -> HandlerFailed:
    """The error that stops a consumer whose handler raised ``exc`` on ``event``."""
    return HandlerFailed(
        f"consumer {consumer}: the handler failed on event {event.id}"
        f" ({event.stream}@{event.version}): {exc!r}; batch rolled back"
    )


def _describe(partitions: list[Any]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
