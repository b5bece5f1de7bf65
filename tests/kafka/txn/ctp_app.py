"""A consume-transform-produce app with exactly-once output, run as a process the test kills.

    python ctp_app.py BOOTSTRAP INPUT OUTPUT TOTAL

Reads INPUT (one partition) as group ``ctp``, writes ``out-<value>`` to OUTPUT, and commits
each batch's input offsets in the same transaction (``send_offsets_to_transaction``).
Prints ``committed <next offset>`` after every commit and exits once TOTAL inputs are done.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT = 30.0


def main() -> None:
    bootstrap, source, sink, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": "ctp-app", "linger.ms": 5}
    )
    producer.init_transactions(TIMEOUT)  # fences a previous incarnation, aborting its txn
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ctp",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([source])
    deadline = time.monotonic() + 120
    done = 0
    while done < total and time.monotonic() < deadline:
        batch = [m for m in consumer.consume(20, timeout=0.5) if m.error() is None]
        if not batch:
            continue
        producer.begin_transaction()
        for msg in batch:
            producer.produce(sink, value=b"out-" + (msg.value() or b""))
        last = batch[-1].offset()
        assert last is not None  # a fetched message has its offset
        done = last + 1
        producer.send_offsets_to_transaction(
            [TopicPartition(source, 0, done)], consumer.consumer_group_metadata(), TIMEOUT
        )
        producer.commit_transaction(TIMEOUT)
        print(f"committed {done}", flush=True)
    consumer.close()
    sys.exit(0 if done >= total else 1)


if __name__ == "__main__":
    main()
