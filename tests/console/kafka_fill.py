"""A broker process over the data the demo's streaming sections left, plus what the Kafka
pages need: a JSON topic with keys, headers and known timestamps, a binary message, an
empty group with committed offsets, and a group with a live member."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from deadline import Deadline

ORDERS = "orders.json"
PARTITIONS = 3
MESSAGES = 120
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: message n is stamped BASE + n seconds


@dataclass(frozen=True)
class KafkaDemo:
    bootstrap: str


def fill(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(ORDERS, PARTITIONS, 1), NewTopic("blobs", 1, 1)])
    for future in futures.values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for n in range(MESSAGES):
        producer.produce(
            ORDERS,
            key=f"order-{n}".encode(),
            value=f'{{"order": {n}, "sku": "sku-{n}", "lines": [1, 2]}}'.encode(),
            partition=n % PARTITIONS,
            timestamp=BASE_MS + n * 1000,
            headers=[("source", b"shop"), ("region", b"us" if n % 2 else b"eu")],
        )
    producer.produce("blobs", key=b"raw", value=bytes([0, 159, 146, 150, 255]))
    assert producer.flush(30) == 0
    # an empty group whose offsets stand at the end of every partition
    committer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reset-me", "enable.auto.commit": False}
    )
    per_partition = MESSAGES // PARTITIONS
    committer.commit(
        offsets=[TopicPartition(ORDERS, p, per_partition) for p in range(PARTITIONS)],
        asynchronous=False,
    )
    committer.close()


@contextmanager
def live_member(bootstrap: str, group: str = "live-readers") -> Iterator[Any]:
    """A consumer-group member of ``group`` on ORDERS, polling in a thread until the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "live-reader-1",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([ORDERS])
    deadline = Deadline(60, "the live member's assignment")
    while not consumer.assignment():
        deadline.check()
        consumer.poll(0.2)
    stop = threading.Event()

    def keep_polling() -> None:
        while not stop.is_set():
            consumer.poll(0.2)

    thread = threading.Thread(target=keep_polling, daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        stop.set()
        thread.join(10)
        consumer.close()
