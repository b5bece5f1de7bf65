"""Committed offsets survive ``kill -9`` of the broker: no redelivery beyond the last commit.

A consumer group member commits synchronously after every batch while the broker (a real
``streamsource broker`` process) is killed with SIGKILL at an arbitrary moment, several
times. Every commit the client saw succeed must still be there after the restart, so a
consumer only ever gets back what came after its last successful commit (at-least-once
redelivery of a batch whose commit failed is expected; losing a confirmed commit is not).

The member runs in a subprocess (``commit_loop.py``) that reports each confirmed commit on
its stdout: a synchronous commit caught by the kill can block in librdkafka for ever, out
of reach of pytest's timeout, so the test ends that process itself, within a deadline.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from deadline import Deadline
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.slow

PARTITIONS = 3
MESSAGES_PER_ROUND = 3000
ROUNDS = 3
MEMBER = Path(__file__).with_name("commit_loop.py")


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for n in range(count):
        producer.produce(topic, b"%d" % n, key=b"%d" % (n % 50))
        producer.poll(0)
    assert producer.flush(60) == 0


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of each partition, as a fresh client reads it (the
    broker is up: every call here has a timeout of its own)."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in reader.committed(wanted, timeout=30)}
    finally:
        reader.close()


def commit_until_killed(broker: BrokerProcess, topic: str, group: str) -> dict[int, int]:
    """Run the member, kill the broker once commits flow, end the member; returns what
    its commits confirmed, per partition."""
    member = subprocess.Popen(
        [sys.executable, str(MEMBER), broker.bootstrap, topic, group],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:  # ends when the member's stdout closes (it exits or is killed)
        assert member.stdout is not None
        for line in member.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    confirmed: dict[int, int] = {}
    killer: threading.Timer | None = None
    try:
        deadline = Deadline(120, "the member to confirm a commit")
        while killer is None:
            try:
                line = lines.get(timeout=max(deadline.remaining(), 0.001))
            except queue.Empty:
                deadline.check()
                continue
            if line is None:
                raise AssertionError(f"the member exited with {member.wait(10)}")
            partition, offset = map(int, line.split())
            confirmed[partition] = max(confirmed.get(partition, 0), offset)
            # SIGKILL while commits keep coming, at no chosen moment
            killer = threading.Timer(0.3, broker.kill)
            killer.start()
        killer.join(timeout=30)
        assert not broker.alive
    finally:
        if killer is not None:
            killer.cancel()
        member.kill()  # whatever it is blocked in
        member.wait(timeout=30)
        reader.join(timeout=30)
    while not lines.empty():  # what it printed before it was ended
        line = lines.get_nowait()
        if line is not None:
            partition, offset = map(int, line.split())
            confirmed[partition] = max(confirmed.get(partition, 0), offset)
    return confirmed


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
            for partition, offset in commit_until_killed(broker, topic, group).items():
                confirmed[partition] = max(confirmed.get(partition, 0), offset)
            broker.start()  # same data directory, same port
            stored = committed(broker.bootstrap, group, topic)
            for partition, offset in confirmed.items():
                assert stored[partition] >= offset, (partition, stored, confirmed)
        assert sum(confirmed.values()) > 0
    finally:
        if broker.alive:
            broker.kill()
