"""kafka-python 3.0.12 against the broker (its idempotent producer is on by default).

The broker's own suite (tests/kafka/broker/test_broker_kafka_python.py) already drives the
basics with this client in-process; here: every codec with headers, a two-member group
with rebalances on join and leave, resumed offsets, the idempotent producer's sequence
across many batches, admin, offsets by time, and a restart of the broker process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from interop_support import CODECS, numbered, unique_topic, wait_until
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, RebalanceInProgressError, TopicAlreadyExistsError

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.interop

HEADERS = [("source", b"interop"), ("trace", b"\x00\x01\xff")]


def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    partition: int | None = None,
    **config: object,
) -> list[int]:
    """Send, wait for every acknowledgement; returns the offsets."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **config)
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=HEADERS, partition=partition)
            for key, value in messages
        ]
        producer.flush(timeout=30)
        return [future.get(timeout=30).offset for future in futures]
    finally:
        producer.close(timeout=10)


def new_consumer(bootstrap: str, *topics: str, **config: object) -> KafkaConsumer:
    config.setdefault("auto_offset_reset", "earliest")
    config.setdefault("enable_auto_commit", False)
    return KafkaConsumer(*topics, bootstrap_servers=bootstrap, **config)


def group_member(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    """A consumer in ``group`` that has ``topic``'s partitions before it first joins.

    Subscribed by name, kafka-python 3.0.12 joins before its first metadata response: as
    leader it assigns nothing, rejoins once the topic's partitions arrive, and that rejoin
    now and then strands it for its 30 s request timeout (the client's join race; a real
    broker's 3 s initial rebalance delay hides it, the test brokers have none). Subscribed by
    pattern it fetches metadata before joining (KAFKA-3949) and joins once.
    """
    consumer = new_consumer(bootstrap, group_id=group)
    consumer.subscribe(pattern=f"^{re.escape(topic)}$")
    return consumer


def take(consumer: KafkaConsumer, count: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """The next ``count`` records from ``consumer`` (fails after ``timeout``)."""
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=count - len(got)).values():
            got.extend(records)
    assert len(got) == count, f"consumed {len(got)} of {count} records"
    return got


def read_all(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord]:
    consumer = new_consumer(bootstrap, topic)
    try:
        return take(consumer, count)
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", [None, *CODECS])
def test_codec_keys_and_headers(broker: EmbeddedBroker, codec: str | None) -> None:
    topic = unique_topic(f"kp-{codec}")
    messages = [(k, v * 20) for k, v in numbered(100)]
    assert produce(broker.bootstrap, topic, messages, compression_type=codec) == list(range(100))
    got = read_all(broker.bootstrap, topic, 100)
    assert [(r.key, r.value) for r in got] == messages
    assert all(list(r.headers) == HEADERS for r in got)


def test_idempotent_producer_keeps_every_message_once(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kp-idempotent")
    messages = numbered(3000)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all",
        batch_size=2048, linger_ms=1,
    )  # fmt: skip
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value, partition=0)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    got = read_all(broker.bootstrap, topic, 3000)
    assert [r.value for r in got] == [v for _, v in messages]
    assert [r.offset for r in got] == list(range(3000))


# kafka-python 3.x runs a rebalance inside poll(); a poll that ends mid-rebalance abandons
# the round and re-joins, and the leader re-joining starts another round: with short polls
# two members can keep each other rebalancing. A poll long enough for a round avoids it.
GROUP_POLL_MS = 1000


def subscribed_member(bootstrap: str, topic: str, options: dict[str, object]) -> KafkaConsumer:
    """A group member that knows the topic's partitions before it joins.

    Subscribing first races the client's own metadata fetch: the leader may assign
    nothing ("No partition metadata"), then re-join at once; kafka-python 3.0.12 was once
    seen to stall in that second round. Real applications start with known topics.
    """
    consumer = new_consumer(bootstrap, **options)
    wait_until(lambda: consumer.partitions_for_topic(topic), 30, f"metadata of {topic}")
    consumer.subscribe([topic])
    return consumer


def test_group_of_two_rebalances_on_join_and_leave(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kp-group")
    group = unique_topic("group")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        admin.close()
    options = {"group_id": group, "heartbeat_interval_ms": 300, "session_timeout_ms": 10_000}
    a = subscribed_member(broker.bootstrap, topic, options)
    b: KafkaConsumer | None = None
    try:

        def a_owns_all() -> bool:
            a.poll(timeout_ms=GROUP_POLL_MS)
            return len(a.assignment()) == 4

        wait_until(a_owns_all, 30, "a, alone in the group, to own all four partitions")
        b = subscribed_member(broker.bootstrap, topic, options)  # joining: a rebalance
        second = b

        def balanced() -> bool:
            a.poll(timeout_ms=GROUP_POLL_MS)
            second.poll(timeout_ms=GROUP_POLL_MS)
            owned_a = {tp.partition for tp in a.assignment()}
            owned_b = {tp.partition for tp in second.assignment()}
            return len(owned_a) == 2 and owned_a | owned_b == {0, 1, 2, 3}

        wait_until(balanced, 60, "the two members to share four partitions")
        for p in range(4):
            values = [(b"p", b"%d-%d" % (p, i)) for i in range(5)]
            produce(broker.bootstrap, topic, values, partition=p)
        seen: list[bytes] = []

        def everything_seen() -> bool:
            for consumer in (a, second):
                for records in consumer.poll(timeout_ms=GROUP_POLL_MS).values():
                    seen.extend(r.value for r in records)
                try:
                    consumer.commit()
                except (RebalanceInProgressError, CommitFailedError):
                    pass  # the client re-joins on its next poll; what it read comes again
            committed = [a.committed(TopicPartition(topic, p)) for p in range(4)]
            return set(seen) == expected and committed == [5, 5, 5, 5]

        expected = {b"%d-%d" % (p, i) for p in range(4) for i in range(5)}
        wait_until(everything_seen, 60, "all 20 records read and committed by the members")
        a.close()  # leaves the group: b takes over every partition

        def b_owns_all() -> bool:
            second.poll(timeout_ms=GROUP_POLL_MS)
            return len(second.assignment()) == 4

        wait_until(b_owns_all, 60, "b to own all four partitions after a left")
    finally:
        a.close()
        if b is not None:
            b.close()

    resumed = new_consumer(broker.bootstrap, topic, group_id=group)
    try:
        produce(broker.bootstrap, topic, [(b"late", b"late")])
        assert [r.value for r in take(resumed, 1)] == [b"late"]
    finally:
        resumed.close()


def test_consumer_restart_resumes_committed_offset(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kp-resume")
    group = unique_topic("group")
    produce(broker.bootstrap, topic, numbered(25))
    consumer = new_consumer(broker.bootstrap, topic, group_id=group)
    first = take(consumer, 10)
    consumer.commit()
    consumer.close()
    consumer = new_consumer(broker.bootstrap, topic, group_id=group)
    try:
        rest = take(consumer, 15)
        assert consumer.committed(TopicPartition(topic, 0)) == 10
    finally:
        consumer.close()
    assert [r.value for r in first + rest] == [v for _, v in numbered(25)]


def test_admin_create_list_delete(broker: EmbeddedBroker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    name = unique_topic("kp-admin")
    try:
        admin.create_topics([NewTopic(name, 2, 1)])
        assert name in admin.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(name, 2, 1)])
        admin.delete_topics([name])
        assert name not in admin.list_topics()
    finally:
        admin.close()


def test_earliest_latest_and_time_offsets(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kp-times")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    base = 1_700_000_000_000
    try:
        for i in range(6):
            producer.send(topic, value=b"%d" % i, timestamp_ms=base + 1000 * i, partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tp = TopicPartition(topic, 0)
    try:
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 6}
        found = consumer.offsets_for_times({tp: base + 2500})[tp]
        assert (found.offset, found.timestamp) == (3, base + 3000)
        consumer.assign([tp])
        consumer.seek(tp, found.offset)
        assert [r.value for r in take(consumer, 3)] == [b"3", b"4", b"5"]
        consumer.seek_to_beginning(tp)
        assert take(consumer, 1)[0].offset == 0
    finally:
        consumer.close()


@pytest.mark.slow
def test_broker_process_restart_loses_nothing(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    proc = broker_process(partitions=2)
    topic = unique_topic("kp-restart")
    group = unique_topic("group")
    produce(proc.bootstrap, topic, numbered(200, "before"), acks="all")
    consumer = group_member(proc.bootstrap, topic, group)
    take(consumer, 50)
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in range(2)}
    consumer.close()
    assert proc.terminate() == 0

    proc.start()
    produce(proc.bootstrap, topic, numbered(20, "after"), acks="all")
    everything = read_all(proc.bootstrap, topic, 220)
    values = [r.value for r in everything]
    assert sorted(values) == sorted(v for _, v in numbered(200, "before") + numbered(20, "after"))
    consumer = group_member(proc.bootstrap, topic, group)
    try:
        rest = take(consumer, 170)
        assert {p: consumer.committed(TopicPartition(topic, p)) for p in range(2)} == committed
    finally:
        consumer.close()
    assert len({r.value for r in rest}) == 170
