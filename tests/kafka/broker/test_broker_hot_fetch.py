"""A fetch of the log's hot tail is answered on the event loop, with no worker thread.

A consumer keeping up with its producers reads what was just appended; the broker reads
and sends that on its event loop (``handlers.fetch``), and sends a worker thread only the
reads that may wait for the disk: data not in the page cache. These tests
watch the mechanism, the jobs the event loop hands to its default executor (where
``asyncio.to_thread`` runs them), through a real client; not CPU time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from deadline import wait_until
from page_cache_eviction import evict
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.app import Broker
from streamsource.kafka.log import partition_log


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that notes the name of every function it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.names: list[str] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # asyncio.to_thread submits functools.partial(context.run, func, *func_args)
        func = fn.args[0] if hasattr(fn, "args") and fn.args else fn
        with self._lock:
            self.names.append(getattr(func, "__name__", repr(func)))
        return super().submit(fn, *args, **kwargs)

    def count(self, name: str) -> int:
        with self._lock:
            return self.names.count(name)


def _count_jobs(broker: EmbeddedBroker) -> CountingExecutor:
    executor = CountingExecutor()

    async def install(_: Broker) -> None:
        asyncio.get_running_loop().set_default_executor(executor)

    broker.call(install)
    return executor


def _produce(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0


def _consume(broker: EmbeddedBroker, topic: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])

        def read() -> bool:
            got.extend(m.value() or b"" for m in consumer.consume(500, 0.2) if m.error() is None)
            return len(got) >= count

        wait_until(read, timeout=30, what=f"{count} messages of {topic}")
    finally:
        consumer.close()
    return got


def test_the_tail_just_written_is_fetched_without_a_worker_thread(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    values = [b"tail-%d" % i for i in range(2_000)]
    _produce(broker, "hot", values)
    jobs = _count_jobs(broker)
    assert _consume(broker, "hot", len(values)) == values  # read_committed, librdkafka's default
    assert jobs.count("_read_and_send") == 0


def test_data_the_page_cache_lacks_is_read_in_a_worker_thread(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    """Data written before a restart and since dropped from the page cache: a worker reads
    it (a read of it may wait for the disk, which the event loop never does)."""
    broker = broker_factory()
    old = [b"old-%d" % i for i in range(500)]
    _produce(broker, "cold", old)
    broker.stop()
    broker = broker_factory(data_dir=broker.data_dir)
    for path in Path(broker.data_dir).rglob("*.log"):
        evict(path)  # (opening the log read its tail back in)
    jobs = _count_jobs(broker)
    assert _consume(broker, "cold", len(old)) == old
    assert jobs.count("_read_and_send") >= 1


def test_data_still_in_the_page_cache_is_fetched_without_a_worker_thread(
    broker_factory: Callable[..., EmbeddedBroker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer far behind the tail (beyond what the broker itself just wrote), and data
    written before a restart: in the page cache, so the event loop reads it."""
    monkeypatch.setattr(partition_log, "HOT_TAIL_BYTES", 1_000)
    broker = broker_factory()
    values = [b"behind-%d" % i for i in range(2_000)]
    _produce(broker, "behind", values)
    jobs = _count_jobs(broker)
    assert _consume(broker, "behind", len(values)) == values
    assert jobs.count("_read_and_send") == 0
    broker.stop()
    broker = broker_factory(data_dir=broker.data_dir)
    jobs = _count_jobs(broker)
    assert _consume(broker, "behind", len(values)) == values
    assert jobs.count("_read_and_send") == 0
