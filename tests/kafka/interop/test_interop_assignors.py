"""librdkafka's cooperative-sticky assignor, unchanged, against the broker's group coordinator
(incremental rebalancing, which the coordinator sees as ordinary joins with an opaque
protocol). Range and roundrobin are librdkafka's defaults, covered in test_interop_confluent."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from streamsource.kafka import EmbeddedBroker

PARTITIONS = 4


def wait_until(condition: Callable[[], bool], what: str, limit: float = 90.0) -> None:
    """Poll ``condition``; the limit only turns a hang into a failure, it measures nothing."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")


def create_topic(broker: EmbeddedBroker, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[
        topic
    ].result(30)


def test_librdkafka_cooperative_sticky_rebalances_incrementally(broker: EmbeddedBroker) -> None:
    topic = "assigned-cooperative"
    create_topic(broker, topic)

    def member(name: str) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": "group-cooperative",
                "client.id": name,
                "partition.assignment.strategy": "cooperative-sticky",
                "heartbeat.interval.ms": 200,
            }
        )
        consumer.subscribe([topic])
        return consumer

    a = member("a")
    b: Consumer | None = None
    try:

        def alone() -> bool:
            a.poll(0.1)
            return {tp.partition for tp in a.assignment()} == set(range(PARTITIONS))

        wait_until(alone, "the first member owning every partition")
        b = member("b")
        second = b

        def split() -> bool:
            a.poll(0.1)
            second.poll(0.1)
            owned_a = {tp.partition for tp in a.assignment()}
            owned_b = {tp.partition for tp in second.assignment()}
            return len(owned_a) == len(owned_b) == 2 and owned_a | owned_b == set(range(4))

        wait_until(split, "the partitions split between two cooperative members")
        b.close()
        b = None
        wait_until(alone, "the first member owning every partition again")
    finally:
        if b is not None:
            b.close()
        a.close()
