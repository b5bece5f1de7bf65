"""aiokafka against the broker (it refuses any API missing from ApiVersions).

The broker runs in its own thread (``EmbeddedBroker``); the clients run in the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from interop_support import CODECS, numbered, unique_topic

from deadline import Deadline
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.interop

HEADERS = [("source", b"aiokafka"), ("n", b"1")]


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    partition: int | None = None,
    **config: object,
) -> list[int]:
    """Send and wait for each acknowledgement; returns the offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **config)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key, headers=HEADERS, partition=partition)
            for key, value in messages
        ]
        return [(await future).offset for future in futures]
    finally:
        await producer.stop()


async def take(consumer: AIOKafkaConsumer, count: int, timeout: float = 30) -> list[ConsumerRecord]:
    """The next ``count`` records (fails after ``timeout``)."""
    got: list[ConsumerRecord] = []

    async def drain() -> None:
        while len(got) < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=count - len(got))
            for records in batches.values():
                got.extend(records)

    await asyncio.wait_for(drain(), timeout)
    return got


async def read_all(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        return await take(consumer, count)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("codec", [None, *CODECS])
async def test_codec_keys_and_headers(broker: EmbeddedBroker, codec: str | None) -> None:
    topic = unique_topic(f"aio-{codec}")
    messages = [(k, v * 30) for k, v in numbered(100)]
    offsets = await produce(broker.bootstrap, topic, messages, compression_type=codec)
    assert offsets == list(range(100))
    got = await read_all(broker.bootstrap, topic, 100)
    assert [(r.key, r.value) for r in got] == messages
    assert all(list(r.headers) == HEADERS for r in got)


async def test_idempotent_producer(broker: EmbeddedBroker) -> None:
    topic = unique_topic("aio-idempotent")
    messages = numbered(1000)
    await produce(broker.bootstrap, topic, messages, enable_idempotence=True, acks="all")
    got = await read_all(broker.bootstrap, topic, 1000)
    assert [r.value for r in got] == [v for _, v in messages]


async def test_group_rebalance_and_resume(broker: EmbeddedBroker) -> None:
    topic = unique_topic("aio-group")
    group = unique_topic("group")
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic, bootstrap_servers=broker.bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False, heartbeat_interval_ms=300,
        )  # fmt: skip

    a = member()
    await a.start()
    b = member()
    try:
        await asyncio.wait_for(_until(lambda: len(a.assignment()) == 2), 30)
        await b.start()  # joins: the group rebalances, one partition each
        await asyncio.wait_for(
            _until(lambda: len(a.assignment()) == 1 and len(b.assignment()) == 1), 60
        )
        for p in range(2):
            messages = [(b"k", b"%d-%d" % (p, i)) for i in range(5)]
            await produce(broker.bootstrap, topic, messages, partition=p)
        got_a, got_b = await asyncio.gather(take(a, 5), take(b, 5))
        assert sorted(r.value for r in got_a + got_b) == sorted(
            b"%d-%d" % (p, i) for p in range(2) for i in range(5)
        )
        assert {r.partition for r in got_a} != {r.partition for r in got_b}
        await a.commit()
        await b.commit()
    finally:
        await a.stop()
        await b.stop()

    resumed = member()
    await resumed.start()
    try:
        await produce(broker.bootstrap, topic, [(b"k", b"new")])
        assert [r.value for r in await take(resumed, 1)] == [b"new"]
    finally:
        await resumed.stop()


async def test_admin_offsets_by_time(broker: EmbeddedBroker) -> None:
    topic = unique_topic("aio-times")
    base = 1_700_000_000_000
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(
                topic, b"%d" % i, partition=0, timestamp_ms=base + 1000 * i
            )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    try:
        assert await consumer.beginning_offsets([tp]) == {tp: 0}
        assert await consumer.end_offsets([tp]) == {tp: 5}
        found = (await consumer.offsets_for_times({tp: base + 1500}))[tp]
        assert (found.offset, found.timestamp) == (2, base + 2000)
        consumer.assign([tp])
        consumer.seek(tp, found.offset)
        assert [r.value for r in await take(consumer, 3)] == [b"2", b"3", b"4"]
    finally:
        await consumer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
        await admin.delete_topics([topic])
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.mark.slow
async def test_broker_process_restart_loses_nothing(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    proc = broker_process()
    topic = unique_topic("aio-restart")
    await produce(proc.bootstrap, topic, numbered(100, "before"), acks="all")
    assert proc.terminate() == 0
    proc.start()
    await produce(proc.bootstrap, topic, numbered(10, "after"), acks="all")
    got = await read_all(proc.bootstrap, topic, 110)
    assert [r.value for r in got] == [v for _, v in numbered(100, "before") + numbered(10, "after")]


async def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = Deadline(timeout, getattr(condition, "__name__", "a condition"))
    while not condition():
        deadline.check()
        await asyncio.sleep(0.1)
