"""Helpers of the stream-processing tests: topics, producing, reading, apps in threads."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deadline import Deadline


def create_topic(bootstrap: str, name: str, partitions: int, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)]
    )
    futures[name].result(30)


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[str | None, Any, int | None]],
    partition: int = -1,
) -> None:
    """``(key, JSON value, timestamp ms or None)`` records, in order per key (to
    ``partition``; -1: the key's partition)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    for key, value, ts in records:
        producer.produce(
            topic,
            json.dumps(value).encode(),
            None if key is None else key.encode(),
            timestamp=0 if ts is None else ts,  # 0: now
            partition=partition,
        )
        producer.poll(0)
    assert producer.flush(30) == 0


class Reader:
    """Reads a topic from the beginning, all partitions, as (key, JSON value) records."""

    def __init__(self, bootstrap: str, topic: str, *, committed: bool = False) -> None:
        from confluent_kafka import TopicPartition

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"reader-{topic}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed" if committed else "read_uncommitted",
            }
        )
        deadline = Deadline(30, f"the topic {topic} to exist")
        while not (partitions := self._partitions_of(topic)):
            deadline.check()
        self.consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        self.records: list[tuple[str | None, Any]] = []
        self._at_end: set[int] = set()
        self._partitions = len(partitions)

    def _partitions_of(self, topic: str) -> list[int]:
        metadata = self.consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            time.sleep(0.05)  # a poll interval, not a synchronisation
            return []
        return list(metadata.partitions)

    def _read(self, timeout: float) -> None:
        m: Any
        for m in self.consumer.consume(1000, timeout):
            error = m.error()
            if error is not None:
                if error.code() == error._PARTITION_EOF:
                    self._at_end.add(m.partition())
                continue
            self._at_end.discard(m.partition())
            key = m.key()
            self.records.append((None if key is None else key.decode(), json.loads(m.value())))

    def until(self, done: Callable[[list[tuple[str | None, Any]]], bool], what: str,
              timeout: float = 60) -> list[tuple[str | None, Any]]:  # fmt: skip
        deadline = Deadline(timeout, what)
        while not done(self.records):
            deadline.check()
            self._read(deadline.slice(0.5))
        return self.records

    def to_end(self, timeout: float = 60) -> list[tuple[str | None, Any]]:
        """Everything up to the end of every partition (the last stable offset when
        committed), for a reader that has not read before (the client reports an end once)."""
        deadline = Deadline(timeout, "the end of the topic")
        while len(self._at_end) < self._partitions:
            deadline.check()
            self._read(deadline.slice(0.5))
        return self.records

    def close(self) -> None:
        self.consumer.close()


def read_all(
    bootstrap: str, topic: str, *, committed: bool = False
) -> list[tuple[str | None, Any]]:
    """Every record of ``topic`` now (committed ones only if ``committed``)."""
    reader = Reader(bootstrap, topic, committed=committed)
    try:
        return reader.to_end()
    finally:
        reader.close()
