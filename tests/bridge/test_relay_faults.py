"""How the relay meets faults, with a real broker: retry with backoff what may pass, stop
with the cause on what will not, and never checkpoint past an event it did not deliver."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import streamsource as ss
from streamsource.bridge import Backoff, OutboxRelay, RelayStopped, checkpoints_for

from .kafka_helpers import read_topic, wait_until

FAST = Backoff(base=0.01, cap=0.05)  # short waits: the tests count retries, not time


def _create_topic(bootstrap: str, name: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)], request_timeout=30)
    futures[name].result(timeout=30)


def _message_count(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "counter"})
    try:
        total = 0
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            total += high - low
        return total
    finally:
        consumer.close()


def _stopped(relay: OutboxRelay) -> BaseException:
    assert wait_until(lambda: relay.failed is not None, timeout=60), "the relay did not stop"
    with pytest.raises(RelayStopped) as stopped:
        relay.stop(timeout=60)
    return stopped.value


def test_a_message_too_large_for_the_topic_stops_the_relay_with_that_cause(
    store: ss.EventStore, broker: Any
) -> None:
    _create_topic(broker.bootstrap, "account", **{"max.message.bytes": "4096"})
    for n in range(3):
        last_small = store.append("account-1", [ss.NewEvent("Deposited", {"n": n})]).position
    checkpoints = checkpoints_for(store)
    relay = OutboxRelay(store, broker.bootstrap, checkpoints=checkpoints, backoff=FAST).start()
    assert relay.wait_for(last_small)
    big = store.append("account-1", [ss.NewEvent("Deposited", {"blob": "x" * 20_000})])
    store.append("account-1", [ss.NewEvent("Deposited", {"n": 4})])
    error = _stopped(relay)
    assert isinstance(error, RelayStopped)
    assert error.cause.code == "MSG_SIZE_TOO_LARGE"  # type: ignore[attr-defined]
    assert "MSG_SIZE_TOO_LARGE" in str(error) and "permanent" in str(error)
    assert f"position {big.position}" in str(error)
    # nothing past the event that could not be delivered is checkpointed
    assert relay.saved_checkpoint == last_small
    assert checkpoints.load("default") == last_small
    assert relay.restarts == 0  # a permanent fault is not retried


def test_a_broker_that_comes_back_gets_everything_once_after_backoff(
    store: ss.EventStore, broker_factory: Any, tmp_path: Path
) -> None:
    broker = broker_factory(default_partitions=2, data_dir=tmp_path / "b")
    port = broker.port
    for n in range(6):
        first = store.append(f"account-{n % 3}", [ss.NewEvent("Deposited", {"n": n})]).position
    relay = OutboxRelay(
        store,
        broker.bootstrap,
        backoff=FAST,
        producer_config={"message.timeout.ms": 500},
    ).start()
    try:
        assert relay.wait_for(first)
        broker.stop()
        for n in range(6):
            last = store.append(f"account-{n % 3}", [ss.NewEvent("Deposited", {"n": n})]).position
        # deliveries time out (a retriable fault): the relay backs off and starts again
        assert wait_until(lambda: relay.restarts >= 2)
        assert relay.retries >= relay.restarts
        assert relay.saved_checkpoint == first
        back = broker_factory(default_partitions=2, data_dir=tmp_path / "b", port=port)
        assert relay.wait_for(last)
    finally:
        relay.stop()
    assert _message_count(back.bootstrap, "account", 2) == 12  # no loss, no duplicate
    ids = {dict(m.headers())["event-id"] for m in read_topic(back.bootstrap, "account", 12)}
    assert len(ids) == 12


def test_a_store_that_loses_its_tables_stops_the_relay_with_the_cause(
    store: ss.EventStore, tmp_path: Path, broker: Any
) -> None:
    first = store.append("account-1", [ss.NewEvent("Deposited", {})]).position
    relay = OutboxRelay(store, broker.bootstrap, backoff=FAST).start()
    assert relay.wait_for(first)
    with sqlite3.connect(tmp_path / "store.db") as vandal:
        vandal.execute("DROP TABLE events")
    error = _stopped(relay)
    assert isinstance(error, RelayStopped)
    assert isinstance(error.cause, ss.ProgrammingError)
    assert "no such table: events" in str(error)


def test_a_store_locked_by_another_process_is_retried_not_fatal(
    store: ss.EventStore, broker: Any
) -> None:
    last = store.append("account-1", [ss.NewEvent("Deposited", {})]).position
    path = store.recorder.database.where  # type: ignore[union-attr]
    with ss.open_store(f"sqlite:///{path}?timeout=0") as locked_out:  # gives up at once
        checkpoints = checkpoints_for(locked_out)
        blocker = sqlite3.connect(path, timeout=0, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the file's write lock
        relay = OutboxRelay(locked_out, broker.bootstrap, checkpoints=checkpoints, backoff=FAST)
        relay.start()
        try:
            # loading the checkpoint fails with StoreLockedError (retriable): wait, again
            assert wait_until(lambda: relay.retries >= 3)
            assert relay.failed is None
            assert relay.saved_checkpoint == -1
            blocker.execute("ROLLBACK")
            assert relay.wait_for(last)
        finally:
            blocker.close()
            relay.stop()
    assert checkpoints_for(store).load("default") == last


@pytest.mark.slow
def test_the_relay_command_exits_non_zero_with_one_line_naming_the_cause(
    tmp_path: Path, broker: Any
) -> None:
    _create_topic(broker.bootstrap, "account", **{"max.message.bytes": "4096"})
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    with ss.open_store(url) as store:
        store.append("account-1", [ss.NewEvent("Deposited", {"blob": "x" * 20_000})])
    proc = subprocess.run(
        [sys.executable, "-c", "from streamsource.cli import main; main()", "relay",
         "--store", url, "--bootstrap", broker.bootstrap, "--log-level", "ERROR"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: RelayStopped: relay default stopped:")
    assert "MSG_SIZE_TOO_LARGE" in last_line
