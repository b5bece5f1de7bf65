"""The Kafka transport: each service's outbox published by the bridge's relay, its inbound
channels consumed by the bridge's inbox consumer, on ``streamsource broker`` or any Kafka.

Per service:

* an :class:`~streamsource.bridge.OutboxRelay` over the service's store (with
  ``shared_relay``, all of them run by one :class:`~streamsource.bridge.RelayGroup`: one
  thread, one producer), selecting its outbox category (``messages.{service}``) and routing each message to the topic of its channel
  (:func:`route`): key = the envelope's key, value = the message's JSON, headers = the
  relay's event headers plus the envelope's (:func:`~streamsource.messaging.envelope.kafka_headers`).
  Its checkpoint (``messages.{service}``) lives in the service's store; the broker
  acknowledges before it moves, so a message is never marked sent before it is stored.
* an :class:`~streamsource.bridge.InboxConsumer` in group ``{namespace}.{service}`` (or
  ``group_prefix + service``) over the service's inbound channels. The consumer hands each
  messages of each poll to :meth:`Service.deliver_batch
  <streamsource.messaging.Service.deliver_batch>`, whose transaction checks and writes the
  inbox rows (:class:`_DeliveringInbox`; on SQLite one transaction for the batch); Kafka offsets are
  committed after the transactions, at most every 0.5 s, so a crash redelivers what was
  applied since and the inbox skips it. With ``shared_consumer``, one consumer for all the
  services (:class:`_SharedInbox`) in group ``{namespace}.{service+service...}``: each poll's
  messages go to every service subscribed to their topic, each service's share in one
  ``prepare_batch``, the commits overlapping; offsets move once every share committed.

Topics are created up front with the admin API (``partitions`` each, the cluster's default
replication); existing ones are left as they are.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from streamsource.bridge.background import BackgroundLoop
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import checkpoints_for
from streamsource.bridge.consumer import InboxConsumer
from streamsource.bridge.errors import InvalidBridgeMessage, KafkaClientError, kafka_error
from streamsource.bridge.mapping import TopicMapping
from streamsource.bridge.messages import OutgoingMessage, message_for
from streamsource.bridge.relay import OutboxRelay, client_log
from streamsource.bridge.relay_group import RelayGroup
from streamsource.errors import InterfaceError
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.recorder import StoredRecord
from streamsource.extras import require
from streamsource.messaging.context import channel_of, outbox_category
from streamsource.messaging.envelope import envelope_of_metadata, kafka_headers, now
from streamsource.messaging.errors import InvalidMessage
from streamsource.messaging.service import Service, deliver_shares

log = logging.getLogger("streamsource.messaging.kafka")


def route(record: StoredRecord) -> tuple[str, OutgoingMessage]:
    """The topic and Kafka message of one outbox record (see the module docstring)."""
    topic = channel_of(record.stream)
    base = message_for(record)
    try:
        envelope = envelope_of_metadata(str(record.id), record.type, record.metadata)
    except InvalidMessage:  # a dead letter of a message that had no envelope: as it came
        return topic, base
    key = (envelope.key or envelope.correlation_id).encode()
    return topic, OutgoingMessage(key, base.value, [*base.headers, *kafka_headers(envelope)])


MESSAGING_PRODUCER: Mapping[str, Any] = {
    # a message is one hop of a conversation that waits for it (a saga step, a reply):
    # send at once; what comes in while a request is in flight still goes out together
    "linger.ms": 0,
    # with shared_relay one producer serves every service's outbox, so several requests
    # are often in flight on its connection: with Nagle's algorithm each one after the
    # first waits for the previous one's TCP acknowledgement (measured in the mall at 20
    # orders/s: p50 checkout to approved 62 ms with it, 33-36 ms without)
    "socket.nagle.disable": True,
}


class _DeliveringInbox:
    """The inbox consumer's view of a service: every message is applied, inbox row included,
    by ``Service.deliver_batch`` while the batch is claimed (in one transaction of the
    service's store on SQLite, else one per message); nothing is
    left for the consumer's handler. A store fault raised here reaches the consumer
    unwrapped, so a retriable one is retried with backoff (the batch again, the inbox
    skipping what was applied) instead of stopping it."""

    events_per_transaction = None

    def __init__(self, service: Service) -> None:
        self.service = service

    def topics(self) -> list[str]:
        return self.service.inbound_channels()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield None

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[Any]:
        self.service.deliver_batch([(event, None) for event in events])
        return []

    def close(self) -> None:
        pass

    def unreadable(self, message: Any, error: InvalidBridgeMessage) -> None:
        """Park a Kafka message that is no outbox message (no event headers, bad JSON...):
        as a dead letter whose id follows from its topic, partition and offset, so a
        redelivery finds it in the inbox. The raw key and value are kept, cut to
        ``MAX_KEPT`` bytes each."""
        where = f"{message.topic()}/{message.partition()}/{message.offset()}"
        raw = {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "key": _kept(message.key()),
            "value": _kept(message.value()),
        }
        event = RecordedEvent(uuid.uuid5(_UNREADABLE, where), "", 0, 0, UNREADABLE, raw, {}, now())
        self.service.park(event, error)


class _SharedInbox:
    """One inbox consumer's view of several services (``shared_consumer``): each message of
    a poll goes to every service subscribed to its topic (an integration event a service has
    no handler for is skipped), each service's share applied by ``prepare_batch`` in turn on
    the consumer's thread, every commit (an fsync) but the last on a small pool, overlapping
    the next service's handlers. ``claim`` returns once all of them committed, so the
    consumer commits Kafka offsets only after every service applied its share; a failure
    in one raises after the others' commits ended, and the redelivered poll's messages are
    skipped by the inboxes that have them.

    Why: a librdkafka consumer per service costs each service a polling thread, several
    client threads, its own fetch long-polls and heartbeats; in the mall, nine of them."""

    events_per_transaction = None
    routes_by_topic = True  # the consumer fills topic_of
    topic_of: dict[uuid.UUID, str]

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self._by_topic: dict[str, list[Service]] = {}
        for service in services:
            for channel in service.inbound_channels():
                self._by_topic.setdefault(channel, []).append(service)
        self._pool: ThreadPoolExecutor | None = None
        self.delivered = 0

    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield None

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[Any]:
        topic_of = self.topic_of
        try:
            shares: dict[str, list[tuple[RecordedEvent, str | None]]] = {}
            for event in events:
                topic = topic_of[event.id]
                for service in self._by_topic.get(topic, ()):
                    if not service.ignores(event, topic):
                        shares.setdefault(service.name, []).append((event, topic))
        finally:
            topic_of.clear()
        parts = [(s, shares[s.name]) for s in self.services if s.name in shares]
        self.delivered += deliver_shares(parts, self._committers)
        return []

    def _committers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self.services), "commit-messages")
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def unreadable(self, message: Any, error: InvalidBridgeMessage) -> None:
        """Park a Kafka message that is no outbox message with every service subscribed to
        its topic, as each one's own consumer would (see :meth:`_DeliveringInbox.unreadable`)."""
        for service in self._by_topic.get(message.topic(), ()):
            _DeliveringInbox(service).unreadable(message, error)


UNREADABLE = "streamsource.Unreadable"
"""The type of a dead letter holding a Kafka message that was no outbox message."""
MAX_KEPT = 64 * 1024
_UNREADABLE = uuid.UUID("5d1b6c52-4a1f-4f7e-9a57-2f0f3b8e6a10")


def _kept(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw[:MAX_KEPT]).decode()


def _never_called(event: RecordedEvent, tx: Any) -> None:
    raise AssertionError("the messaging inbox applies every message while claiming it")


def _consumer(
    settings: tuple[str, Mapping[str, Any] | None, Backoff | None],
    group: str,
    name: str,
    inbox: _DeliveringInbox | _SharedInbox,
) -> InboxConsumer:
    bootstrap, consumer_config, backoff = settings
    return InboxConsumer(
        bootstrap,
        group,
        inbox.topics(),
        _never_called,
        inbox,
        name=name,
        consumer_config=consumer_config,
        batch_size=100,
        # a poll returns what has arrived, delivered together: waiting to fill a
        # batch would only add its wait to every hop
        fill_batches=False,
        poll_timeout=0.2,
        # offsets committed late only mean redeliveries after a crash, which
        # the inbox skips; a commit per message was a broker round trip each
        commit_interval=0.5,
        backoff=backoff,
        on_invalid=inbox.unreadable,
    )


class KafkaTransport:
    """Runs the relay and the consumer of each service against the brokers at ``bootstrap``.

    ``start()``/``stop()`` (or ``with``) run them in background threads; ``stop`` re-raises
    the error that stopped one, if any. ``shared_relay=True`` runs every service's relay in
    one thread through one producer (a :class:`~streamsource.bridge.RelayGroup`): fewer
    threads and less CPU per message (the mall: about 10% less per order), but one
    connection's requests are served in turn, so a load bound by round trips through many
    conversations at once gets less through (``benchmarks/messaging.py``'s chained load:
    about 800 round trips/s instead of 1,260). ``shared_consumer=True`` likewise runs one
    inbox consumer for all of them (:class:`_SharedInbox`), in group
    ``{prefix}{service+service...}`` (the receiving services' names, sorted): processes
    running the same services share it (one takes over the other's partitions); a process
    running another set of services is another group. One slow handler then delays the
    other services' deliveries of the same poll.
    """

    def __init__(
        self,
        services: Sequence[Service],
        bootstrap: str,
        *,
        partitions: int = 3,
        group_prefix: str | None = None,
        producer_config: Mapping[str, Any] | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        backoff: Backoff | None = None,
        shared_relay: bool = False,
        shared_consumer: bool = False,
    ) -> None:
        require("confluent_kafka", "kafka", "the Kafka messaging transport")
        if not services:
            raise InterfaceError("a transport needs at least one service")
        self.services = list(services)
        self.bootstrap = bootstrap
        self.partitions = partitions
        self._admin_config = dict(producer_config or {})
        producer_config = {**MESSAGING_PRODUCER, **(producer_config or {})}
        self.relays: dict[str, OutboxRelay] = {}
        self.consumers: dict[str, InboxConsumer] = {}
        for service in services:
            category = outbox_category(service.name)
            self.relays[service.name] = OutboxRelay(
                service.store,
                bootstrap,
                mapping=TopicMapping.of(categories=category),
                checkpoints=checkpoints_for(service.store),
                name=f"messages.{service.name}",
                producer_config=producer_config,
                backoff=backoff,
                router=route,
                # a checkpoint moved late only means messages published again after a
                # crash, which the receivers' inboxes skip; a save is a write transaction
                checkpoint_interval=0.5,
                # the service's own appends wake the relay at once; this only bounds how
                # late it sees another process's (e.g. `messages dead-letters replay`)
                idle_wait=0.1,
            )
        receivers = [service for service in services if service.inbound_channels()]
        namespace = receivers[0].channels.namespace if receivers else ""
        prefix = group_prefix if group_prefix is not None else (
            f"{namespace}." if namespace else ""
        )  # fmt: skip
        settings = (bootstrap, consumer_config, backoff)
        self._shared: _SharedInbox | None = None
        if shared_consumer and receivers:
            shared = self._shared = _SharedInbox(receivers)
            group = "+".join(sorted(service.name for service in receivers))
            consumer = _consumer(settings, prefix + group, f"messages.{group}", shared)
            shared.topic_of = consumer.topic_of if consumer.topic_of is not None else {}
            self.consumers[group] = consumer
        else:
            for service in receivers:
                inbox = _DeliveringInbox(service)
                self.consumers[service.name] = _consumer(
                    settings, prefix + service.name, service.consumer, inbox
                )
        relays = list(self.relays.values())
        self.relaying: list[BackgroundLoop] = (
            [RelayGroup(relays, name="messages")] if shared_relay else list(relays)
        )

    def topics(self) -> list[str]:
        """Every topic the services publish to or consume (known in advance)."""
        names: set[str] = set()
        for service in self.services:
            names.update(service.inbound_channels())
            names.add(service.channels.events(service.name))
            names.add(service.channels.dead_letters(service.name))
        return sorted(names)

    def create_topics(self, timeout: float = 30.0) -> None:
        """Create the topics that do not exist yet."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        config = {"logger": client_log, **self._admin_config, "bootstrap.servers": self.bootstrap}
        admin = AdminClient(config)  # its log through ours, as the relays' and consumers'

        wanted = [NewTopic(t, num_partitions=self.partitions) for t in self.topics()]
        for topic, future in admin.create_topics(wanted, request_timeout=timeout).items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() != "TOPIC_ALREADY_EXISTS":
                    raise kafka_error(error, f"creating topic {topic}") from None
            except TimeoutError:
                raise KafkaClientError(
                    f"creating topic {topic}: no answer", retriable=True
                ) from None

    def start(self) -> KafkaTransport:
        self.create_topics()
        for relaying in self.relaying:
            relaying.start()
        for consumer in self.consumers.values():
            consumer.start()
        return self

    def stop(self) -> None:
        """Stop every consumer, then every relay (each flushes and saves its checkpoint)."""
        errors: list[BaseException] = []
        for loops in (list(self.consumers.values()), self.relaying):
            for loop in loops:  # together: each may be in a wait of up to 0.2 s
                loop.request_stop()
            for loop in loops:
                try:
                    loop.stop()
                except BaseException as exc:  # stop the others before raising
                    errors.append(exc)
        if self._shared is not None:
            self._shared.close()
        if errors:
            raise errors[0]

    def __enter__(self) -> KafkaTransport:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
