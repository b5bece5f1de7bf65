"""The demo's streaming sections: the seed's Kafka example, then the store-to-Kafka bridge.

Both run against the embedded broker started in-process (data in ``DIR/broker``), with
confluent-kafka, the client streamsource depends on; the same code works against any Kafka
cluster by changing the bootstrap address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamsource as ss
from streamsource.cli.demo import DemoContext, DemoStep

# librdkafka's own chatter (connections closing at shutdown) stays out of the trail
_quiet = logging.getLogger("streamsource.demo.kafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

_WAIT_S = 30.0


@contextmanager
def _broker(ctx: DemoContext) -> Iterator[str]:
    from streamsource.kafka import EmbeddedBroker

    with EmbeddedBroker(port=0, data_dir=ctx.directory / "broker", default_partitions=2) as broker:
        yield broker.bootstrap


def _seed_streaming(ctx: DemoContext) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    with _broker(ctx) as bootstrap:
        ctx.out.text(f"embedded broker listening on {bootstrap}")
        # Set up a Kafka producer to send events to a topic
        producer = Producer({"bootstrap.servers": bootstrap, "logger": _quiet})
        delivered: list[Any] = []
        # Send some events to the topic
        for key, value in ((b"key1", b"value1"), (b"key2", b"value2")):
            producer.produce(
                "my-topic", value, key, on_delivery=lambda err, msg: delivered.append(msg)
            )
        producer.flush(_WAIT_S)
        if len(delivered) != 2 or any(m.error() for m in delivered):
            raise DemoFailed("the broker did not acknowledge both messages")
        ctx.out.text("sent key1/value1 and key2/value2 to my-topic")

        # Set up a Kafka consumer to read events from the topic (from where ours start, so a
        # demo run again in the same directory shows this run's two messages)
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "seed-reader", "logger": _quiet}
        )
        starts: dict[int, int] = {}
        for message in delivered:
            starts[message.partition()] = min(
                message.offset(), starts.get(message.partition(), message.offset())
            )
        consumer.assign([TopicPartition("my-topic", p, o) for p, o in starts.items()])
        received: list[Any] = []
        deadline = time.monotonic() + _WAIT_S
        try:
            # Read events from the topic
            while len(received) < 2 and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                received.append(message)
                shown_key = (message.key() or b"").decode()
                shown_value = (message.value() or b"").decode()
                ctx.out.text(f"Received message: key={shown_key}, value={shown_value}")
        finally:
            consumer.close()
        if len(received) != 2:
            raise DemoFailed("the two messages did not come back from my-topic")


def _bridge(ctx: DemoContext) -> None:
    from streamsource.bridge import (
        InboxConsumer,
        OutboxRelay,
        SqliteInbox,
        TopicMapping,
        checkpoints_for,
    )

    store = ctx.store
    checkpoints = checkpoints_for(store)
    start = checkpoints.load("demo")
    expected = sum(1 for _ in store.read_category("account", after=start))
    mapping = TopicMapping.of(["account"], topic_prefix="bank.")
    rows: list[tuple[object, ...]] = []

    def show(event: ss.RecordedEvent, tx: Any) -> None:
        amount = event.data.get("amount", "") if isinstance(event.data, dict) else ""
        rows.append((event.position, event.stream, event.version, event.type, amount))

    with _broker(ctx) as bootstrap:
        relay = OutboxRelay(
            store,
            bootstrap,
            mapping=mapping,
            checkpoints=checkpoints,
            name="demo",
            producer_config={"logger": _quiet},
        )
        with relay:
            if not relay.wait_for(store.head_position(), _WAIT_S):
                raise DemoFailed("the relay did not get every event acknowledged")
        ctx.out.text(
            f"relay: {relay.published} account events published to topic"
            f" {mapping.topic_for('account')} (checkpoint {start} -> {relay.saved_checkpoint},"
            f" kept in {store.recorder.database.where if store.recorder.database else 'memory'})"
        )
        inbox = SqliteInbox(str(ctx.directory / "demo-inbox.db"), durability="normal")
        consumer = InboxConsumer(
            bootstrap,
            "demo-printer",
            [mapping.topic_for("account")],
            show,
            inbox,
            consumer_config={"logger": _quiet},
        )
        deadline = time.monotonic() + _WAIT_S
        try:
            while consumer.handled < expected and time.monotonic() < deadline:
                consumer.poll(0.2)
        finally:
            consumer.close()
            inbox.close()
        checkpoints.close()
    rows.sort()
    ctx.out.table(
        "read from Kafka by a consumer-group member (each event applied once via its inbox)",
        ["position", "stream", "version", "event", "amount"],
        rows,
    )
    if consumer.handled < expected:
        raise DemoFailed(f"the consumer got {consumer.handled} of {expected} events")


class DemoFailed(ss.StreamsourceError):
    """A streaming step of the demo did not see what it expected."""


STEPS: list[DemoStep] = [
    DemoStep(
        "Event streaming (the seed's Kafka example)",
        "The seed's Go producer and consumer, in Python with confluent-kafka, against the "
        "Kafka-compatible broker embedded in streamsource: write key1/value1 and key2/value2 "
        "to my-topic and read them back.",
        _seed_streaming,
    ),
    DemoStep(
        "From the event store to Kafka",
        "The outbox relay publishes the bank-account events recorded above to a Kafka topic "
        "(stream as key, id/type/version/position/metadata as headers), checkpointing only "
        "what the broker acknowledged; a consumer-group member reads and prints them.",
        _bridge,
    ),
]
