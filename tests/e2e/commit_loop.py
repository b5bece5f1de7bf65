"""A group member that commits synchronously after every batch, for a test that kills the
broker under it: run as a subprocess, so that the test can end it whatever librdkafka does.

Usage: ``python commit_loop.py BOOTSTRAP TOPIC GROUP``. Prints ``partition offset`` for
every offset a commit confirmed, flushed at once; runs until killed. A blocking commit
against a broker that died may never return: that is why this is a process of its own.
"""

from __future__ import annotations

import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main(bootstrap: str, topic: str, group: str) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    while True:
        batch = [m for m in consumer.consume(20, 0.2) if m.error() is None]
        if not batch:
            continue
        offsets: dict[int, int] = {}
        for message in batch:
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None  # set on a fetched message
            offsets[partition] = offset + 1
        try:
            answer = consumer.commit(
                offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException:
            continue  # not confirmed: the broker is dying or gone
        for tp in answer or []:
            if tp.error is None:
                print(tp.partition, tp.offset, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
