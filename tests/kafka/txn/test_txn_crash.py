"""Transactions across kill -9: of the broker during open transactions, and of an
exactly-once consume-transform-produce app in the middle of its stream.

Every client call that could wait on a killed process has its own timeout, and the app
runs as a subprocess with a hard deadline.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = [pytest.mark.slow, pytest.mark.interop]

TIMEOUT = 30.0
APP = Path(__file__).with_name("ctp_app.py")


def read_all(bootstrap: str, topic: str, isolation: str = "read_committed") -> list[bytes]:
    """Every value of partition 0 up to its end, as a fresh consumer with ``isolation``."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}",
         "isolation.level": isolation, "enable.partition.eof": True,
         "enable.auto.commit": False, "socket.timeout.ms": 10_000},
    )  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                values.append(msg.value() or b"")  # every message here has a value
            elif error.code() == KafkaError._PARTITION_EOF:
                return values
            else:
                raise AssertionError(f"consume failed: {error}")
    finally:
        consumer.close()
    raise AssertionError(f"did not reach the end of {topic} in {TIMEOUT}s")


def txn_producer(bootstrap: str, txn_id: str, timeout_ms: int = 60_000) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": timeout_ms, "linger.ms": 5,
                         "message.timeout.ms": min(timeout_ms, int(TIMEOUT * 1000))})  # fmt: skip
    producer.init_transactions(TIMEOUT)
    return producer


def test_kill_9_of_the_broker_during_open_transactions(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    proc = broker_process()
    bootstrap, topic = proc.bootstrap, "txn-crash"
    committer = txn_producer(bootstrap, "committer")
    committer.begin_transaction()
    for i in range(5):
        committer.produce(topic, value=f"committed-{i}".encode())
    committer.commit_transaction(TIMEOUT)
    aborter = txn_producer(bootstrap, "aborter")
    aborter.begin_transaction()
    aborter.produce(topic, value=b"aborted")
    aborter.flush(TIMEOUT)
    aborter.abort_transaction(TIMEOUT)
    hanging = txn_producer(bootstrap, "hanging", timeout_ms=3000)
    hanging.begin_transaction()
    for i in range(3):
        hanging.produce(topic, value=f"open-{i}".encode())
    assert hanging.flush(TIMEOUT) == 0
    reopened = txn_producer(bootstrap, "reopened")
    reopened.begin_transaction()
    reopened.produce(topic, value=b"open-then-committed")
    assert reopened.flush(TIMEOUT) == 0

    proc.kill()
    proc.start()

    # after the restart: nothing of an open or aborted transaction is visible
    assert read_all(bootstrap, topic) == [f"committed-{i}".encode() for i in range(5)]
    # the producer that survived the outage commits its transaction
    reopened.commit_transaction(TIMEOUT)
    # the hanging one (written before it) holds read_committed readers back until the
    # broker aborts it once its 3 s timeout has passed
    committed = [f"committed-{i}".encode() for i in range(5)] + [b"open-then-committed"]
    deadline = time.monotonic() + TIMEOUT
    while (seen := read_all(bootstrap, topic)) != committed:
        assert seen == committed[:5], seen  # never anything aborted or half-committed
        assert time.monotonic() < deadline, "the hanging transaction was never aborted"
        time.sleep(0.2)
    everything = read_all(bootstrap, topic, "read_uncommitted")
    assert sorted(everything) == sorted(
        committed + [b"aborted"] + [f"open-{i}".encode() for i in range(3)]
    )
    for producer in (committer, aborter, hanging, reopened):
        producer.flush(1)  # nothing pending; bounded anyway


def test_consume_transform_produce_killed_midway_outputs_each_input_once(
    broker_process: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    proc = broker_process()
    bootstrap, total = proc.bootstrap, 600
    feeder = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(total):
        feeder.produce("ctp-in", value=f"{i:05d}".encode())
    assert feeder.flush(TIMEOUT) == 0

    command = [sys.executable, str(APP), bootstrap, "ctp-in", "ctp-out", str(total)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        progress = 0
        deadline = time.monotonic() + 90
        while progress < total // 3:  # kill it a third of the way through
            assert time.monotonic() < deadline, "the app made no progress"
            line = first.stdout.readline()
            assert line, f"the app exited early ({first.wait(10)})"
            progress = int(line.split()[1])
        first.kill()
    finally:
        first.kill()
        first.wait(10)
    assert progress < total  # really killed midway

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=150)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    outputs = read_all(bootstrap, "ctp-out")
    assert outputs == [f"out-{i:05d}".encode() for i in range(total)]
