"""confluent-kafka (librdkafka 2.16) against the broker: the client most users will have.

librdkafka reads with read_committed by default, so every consume here also checks that the
last stable offset is right; its idempotent producer, admin client, group protocol (eager
range/roundrobin assignors) and offset lookups are covered with the client's defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from interop_support import CODECS, numbered, unique_topic, wait_until

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.interop


def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    headers: list[tuple[str, str | bytes | None]] | None = None,
    partition: int | None = None,
    timestamp_ms: Callable[[int], int] | None = None,
    config: dict[str, object] | None = None,
) -> list[Message]:
    """Produce and flush; returns the delivery reports (each checked for errors)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **(config or {})})
    delivered: list[Message] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, f"delivery failed: {err}"
        delivered.append(msg)

    for i, (key, value) in enumerate(messages):
        producer.produce(
            topic,
            key=key,
            value=value,
            headers=headers,
            on_delivery=on_delivery,
            partition=-1 if partition is None else partition,  # -1: the client's partitioner
            timestamp=0 if timestamp_ms is None else timestamp_ms(i),  # 0: now
        )
        producer.poll(0)
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert len(delivered) == len(messages)
    return delivered


def value_of(message: Message) -> bytes:
    """A message's value; every message these tests produce has one."""
    value = message.value()
    assert value is not None
    return value


def new_consumer(bootstrap: str, group: str, **config: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "heartbeat.interval.ms": 500,
            **config,
        }
    )


def consume(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Message]:
    """The next ``count`` messages (fails on a client error or after ``timeout``)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for msg in consumer.consume(count - len(got), timeout=0.5):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            got.append(msg)
    assert len(got) == count, f"consumed {len(got)} of {count} messages"
    return got


def commit_consumed(consumer: Consumer) -> None:
    """Commit what ``consumer`` consumed; nothing new, or a rebalance under way, is fine
    (the caller checks the committed offsets it needs)."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        retriable = (
            KafkaError._NO_OFFSET,  # nothing consumed since the last commit
            KafkaError.REBALANCE_IN_PROGRESS,  # the next consume joins the new generation
            KafkaError.ILLEGAL_GENERATION,
        )
        if exc.args[0].code() not in retriable:
            raise


def consume_topic(bootstrap: str, topic: str, count: int, **config: object) -> list[Message]:
    consumer = new_consumer(bootstrap, unique_topic("reader"), **config)
    try:
        consumer.subscribe([topic])
        return consume(consumer, count)
    finally:
        consumer.close()


def test_keys_headers_and_order(broker: EmbeddedBroker) -> None:
    topic = unique_topic("confluent-keys")
    messages = numbered(50)
    headers: list[tuple[str, str | bytes | None]] = [
        ("source", b"interop"),
        ("empty", b""),
        ("source", b"twice"),
    ]
    delivered = produce(broker.bootstrap, topic, messages, headers=headers)
    assert [m.offset() for m in delivered] == list(range(50))
    got = consume_topic(broker.bootstrap, topic, 50)
    assert [(m.key(), m.value()) for m in got] == messages
    assert [m.offset() for m in got] == list(range(50))
    assert all(m.headers() == headers for m in got)


def test_null_key_and_null_value(broker: EmbeddedBroker) -> None:
    topic = unique_topic("confluent-nulls")
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic, value=b"no key")
    producer.produce(topic, key=b"tombstone", value=None)
    assert producer.flush(30) == 0
    got = consume_topic(broker.bootstrap, topic, 2)
    assert [(m.key(), m.value()) for m in got] == [(None, b"no key"), (b"tombstone", None)]


@pytest.mark.parametrize("codec", CODECS)
def test_compression_codec(broker: EmbeddedBroker, codec: str) -> None:
    topic = unique_topic(f"confluent-{codec}")
    messages = [(b"k%d" % i, (b"%s-%d " % (codec.encode(), i)) * 40) for i in range(200)]
    produce(broker.bootstrap, topic, messages, config={"compression.type": codec})
    got = consume_topic(broker.bootstrap, topic, len(messages))
    assert [(m.key(), m.value()) for m in got] == messages


def test_idempotent_producer_delivers_each_message_once_in_order(broker: EmbeddedBroker) -> None:
    topic = unique_topic("confluent-idempotent")
    messages = numbered(2000)
    produce(
        broker.bootstrap, topic, messages, partition=0,
        config={"enable.idempotence": True, "acks": "all", "batch.num.messages": 100},
    )  # fmt: skip
    # a second producer session gets a new producer id and continues the same partition
    produce(
        broker.bootstrap,
        topic,
        numbered(10, "again"),
        partition=0,
        config={"enable.idempotence": True},
    )
    got = consume_topic(broker.bootstrap, topic, 2010)
    assert [m.value() for m in got] == [v for _, v in messages + numbered(10, "again")]


def test_group_rebalance_between_two_members_and_resume(broker: EmbeddedBroker) -> None:
    topic = unique_topic("confluent-group")
    group = unique_topic("group")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    first = [(b"k", b"first-%d" % i) for i in range(40)]
    for p in range(4):
        produce(broker.bootstrap, topic, first[p::4], partition=p)

    a = new_consumer(broker.bootstrap, group, **{"client.id": "member-a"})
    b = new_consumer(broker.bootstrap, group, **{"client.id": "member-b"})
    try:
        a.subscribe([topic])
        seen = [m.value() for m in consume(a, 20)]  # a alone: it owns all four partitions
        assert {tp.partition for tp in a.assignment()} == {0, 1, 2, 3}
        a.commit(asynchronous=False)  # commits what it consumed so far

        b.subscribe([topic])

        def split() -> bool:
            for consumer in (a, b):
                for msg in consumer.consume(10, timeout=0.2):
                    assert msg.error() is None, msg.error()
                    seen.append(msg.value())
            owned_a = {tp.partition for tp in a.assignment()}
            owned_b = {tp.partition for tp in b.assignment()}
            return len(owned_a) == 2 and len(owned_b) == 2 and not owned_a & owned_b

        wait_until(split, 60, "the group to split four partitions between two members")
        # each member now reads and commits its half; together they see every message (at
        # least once: what a read after its commit and before the rebalance, b reads again)
        everything = [TopicPartition(topic, p) for p in range(4)]

        def all_committed() -> bool:
            if not split():
                return False
            for member in (a, b):
                commit_consumed(member)
            return [tp.offset for tp in a.committed(everything, timeout=10)] == [10] * 4

        wait_until(all_committed, 60, "both members to commit every partition's end")
        assert set(seen) == {v for _, v in first}
    finally:
        a.close()
        b.close()

    # restarting the group resumes from the committed offsets: only new messages come
    more = [(b"k", b"second-%d" % i) for i in range(8)]
    for p in range(4):
        produce(broker.bootstrap, topic, more[p::4], partition=p)
    c = new_consumer(broker.bootstrap, group)
    try:
        c.subscribe([topic])
        assert sorted(value_of(m) for m in consume(c, 8)) == sorted(v for _, v in more)
        committed = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
        assert [tp.offset for tp in committed] == [10, 10, 10, 10]
    finally:
        c.close()


def test_consumer_restart_resumes_committed_offset(broker: EmbeddedBroker) -> None:
    topic = unique_topic("confluent-resume")
    group = unique_topic("group")
    produce(broker.bootstrap, topic, numbered(30))
    consumer = new_consumer(broker.bootstrap, group)
    consumer.subscribe([topic])
    first = consume(consumer, 12)
    consumer.commit(message=first[-1], asynchronous=False)
    consumer.close()

    consumer = new_consumer(broker.bootstrap, group)
    try:
        consumer.subscribe([topic])
        rest = consume(consumer, 18)
    finally:
        consumer.close()
    assert [m.value() for m in first + rest] == [v for _, v in numbered(30)]


def test_admin_create_list_delete_topics(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    names = [unique_topic("admin-a"), unique_topic("admin-b")]
    futures = admin.create_topics(
        [
            NewTopic(names[0], num_partitions=3, replication_factor=1),
            NewTopic(names[1], num_partitions=1, replication_factor=1, config={"retention.ms": "60000"}),
        ]
    )  # fmt: skip
    for future in futures.values():
        future.result(30)
    listed = admin.list_topics(timeout=10).topics
    assert len(listed[names[0]].partitions) == 3
    assert len(listed[names[1]].partitions) == 1

    again = admin.create_topics([NewTopic(names[0], num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as info:
        again[names[0]].result(30)
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    admin.delete_topics([names[0]])[names[0]].result(30)
    remaining = admin.list_topics(timeout=10).topics
    assert names[0] not in remaining
    assert names[1] in remaining


def test_earliest_latest_and_timestamp_offsets(broker: EmbeddedBroker) -> None:
    topic = unique_topic("confluent-times")
    base = 1_700_000_000_000
    produce(
        broker.bootstrap, topic, numbered(10), partition=0, timestamp_ms=lambda i: base + 1000 * i
    )
    consumer = new_consumer(
        broker.bootstrap, unique_topic("times"), **{"enable.partition.eof": True}
    )
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
        found = consumer.offsets_for_times(
            [TopicPartition(topic, 0, base + 3500)], timeout=10
        )  # the first message at or after the time: number 4
        assert found[0].offset == 4
        past_end = consumer.offsets_for_times([TopicPartition(topic, 0, base + 10**9)], timeout=10)
        assert past_end[0].offset == OFFSET_END  # -1: no such message

        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = consume(consumer, 10)
        assert [m.timestamp()[1] for m in got] == [base + 1000 * i for i in range(10)]
        consumer.assign([TopicPartition(topic, 0, found[0].offset)])
        assert [m.offset() for m in consume(consumer, 6)] == list(range(4, 10))
        consumer.assign([TopicPartition(topic, 0, OFFSET_END)])

        def at_end() -> bool:  # the client looks "latest" up asynchronously; EOF says it did
            events = consumer.consume(1, timeout=0.2)
            return any(
                (error := e.error()) is not None and error.code() == KafkaError._PARTITION_EOF
                for e in events
            )

        wait_until(at_end, 30, "the consumer to reach the latest offset")
        produce(broker.bootstrap, topic, [(b"late", b"after-end")], partition=0)
        assert [m.value() for m in consume(consumer, 1)] == [b"after-end"]
    finally:
        consumer.close()


@pytest.mark.slow
def test_broker_restart_loses_nothing(broker_process: Callable[..., BrokerProcess]) -> None:
    proc = broker_process(partitions=3)
    topic = unique_topic("confluent-restart")
    group = unique_topic("group")
    before = numbered(300, "before")
    produce(proc.bootstrap, topic, before, config={"acks": "all"})
    consumer = new_consumer(proc.bootstrap, group)
    consumer.subscribe([topic])
    first = consume(consumer, 100)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert proc.terminate() == 0

    proc.start()
    after = numbered(30, "after")
    produce(proc.bootstrap, topic, after, config={"acks": "all"})
    everything = consume_topic(proc.bootstrap, topic, 330)
    assert sorted(value_of(m) for m in everything) == sorted(v for _, v in before + after)
    for p in range(3):  # per partition, order is kept across the restart
        values = [value_of(m) for m in everything if m.partition() == p]
        assert values == sorted(values, key=lambda v: (v.startswith(b"after"), v))

    consumer = new_consumer(proc.bootstrap, group)
    try:
        consumer.subscribe([topic])
        rest = consume(consumer, 230)
    finally:
        consumer.close()
    assert sorted(value_of(m) for m in first + rest) == sorted(value_of(m) for m in everything)
