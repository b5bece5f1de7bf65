"""kill -9 the broker in the middle of a stream of acks=all produces with ``--fsync always``.

A confluent-kafka idempotent producer streams numbered messages and records each one the
broker acknowledged. The broker process is killed with SIGKILL while requests are in
flight, restarted on the same data dir and port, and the producer (still running) delivers
what was pending. Reading the partition back: every acknowledged message is there exactly
once and in the order it was sent, and nothing at all is duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = [pytest.mark.slow, pytest.mark.interop]

TOPIC = "crash-stream"
KILL_AFTER_ACKS = 1500
SENT_AFTER_KILL = 300


def read_partition(bootstrap: str, expected_at_least: int) -> list[int]:
    """The message numbers stored in partition 0, in offset order."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "crash-check", "enable.auto.commit": False,
         "enable.partition.eof": True},
    )  # fmt: skip
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    numbers: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if len(numbers) >= expected_at_least:
                            return numbers
                        continue
                    raise AssertionError(f"consume failed: {error}")
                numbers.append(int(msg.value() or b""))  # every message has a value
    finally:
        consumer.close()
    raise AssertionError(f"read {len(numbers)} messages, expected at least {expected_at_least}")


def test_kill_9_loses_no_acknowledged_message(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    proc = broker_process(fsync="always")
    acked: list[int] = []
    failed: list[tuple[int, str]] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        number = int(msg.value() or b"")  # every message has a value
        if err is None:
            acked.append(number)
        else:
            failed.append((number, str(err)))

    producer = Producer(
        {"bootstrap.servers": proc.bootstrap, "acks": "all", "enable.idempotence": True,
         "linger.ms": 2, "message.timeout.ms": 120_000, "reconnect.backoff.max.ms": 200},
    )  # fmt: skip
    sent = 0
    deadline = time.monotonic() + 120
    while len(acked) < KILL_AFTER_ACKS:  # stream until well into the run
        assert time.monotonic() < deadline, f"only {len(acked)} acknowledged"
        producer.produce(TOPIC, value=b"%d" % sent, partition=0, on_delivery=on_delivery)
        sent += 1
        producer.poll(0)
        if sent % 50 == 0:
            producer.poll(0.005)
    proc.kill()  # requests are in flight: the producer is still sending
    acked_before_kill = list(acked)
    in_flight = sent - len(acked_before_kill)
    for _ in range(SENT_AFTER_KILL):
        producer.produce(TOPIC, value=b"%d" % sent, partition=0, on_delivery=on_delivery)
        sent += 1
    proc.start()
    assert producer.flush(120) == 0, "the producer could not deliver after the restart"

    print(f"killed with {in_flight} messages sent but not acknowledged")
    stored = read_partition(proc.bootstrap, len(acked))
    assert len(stored) == len(set(stored)), "a message was stored twice"
    assert set(acked_before_kill) <= set(stored), "an acknowledged message was lost"
    assert set(acked) <= set(stored)
    assert stored == sorted(stored), "messages are out of the order they were sent in"
    assert failed == []
    assert len(acked) == sent  # the idempotent producer delivered everything in the end
