"""Static membership (KIP-345, ``group.instance.id``) with the classic protocol and
confluent-kafka: a static member that restarts within its session takes its partitions
back without a rebalance; the other member never notices."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from interop_support import unique_topic, wait_until

from streamsource.kafka import EmbeddedBroker

pytestmark = pytest.mark.interop


def member(bootstrap: str, topic: str, events: list[str], name: str, **config: object) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "static-classic",
            "heartbeat.interval.ms": 300,
            "session.timeout.ms": 30_000,
            **config,
        }
    )

    def assigned(c: Consumer, partitions: list[TopicPartition]) -> None:
        events.append(f"{name} assigned {sorted(p.partition for p in partitions)}")

    def revoked(c: Consumer, partitions: list[TopicPartition]) -> None:
        events.append(f"{name} revoked {sorted(p.partition for p in partitions)}")

    consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked)
    return consumer


def owned(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def test_a_static_member_restarts_without_a_rebalance(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    topic = unique_topic("static-classic")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    events: list[str] = []
    static = member(broker.bootstrap, topic, events, "static", **{"group.instance.id": "pod-1"})
    other = member(broker.bootstrap, topic, events, "other")

    def split() -> bool:
        static.poll(0.1)
        other.poll(0.1)
        return len(owned(static)) == 2 and len(owned(other)) == 2

    wait_until(split, what="two partitions each")
    before = owned(static)
    generation = broker.broker.groups.coordinator.generation("static-classic")
    events.clear()
    static.close()  # a static member sends no LeaveGroup: its place is kept
    restarted = member(
        broker.bootstrap, topic, events, "restarted", **{"group.instance.id": "pod-1"}
    )
    try:

        def back() -> bool:
            restarted.poll(0.1)
            other.poll(0.1)
            return owned(restarted) == before

        wait_until(back, what="the restarted member's partitions")
        for _ in range(10):  # a while longer: nothing else may move
            other.poll(0.1)
        assert broker.broker.groups.coordinator.generation("static-classic") == generation
        assert [e for e in events if e.startswith("other")] == []
    finally:
        restarted.close()
        other.close()
