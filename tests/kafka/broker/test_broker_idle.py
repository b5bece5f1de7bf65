"""An idle broker sleeps: no timer wakes its event loop while there is nothing to do.

The broker used to tick every second (an interval flush of every partition, the
transaction timer) whether or not anything had happened. Now the flush timer exists only
between an append and its flush, and the transaction timer sleeps until the next deadline
of a transaction. These tests look at the mechanism, the timers the event loop has
scheduled, not at CPU time (a timed assertion would depend on the machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from deadline import wait_until
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.app import Broker

HOUR_MS = 3_600_000
SOON_S = 30.0  # "wakes soon": a timer due within this long


async def _timers_due_within(broker: Broker, seconds: float) -> list[float]:
    """Seconds until each live timer of the broker's loop that is due within ``seconds``."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    # asyncio keeps its timers in a private heap; no public API lists them
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return sorted(
        h.when() - now for h in scheduled if not h.cancelled() and h.when() - now < seconds
    )


def _goes_to_sleep(broker: EmbeddedBroker) -> None:
    """Wait until no timer of the broker's loop is due soon. Requests still in flight (a
    long-polling fetch of a consumer just closed) have timers of their own until they end;
    the 1 s ticks this replaced were always there, so this never held before."""
    wait_until(
        lambda: broker.call(lambda b: _timers_due_within(b, SOON_S)) == [],
        timeout=15,
        what=f"no timer due within {SOON_S:g}s",
    )


def _idle_broker(broker_factory: Callable[..., EmbeddedBroker]) -> EmbeddedBroker:
    # retention and the cleaner check every 5 min and 15 s by default: out of the way here
    return broker_factory(retention_check_interval_ms=HOUR_MS, log_cleaner_backoff_ms=HOUR_MS)


def test_a_fresh_broker_schedules_no_timer(broker_factory: Callable[..., EmbeddedBroker]) -> None:
    broker = _idle_broker(broker_factory)
    _goes_to_sleep(broker)


def test_after_produce_and_transactions_the_broker_goes_back_to_sleep(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = _idle_broker(broker_factory)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1})
    for i in range(100):
        producer.produce("idle", b"v%d" % i, partition=0)
    assert producer.flush(30) == 0
    txn = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "idle-txn"})
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce("idle", b"in a transaction", partition=0)
    txn.commit_transaction(30)
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "idle", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition("idle", 0, 0)])
        got: list[bytes | None] = []

        def read_all() -> bool:
            got.extend(m.value() for m in consumer.consume(200, 0.2) if not m.error())
            return len(got) >= 101

        wait_until(read_all, what="the 101 records")
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    partition = broker.broker.topics.partition("idle", 0)
    assert partition is not None
    # acks=1 data reaches the disk within the flush interval without a periodic tick
    wait_until(
        lambda: partition.log.flushed_offset == partition.log.log_end_offset,
        what="the interval flush of the produced data",
    )
    wait_until(lambda: not broker.broker.flusher.timer_pending, what="the flush timer to end")
    # the committed transaction left no deadline nearer than the idle-id scan (a minute)
    _goes_to_sleep(broker)


def test_an_open_transaction_schedules_its_timeout(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = _idle_broker(broker_factory)
    txn = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "transactional.id": "slow",
            "transaction.timeout.ms": 2000,
        }
    )
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce("open", b"never committed", partition=0)
    assert txn.flush(30) == 0

    def aborted() -> bool:
        state = broker.broker.transactions.coordinator.get("slow")
        return state is not None and state.txn_state.value == "CompleteAbort"

    # the timer woke for this transaction's deadline and aborted it: nothing else does
    wait_until(aborted, what="the broker to abort the timed-out transaction")
