"""Committed offsets survive ``kill -9`` of the broker: no redelivery beyond the last commit.

A consumer group member commits synchronously after every batch while the broker (a real
``streamsource broker`` process) is killed with SIGKILL at an arbitrary moment, several
times. Every commit the client saw succeed must still be there after the restart, so a
consumer only ever gets back what came after its last successful commit (at-least-once
redelivery of a batch whose commit failed is expected; losing a confirmed commit is not).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.slow

PARTITIONS = 3
MESSAGES_PER_ROUND = 3000
ROUNDS = 3


def consumer_for(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for n in range(count):
        producer.produce(topic, b"%d" % n, key=b"%d" % (n % 50))
        producer.poll(0)
    assert producer.flush(60) == 0


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of each partition, as a fresh client reads it."""
    reader = consumer_for(bootstrap, group)
    try:
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in reader.committed(wanted, timeout=30)}
    finally:
        reader.close()


def test_a_confirmed_commit_survives_kill_9_of_the_broker(tmp_path: Path) -> None:
    broker = BrokerProcess(
        tmp_path / "broker", tmp_path / "broker.log", fsync="always", partitions=PARTITIONS
    )
    broker.start()
    topic, group = f"t-{uuid.uuid4().hex[:8]}", "g"
    try:
        confirmed: dict[int, int] = {}  # what the client saw committed, per partition
        for _ in range(ROUNDS):
            produce(broker.bootstrap, topic, MESSAGES_PER_ROUND)
            consumer = consumer_for(broker.bootstrap, group)
            consumer.subscribe([topic])
            killer: threading.Timer | None = None
            while broker.alive:
                batch = [m for m in consumer.consume(20, 0.2) if m.error() is None]
                if not batch:
                    continue
                offsets = {m.partition(): m.offset() + 1 for m in batch}
                try:
                    answer = consumer.commit(
                        offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                        asynchronous=False,
                    )
                except KafkaException:
                    continue  # not confirmed: the broker is dying or gone
                for tp in answer:
                    if tp.error is None:
                        confirmed[tp.partition] = max(confirmed.get(tp.partition, 0), tp.offset)
                if killer is None:  # SIGKILL while commits keep coming, at no chosen moment
                    killer = threading.Timer(0.3, broker.kill)
                    killer.start()
            assert killer is not None
            killer.join()
            consumer.close()
            broker.start()  # same data directory, same port
            stored = committed(broker.bootstrap, group, topic)
            for partition, offset in confirmed.items():
                assert stored[partition] >= offset, (partition, stored, confirmed)
        assert sum(confirmed.values()) > 0
    finally:
        if broker.alive:
            broker.kill()
