"""The broker through a real client: kafka-python 3.x (idempotent producer by default)."""

from __future__ import annotations

from collections.abc import Callable

from kafka.admin import NewTopic

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from streamsource.kafka import EmbeddedBroker


def produce(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], **config: object
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **config)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value, headers=[("source", b"test"), ("n", key)])
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def consume(
    bootstrap: str, topic: str, count: int, **config: object
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
        **config,
    )
    got = []
    try:
        for message in consumer:
            got.append((message.key, message.value, list(message.headers)))
            if len(got) == count:
                break
        if config.get("group_id"):
            consumer.commit()
    finally:
        consumer.close()
    return got


def test_produce_and_consume_keys_and_headers(broker: EmbeddedBroker) -> None:
    messages = [(b"key-%d" % i, b"value-%d" % i) for i in range(20)]
    produce(broker.bootstrap, "events", messages)
    got = consume(broker.bootstrap, "events", len(messages))
    assert [(k, v) for k, v, _ in got] == messages
    assert all(h == [("source", b"test"), ("n", k)] for k, _, h in got)


def test_compression_codecs(broker: EmbeddedBroker) -> None:
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        messages = [(b"k%d" % i, codec.encode() * 50) for i in range(10)]
        produce(broker.bootstrap, f"compressed-{codec}", messages, compression_type=codec)
        got = consume(broker.bootstrap, f"compressed-{codec}", len(messages))
        assert [(k, v) for k, v, _ in got] == messages


def test_consumer_group_commits_and_resumes(broker: EmbeddedBroker) -> None:
    produce(broker.bootstrap, "jobs", [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    first = consume(broker.bootstrap, "jobs", 2, group_id="workers", enable_auto_commit=False)
    assert [v for _, v, _ in first] == [b"1", b"2"]
    produce(broker.bootstrap, "jobs", [(b"d", b"4")])
    second = consume(broker.bootstrap, "jobs", 2, group_id="workers", enable_auto_commit=False)
    assert [v for _, v, _ in second] == [b"3", b"4"]


def test_admin_create_list_describe_delete_topics(broker: EmbeddedBroker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic("orders", 3, 1),
                NewTopic("audit", 1, 1, topic_configs={"retention.ms": "60000"}),
            ]
        )
        assert {"orders", "audit"} <= set(admin.list_topics())
        described = {t["name"]: t for t in admin.describe_topics(["orders"])}
        assert len(described["orders"]["partitions"]) == 3
        admin.delete_topics(["orders"])
        assert "orders" not in set(admin.list_topics())
        assert "audit" in set(admin.list_topics())
    finally:
        admin.close()
    assert sorted(broker.broker.topics.topics) == ["audit"]


def test_offsets_by_time_earliest_latest(broker: EmbeddedBroker) -> None:
    produce(broker.bootstrap, "timed", [(b"k", b"v%d" % i) for i in range(5)])
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        tp = TopicPartition("timed", 0)
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 5}
        found = consumer.offsets_for_times({tp: 0})
        assert found[tp] is not None and found[tp].offset == 0
        assert consumer.offsets_for_times({tp: 2**62})[tp] is None
    finally:
        consumer.close()


def test_old_message_format_is_stored_and_down_converted(broker: EmbeddedBroker) -> None:
    """api_version (0, 10, 1): Produce v2 with magic-1 message sets, Fetch v3 reads magic 1."""
    messages = [(b"k%d" % i, b"old-%d" % i) for i in range(5)]
    old = {"api_version": (0, 10, 1)}
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, **old)
    try:
        for key, value in messages:
            producer.send("legacy", key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(
        "legacy", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=15_000, **old,
    )  # fmt: skip
    try:
        got = [(m.key, m.value) for _, m in zip(range(5), consumer, strict=False)]
    finally:
        consumer.close()
    assert got == messages
    # a modern client reads the same data as v2 batches
    assert [(k, v) for k, v, _ in consume(broker.bootstrap, "legacy", 5)] == messages


def test_restart_keeps_messages_and_committed_offsets(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    data_dir = broker.data_dir
    produce(broker.bootstrap, "durable", [(b"k", b"v%d" % i) for i in range(4)])
    consume(broker.bootstrap, "durable", 2, group_id="g", enable_auto_commit=False)
    broker.stop()

    restarted = broker_factory(data_dir=data_dir)
    assert [v for _, v, _ in consume(restarted.bootstrap, "durable", 4)] == [
        b"v0",
        b"v1",
        b"v2",
        b"v3",
    ]
    resumed = consume(restarted.bootstrap, "durable", 2, group_id="g", enable_auto_commit=False)
    assert [v for _, v, _ in resumed] == [b"v2", b"v3"]
    produce(restarted.bootstrap, "durable", [(b"k", b"v4")])
    assert len(consume(restarted.bootstrap, "durable", 5)) == 5
