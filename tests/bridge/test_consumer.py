"""The inbox consumer: each event applied once, in the handler's transaction, on real databases."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Iterator
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
from streamsource.eventstore.backends.threaded import ThreadedAsyncRecorder
from subscriptions.conftest import LoopThread

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
    inbox.connection.execute(BALANCES)
    return inbox


BALANCES = "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INT, events INT)"
UPSERT = (
    "INSERT INTO balances VALUES ({p}, {p}, 1) ON CONFLICT (account) DO UPDATE"
    " SET balance = balances.balance + excluded.balance, events = balances.events + 1"
)


def apply_balance(event: ss.RecordedEvent, tx: Any) -> None:
    """The read model's handler: one row per account (works on sqlite3 and psycopg)."""
    mark = "?" if isinstance(tx, sqlite3.Connection) else "%s"
    tx.execute(UPSERT.format(p=mark), (event.stream, event.data["amount"]))


async def apply_balance_async(event: ss.RecordedEvent, tx: Any) -> None:
    """The same handler for the asyncio consumer (``tx``: the store's transaction)."""
    await tx.execute(UPSERT.format(p=tx.dialect.placeholder), (event.stream, event.data["amount"]))


def _replay(store: ss.EventStore) -> dict[str, tuple[int, int]]:
    expected: dict[str, tuple[int, int]] = {}
    for event in store.read_category("account"):
        balance, events = expected.get(event.stream, (0, 0))
        expected[event.stream] = (balance + event.data["amount"], events + 1)
    return expected


def _publish(store: ss.EventStore, bootstrap: str, name: str = "default") -> None:
    relay = OutboxRelay(store, bootstrap, name=name)
    with relay:
        assert relay.wait_for(store.head_position())


class BlockingAsyncConsumer:
    """An AsyncInboxConsumer driven like an InboxConsumer (tests only)."""

    def __init__(self, consumer: ss.AsyncInboxConsumer, loop: LoopThread) -> None:
        self.consumer = consumer
        self._loop = loop
        self._stop: asyncio.Event | None = None
        self._task: Any = None

    @property
    def handled(self) -> int:
        return self.consumer.handled

    @property
    def skipped(self) -> int:
        return self.consumer.skipped

    def poll(self, timeout: float | None = None) -> int:
        return self._loop.run(self.consumer.poll(timeout))

    def close(self) -> None:
        self._loop.run(self.consumer.close())

    def start(self) -> BlockingAsyncConsumer:
        async def begin() -> None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(self.consumer.run(self._stop))

        self._loop.run(begin())
        return self

    def stop(self) -> None:
        async def end() -> None:
            assert self._stop is not None
            self._stop.set()
            await self._task

        self._loop.run(end())


class Side:
    """One API's inbox consumer, its inbox and how to read the read model it writes."""

    def __init__(self, api: str, store: ss.EventStore, tmp_path: Path, loop: LoopThread) -> None:
        self.api = api
        self._loop = loop
        if api == "sync":
            self.path = tmp_path / "rm.db"
            self.inbox: Any = _balances_inbox(self.path)
        else:  # the inbox and the read model in the store's own database
            self.path = Path(store.stats()["path"])  # type: ignore[arg-type]
            with sqlite3.connect(self.path) as db:
                db.execute(BALANCES)
            async_store = ss.AsyncEventStore(ThreadedAsyncRecorder(store.recorder))
            self.inbox = ss.AsyncStoreInbox(async_store)

    def consumer(self, bootstrap: str, fail_on_version: int | None = None) -> Any:
        if self.api == "sync":

            def handler(event: ss.RecordedEvent, tx: Any) -> None:
                apply_balance(event, tx)
                if event.version == fail_on_version:
                    raise RuntimeError("bad event")

            return InboxConsumer(bootstrap, "balances", ["account"], handler, self.inbox)

        async def async_handler(event: ss.RecordedEvent, tx: Any) -> None:
            await apply_balance_async(event, tx)
            if event.version == fail_on_version:
                raise RuntimeError("bad event")

        consumer = ss.AsyncInboxConsumer(
            bootstrap, "balances", ["account"], async_handler, self.inbox
        )
        return BlockingAsyncConsumer(consumer, self._loop)

    def rows(self) -> dict[str, tuple[int, int]]:
        with sqlite3.connect(self.path) as db:
            rows = db.execute("SELECT account, balance, events FROM balances").fetchall()
        return {account: (balance, events) for account, balance, events in rows}

    def applied(self) -> int:
        if self.api == "sync":
            return int(self.inbox.applied("balances"))
        return int(self._loop.run(self.inbox.applied("balances")))


@pytest.fixture(params=["sync", "async"])
def side(request: pytest.FixtureRequest, store: ss.EventStore, tmp_path: Path) -> Iterator[Side]:
    loop = LoopThread()
    try:
        yield Side(str(request.param), store, tmp_path, loop)
    finally:
        loop.stop()


def test_a_group_of_two_applies_every_event_once(
    store: ss.EventStore, broker: Any, side: Side
) -> None:
    _deposits(store, streams=6, per_stream=30)
    _publish(store, broker.bootstrap)
    members = [side.consumer(broker.bootstrap) for _ in range(2)]
    for member in members:
        member.start()
    try:
        assert wait_until(lambda: sum(m.handled for m in members) >= 180)
    finally:
        for member in members:
            member.stop()
    assert side.rows() == _replay(store)
    assert side.applied() == 180


def test_redelivered_events_are_skipped(store: ss.EventStore, broker: Any, side: Side) -> None:
    _deposits(store, streams=3, per_stream=10)
    _publish(store, broker.bootstrap, name="first")
    # a second relay without the first one's checkpoint publishes every event again
    _publish(store, broker.bootstrap, name="second")
    consumer = side.consumer(broker.bootstrap)
    assert wait_until(lambda: consumer.poll(0.2) >= 0 and consumer.handled + consumer.skipped >= 60)
    consumer.close()
    assert (consumer.handled, consumer.skipped) == (30, 30)
    assert side.rows() == _replay(store)
    # committed offsets: a restarted member of the group gets nothing again
    again = side.consumer(broker.bootstrap)
    for _ in range(5):
        again.poll(0.2)
    again.close()
    assert (again.handled, again.skipped) == (0, 0)


def test_a_failing_handler_rolls_back_its_batch_and_commits_no_offset(
    store: ss.EventStore, broker: Any, side: Side
) -> None:
    _deposits(store, streams=1, per_stream=10)
    _publish(store, broker.bootstrap)
    failing = side.consumer(broker.bootstrap, fail_on_version=4)
    with pytest.raises(HandlerFailed, match="bad event"):
        wait_until(lambda: failing.poll(0.2) < 0)
    with pytest.raises(HandlerFailed, match="bad event"):  # the same batch again, not skipped
        wait_until(lambda: failing.poll(0.2) < 0)
    failing.close()
    applied = side.rows()
    assert applied.get("account-0", (0, 0))[1] < 5  # nothing of the failed batch is there
    fixed = side.consumer(broker.bootstrap)
    assert wait_until(lambda: fixed.poll(0.2) >= 0 and side.rows() == _replay(store))
    fixed.close()
    assert side.applied() == 10


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

    with ss.open_store(pg_url) as pg_store:  # checkpoints live in the store's schema
        checkpoints = checkpoints_for(pg_store)
        checkpoints.save("relay", 7)
        with pg_store.transaction() as tx:  # the store's pool holds one connection here
            (backend,) = tx.execute("SELECT pg_backend_pid()")[0]
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises(ss.OperationalError) as lost:
            checkpoints.save("relay", 8)
        assert lost.value.retriable
        checkpoints.save("relay", 9)
        assert checkpoints.load("relay") == 9


def test_without_filling_batches_a_poll_returns_once_a_message_is_there(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    _deposits(store, streams=1, per_stream=3)
    _publish(store, broker.bootstrap)
    inbox = _balances_inbox(tmp_path / "rm.db")
    # a poll that waited to fill its batch would sit out the whole minute
    consumer = InboxConsumer(
        broker.bootstrap, "balances", ["account"], apply_balance, inbox,
        batch_size=1000, poll_timeout=60, fill_batches=False,
    )  # fmt: skip
    polled: list[int] = []
    worker = threading.Thread(target=lambda: polled.append(consumer.poll()), daemon=True)
    worker.start()
    worker.join(30)  # a group join and a fetch take far less
    assert polled and polled[0] >= 1, "the poll waited for a full batch"
    while consumer.handled < 3:
        assert consumer.poll() >= 1
    consumer.close()
    assert consumer.handled == 3
    with sqlite3.connect(tmp_path / "rm.db") as db:
        assert db.execute("SELECT balance, events FROM balances").fetchall() == [(6, 3)]


def _committed(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the offsets ``group`` has committed on ``topic`` (read without joining)."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        answer = reader.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    finally:
        reader.close()
    return sum(max(tp.offset, 0) for tp in answer)


def test_with_a_commit_interval_offsets_wait_for_it_and_are_committed_on_close(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    _deposits(store, streams=1, per_stream=10)
    _publish(store, broker.bootstrap)
    inbox = _balances_inbox(tmp_path / "rm.db")
    consumer = InboxConsumer(
        broker.bootstrap, "balances", ["account"], apply_balance, inbox,
        batch_size=1, poll_timeout=5, commit_interval=60,
    )  # fmt: skip
    assert wait_until(lambda: consumer.poll() >= 0 and consumer.handled >= 10)
    # the first batch was committed at once; the nine after it wait for the interval
    assert _committed(broker.bootstrap, "balances", "account") == 1
    consumer.close()
    assert _committed(broker.bootstrap, "balances", "account") == 10
    again = InboxConsumer(broker.bootstrap, "balances", ["account"], apply_balance, inbox)
    for _ in range(5):
        again.poll(0.2)
    again.close()
    assert (again.handled, again.skipped) == (0, 0)
    with sqlite3.connect(tmp_path / "rm.db") as db:
        assert db.execute("SELECT balance, events FROM balances").fetchall() == [(55, 10)]
