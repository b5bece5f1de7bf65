"""confluent-kafka (librdkafka 2.16) with ``group.protocol=consumer``: the KIP-848 protocol.

The broker assigns (uniform by default), hands partitions over incrementally and expires
members that stop heartbeating; the client only heartbeats. Every wait is a bounded poll.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from interop_support import unique_topic, wait_until

from streamsource.kafka import EmbeddedBroker

pytestmark = pytest.mark.interop

PARTITIONS = 4


def consumer_protocol_broker(
    factory: Callable[..., EmbeddedBroker], **config: object
) -> EmbeddedBroker:
    config.setdefault("group_consumer_heartbeat_interval_ms", 250)
    return factory(**config)


def make_topic(broker: EmbeddedBroker, prefix: str) -> str:
    topic = unique_topic(prefix)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    return topic


def produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, key=b"k", value=f"v{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def new_consumer(bootstrap: str, group: str, topic: str, **config: object) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe([topic])
    return consumer


def owned(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def poll_all(consumers: list[Consumer], into: dict[int, list[Message]] | None = None) -> bool:
    """One short poll of each consumer (their heartbeats and rebalances run on polls);
    False, so that ``poll_all(...) or condition`` polls, then tests the condition."""
    for i, consumer in enumerate(consumers):
        message = consumer.poll(0.1)
        if message is not None and into is not None:
            assert message.error() is None, message.error()
            into.setdefault(i, []).append(message)
    return False


def test_members_join_commit_and_leave_with_incremental_handover(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = consumer_protocol_broker(broker_factory)
    topic = make_topic(broker, "kip848")
    produce(broker.bootstrap, topic, 0, 40)
    first = new_consumer(broker.bootstrap, "kip848", topic)
    got: dict[int, list[Message]] = {}
    wait_until(lambda: poll_all([first], got) or len(got.get(0, [])) == 40, what="40 messages")
    assert owned(first) == set(range(PARTITIONS))
    first.commit(asynchronous=False)

    second = new_consumer(broker.bootstrap, "kip848", topic)
    wait_until(
        lambda: poll_all([first, second]) or (len(owned(first)), len(owned(second))) == (2, 2),
        what="two partitions each",
    )
    assert owned(first) | owned(second) == set(range(PARTITIONS))
    produce(broker.bootstrap, topic, 40, 40)
    got = {}
    wait_until(
        lambda: poll_all([first, second], got) or sum(map(len, got.values())) == 40,
        what="the second 40 messages",
    )
    # each member read exactly its own partitions, nothing twice, nothing from before
    for i, consumer in enumerate([first, second]):
        assert {m.partition() for m in got[i]} == owned(consumer)
    values = sorted(int(m.value()[1:]) for ms in got.values() for m in ms)  # type: ignore[index]
    assert values == list(range(40, 80))
    first.commit(asynchronous=False)
    second.commit(asynchronous=False)

    second.close()  # leaves the group (epoch -1): first takes everything back
    wait_until(lambda: poll_all([first]) or len(owned(first)) == PARTITIONS, what="handback")
    committed = first.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)
    assert [tp.offset for tp in committed] == [20] * PARTITIONS
    first.close()

    # a new member of the group resumes from the committed offsets: nothing is read again
    produce(broker.bootstrap, topic, 80, 4)
    third = new_consumer(broker.bootstrap, "kip848", topic)
    got = {}
    try:
        wait_until(lambda: poll_all([third], got) or len(got.get(0, [])) == 4, what="4 new")
        assert sorted(m.value() or b"" for m in got[0]) == [b"v80", b"v81", b"v82", b"v83"]
    finally:
        third.close()


_MEMBER = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                  "group.protocol": "consumer", "auto.offset.reset": "earliest"})
    c.subscribe([sys.argv[3]])
    announced = False
    while True:
        c.poll(0.1)
        if c.assignment() and not announced:
            print("assigned", flush=True)
            announced = True
    """
)


def test_a_killed_member_expires_and_its_partitions_move(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = consumer_protocol_broker(broker_factory, group_consumer_session_timeout_ms=3_000)
    topic = make_topic(broker, "kip848-kill")
    survivor = new_consumer(broker.bootstrap, "kip848-kill", topic)
    wait_until(lambda: poll_all([survivor]) or len(owned(survivor)) == 4, what="all four")
    victim = subprocess.Popen(
        [sys.executable, "-c", _MEMBER, broker.bootstrap, "kip848-kill", topic],
        stdout=subprocess.PIPE,
    )
    try:
        assert victim.stdout is not None
        deadline = time.monotonic() + 30
        wait_until(
            lambda: poll_all([survivor]) or len(owned(survivor)) == 2,
            what="the victim's share",
        )
        line = b""
        while not line and time.monotonic() < deadline and victim.poll() is None:
            line = victim.stdout.readline()
        assert line.strip() == b"assigned"
    finally:
        victim.kill()
        victim.wait(timeout=30)
    # no leave was sent: the session (3 s) ends and the survivor gets everything back
    wait_until(lambda: poll_all([survivor]) or len(owned(survivor)) == 4, what="expiry")
    described = broker.broker.groups.consumer_groups.groups["kip848-kill"]
    assert len(described.members) == 1
    survivor.close()


def test_a_static_member_restarting_gets_its_partitions_back_without_moving_others(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = consumer_protocol_broker(broker_factory)
    topic = make_topic(broker, "kip848-static")
    static = new_consumer(broker.bootstrap, "static", topic, **{"group.instance.id": "pod-1"})
    other = new_consumer(broker.bootstrap, "static", topic)
    wait_until(
        lambda: poll_all([static, other]) or (len(owned(static)), len(owned(other))) == (2, 2),
        what="two partitions each",
    )
    before_static, before_other = owned(static), owned(other)
    epoch = broker.broker.groups.consumer_groups.groups["static"].group_epoch
    static.close()  # a static member leaves "for now" (epoch -2): nothing moves
    restarted = new_consumer(broker.bootstrap, "static", topic, **{"group.instance.id": "pod-1"})
    try:
        wait_until(
            lambda: poll_all([restarted, other]) or owned(restarted) == before_static,
            what="the restarted static member's partitions",
        )
        assert owned(other) == before_other
        assert broker.broker.groups.consumer_groups.groups["static"].group_epoch == epoch
    finally:
        restarted.close()
        other.close()


def test_admin_describes_a_consumer_protocol_group(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = consumer_protocol_broker(broker_factory)
    topic = make_topic(broker, "kip848-describe")
    consumer = new_consumer(broker.bootstrap, "described", topic, **{"client.id": "reader"})
    try:
        wait_until(lambda: poll_all([consumer]) or len(owned(consumer)) == 4, what="assigned")
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        description = admin.describe_consumer_groups(["described"])["described"].result(30)
        assert description.group_id == "described"
        (member,) = description.members
        assert member.client_id == "reader"
        assigned = {tp.partition for tp in member.assignment.topic_partitions}
        assert assigned == set(range(PARTITIONS))
        listed = admin.list_consumer_groups().result(30)
        assert "described" in {g.group_id for g in listed.valid}
    finally:
        consumer.close()
