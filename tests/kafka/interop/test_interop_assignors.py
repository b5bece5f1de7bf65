"""librdkafka's cooperative-sticky assignor, unchanged, against the broker's group coordinator
(incremental rebalancing, which the coordinator sees as ordinary joins with an opaque
protocol). Range and roundrobin are librdkafka's defaults, covered in test_interop_confluent."""

from __future__ import annotations

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from deadline import wait_until
from streamsource.kafka import EmbeddedBroker

PARTITIONS = 4


LIMIT = 90.0  # only turns a hang into a failure; it measures nothing


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

        wait_until(alone, LIMIT, "the first member owning every partition")
        b = member("b")
        second = b

        def split() -> bool:
            a.poll(0.1)
            second.poll(0.1)
            owned_a = {tp.partition for tp in a.assignment()}
            owned_b = {tp.partition for tp in second.assignment()}
            return len(owned_a) == len(owned_b) == 2 and owned_a | owned_b == set(range(4))

        wait_until(split, LIMIT, "the partitions split between two cooperative members")
        b.close()
        b = None
        wait_until(alone, LIMIT, "the first member owning every partition again")
    finally:
        if b is not None:
            b.close()
        a.close()
