"""The inbox consumer: each event applied once, in the handler's transaction, on real databases."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from streamsource.bridge import (
    HandlerFailed,
    InboxConsumer,
    OutboxRelay,
    PostgresInbox,
    SqliteInbox,
    TopicMapping,
)

from .kafka_helpers import wait_until


def _deposits(store: ss.EventStore, streams: int, per_stream: int) -> int:
    last = 0
    for amount in range(1, per_stream + 1):
        for index in range(streams):
            last = store.append(
                f"account-{index}", [ss.NewEvent("Deposited", {"amount": amount})]
            ).position
    return last


def _balances_inbox(path: Path) -> SqliteInbox:
    inbox = SqliteInbox(str(path), durability="normal")
    inbox.connection.execute(
        "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INT, events INT)"
    )
    return inbox


def apply_balance(event: ss.RecordedEvent, tx: Any) -> None:
    """The read model's handler: one row per account (works on sqlite3 and psycopg)."""
    mark = "?" if isinstance(tx, sqlite3.Connection) else "%s"
    tx.execute(
        f"INSERT INTO balances VALUES ({mark}, {mark}, 1) ON CONFLICT (account) DO UPDATE"
        " SET balance = balances.balance + excluded.balance, events = balances.events + 1",
        (event.stream, event.data["amount"]),
    )


def _replay(store: ss.EventStore) -> dict[str, tuple[int, int]]:
    expected: dict[str, tuple[int, int]] = {}
    for event in store.read_category("account"):
        balance, events = expected.get(event.stream, (0, 0))
        expected[event.stream] = (balance + event.data["amount"], events + 1)
    return expected


def _rows(inbox: SqliteInbox) -> dict[str, tuple[int, int]]:
    rows = inbox.connection.execute("SELECT account, balance, events FROM balances").fetchall()
    return {account: (balance, events) for account, balance, events in rows}


def _publish(store: ss.EventStore, bootstrap: str, name: str = "default") -> None:
    relay = OutboxRelay(store, bootstrap, name=name)
    with relay:
        assert relay.wait_for(store.head_position())


def test_a_group_of_two_applies_every_event_once(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    _deposits(store, streams=6, per_stream=30)
    _publish(store, broker.bootstrap)
    inbox_a = _balances_inbox(tmp_path / "rm.db")
    inbox_b = SqliteInbox(str(tmp_path / "rm.db"), durability="normal")
    members = [
        InboxConsumer(broker.bootstrap, "balances", ["account"], apply_balance, inbox)
        for inbox in (inbox_a, inbox_b)
    ]
    for member in members:
        member.start()
    try:
        assert wait_until(lambda: sum(m.handled for m in members) >= 180)
    finally:
        for member in members:
            member.stop()
    assert _rows(inbox_a) == _replay(store)
    assert inbox_a.applied("balances") == 180


def test_redelivered_events_are_skipped(store: ss.EventStore, broker: Any, tmp_path: Path) -> None:
    _deposits(store, streams=3, per_stream=10)
    _publish(store, broker.bootstrap, name="first")
    # a second relay without the first one's checkpoint publishes every event again
    _publish(store, broker.bootstrap, name="second")
    inbox = _balances_inbox(tmp_path / "rm.db")
    consumer = InboxConsumer(broker.bootstrap, "balances", ["account"], apply_balance, inbox)
    assert wait_until(lambda: consumer.poll(0.2) >= 0 and consumer.handled + consumer.skipped >= 60)
    consumer.close()
    assert (consumer.handled, consumer.skipped) == (30, 30)
    assert _rows(inbox) == _replay(store)
    # committed offsets: a restarted member of the group gets nothing again
    again = InboxConsumer(broker.bootstrap, "balances", ["account"], apply_balance, inbox)
    for _ in range(5):
        again.poll(0.2)
    again.close()
    assert (again.handled, again.skipped) == (0, 0)


def test_a_failing_handler_rolls_back_its_batch_and_commits_no_offset(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    _deposits(store, streams=1, per_stream=10)
    _publish(store, broker.bootstrap)
    inbox = _balances_inbox(tmp_path / "rm.db")

    def refuse_the_fifth(event: ss.RecordedEvent, tx: Any) -> None:
        apply_balance(event, tx)
        if event.version == 4:
            raise RuntimeError("bad event")

    failing = InboxConsumer(broker.bootstrap, "balances", ["account"], refuse_the_fifth, inbox)
    with pytest.raises(HandlerFailed, match="bad event"):
        wait_until(lambda: failing.poll(0.2) < 0)
    with pytest.raises(HandlerFailed, match="bad event"):  # the same batch again, not skipped
        wait_until(lambda: failing.poll(0.2) < 0)
    failing.close()
    applied = _rows(inbox)
    assert applied.get("account-0", (0, 0))[1] < 5  # nothing of the failed batch is there
    fixed = InboxConsumer(broker.bootstrap, "balances", ["account"], apply_balance, inbox)
    assert wait_until(lambda: fixed.poll(0.2) >= 0 and _rows(inbox) == _replay(store))
    fixed.close()
    assert inbox.applied("balances") == 10


def test_a_postgresql_inbox_commits_with_the_read_model(
    store: ss.EventStore, broker: Any, pg_server_url: str
) -> None:
    _deposits(store, streams=2, per_stream=5)
    mapping = TopicMapping(topic=f"pg-{uuid.uuid4().hex[:8]}")
    relay = OutboxRelay(store, broker.bootstrap, mapping=mapping)
    with relay:
        assert relay.wait_for(store.head_position())
    inbox = PostgresInbox(pg_server_url)
    inbox.connection.execute("DROP TABLE IF EXISTS balances")
    inbox.connection.execute(
        "CREATE TABLE balances (account TEXT PRIMARY KEY, balance INT, events INT)"
    )
    name = f"pg-{uuid.uuid4().hex[:8]}"
    for group in ("g1", "g2"):  # the second group gets every event again: all skipped
        consumer = InboxConsumer(
            broker.bootstrap,
            f"{name}-{group}",
            [mapping.topic or ""],
            apply_balance,
            inbox,
            name=name,
        )
        wait_until(lambda c=consumer: c.poll(0.2) >= 0 and c.handled + c.skipped >= 10)  # type: ignore[misc]
        consumer.close()
        assert consumer.handled + consumer.skipped == 10
    rows = inbox.connection.execute("SELECT account, balance, events FROM balances").fetchall()
    assert {a: (b, n) for a, b, n in rows} == _replay(store)
    assert inbox.applied(name) == 10
    inbox.close()


def test_a_postgresql_inbox_and_checkpoints_connect_again_after_losing_the_server(
    pg_server_url: str, pg_url: str
) -> None:
    import psycopg

    from streamsource.bridge.checkpoints import checkpoints_for

    def cut(connection: Any) -> None:  # what a server restart looks like to a client
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))

    inbox = PostgresInbox(pg_server_url)
    name = f"lost-{uuid.uuid4().hex[:8]}"
    with ss.open_store("memory://") as store:
        store.append("account-1", [ss.NewEvent("Deposited", {"n": n}) for n in range(3)])
        events = list(store.read_all())
    cut(inbox.connection)
    # the transaction under way fails, retriably
    with pytest.raises(ss.OperationalError), inbox.transaction() as tx:
        inbox.claim(tx, name, events)
    with inbox.transaction() as tx:  # the next one connects again
        assert inbox.claim(tx, name, events) == events
    assert inbox.applied(name) == 3
    inbox.close()

    ss.open_store(pg_url).close()  # the store creates its schema, where the checkpoints live
    checkpoints = checkpoints_for(pg_url)
    checkpoints.save("relay", 7)
    cut(checkpoints._db)  # type: ignore[attr-defined]
    with pytest.raises(ss.OperationalError):
        checkpoints.save("relay", 8)
    checkpoints.save("relay", 9)
    assert checkpoints.load("relay") == 9
    checkpoints.close()
