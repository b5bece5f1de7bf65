"""The inbox consumer meets faults as the relay does: a retriable one (its database locked by
another process) is retried with backoff and the batch applied once; a permanent one (a
handler that raises) stops it with the cause, nothing of the batch applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import streamsource as ss
from streamsource.bridge import (
    Backoff,
    ConsumerStopped,
    HandlerFailed,
    InboxConsumer,
    OutboxRelay,
    SqliteInbox,
    TopicMapping,
)

from .kafka_helpers import wait_until

FAST = Backoff(base=0.01, cap=0.05)


def _publish(store: ss.EventStore, broker: Any, count: int) -> None:
    for n in range(count):
        last = store.append(f"account-{n}", ss.NewEvent("Deposited", {"n": n})).position
    with OutboxRelay(store, broker.bootstrap, mapping=TopicMapping.of(["account"])) as relay:
        assert relay.wait_for(last)


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM seen").fetchone()[0])


def test_a_locked_inbox_database_is_retried_and_each_event_applied_once(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    _publish(store, broker, 4)
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(str(path), timeout=0)  # gives up at once when another holds the lock
    inbox.connection.execute("CREATE TABLE seen (id TEXT PRIMARY KEY)")

    def apply(event: ss.RecordedEvent, tx: Any) -> None:
        tx.execute("INSERT INTO seen VALUES (?)", (str(event.id),))

    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process writes to the read model
    consumer = InboxConsumer(broker.bootstrap, "locked", ["account"], apply, inbox, backoff=FAST)
    consumer.start()
    try:
        assert wait_until(lambda: consumer.retries >= 3)  # StoreLockedError: retriable
        assert consumer.failed is None and consumer.handled == 0
        blocker.execute("ROLLBACK")
        assert wait_until(lambda: consumer.handled == 4)
    finally:
        blocker.close()
        consumer.stop()
    assert _rows(path) == 4
    inbox.close()


def test_a_handler_that_raises_stops_the_consumer_with_the_cause(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    _publish(store, broker, 3)
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(str(path))
    inbox.connection.execute("CREATE TABLE seen (id TEXT PRIMARY KEY)")

    def apply(event: ss.RecordedEvent, tx: Any) -> None:
        tx.execute("INSERT INTO seen VALUES (?)", (str(event.id),))
        if event.stream == "account-2":
            raise ValueError("no such account")

    consumer = InboxConsumer(broker.bootstrap, "broken", ["account"], apply, inbox, backoff=FAST)
    consumer.start()
    assert wait_until(lambda: consumer.failed is not None, timeout=60)
    try:
        consumer.stop()
    except ConsumerStopped as stopped:
        assert isinstance(stopped.cause, HandlerFailed)
        assert "no such account" in str(stopped)
    else:
        raise AssertionError("the consumer did not report why it stopped")
    assert consumer.retries == 0  # a permanent fault is not retried
    # the failing batch rolled back as a whole (an earlier poll's batch may have committed)
    assert consumer.handled < 3 and _rows(path) == consumer.handled
    inbox.close()
