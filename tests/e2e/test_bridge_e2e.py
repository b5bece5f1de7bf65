"""The whole path under fire: store -> relay -> broker -> consumer group -> projection.

The relay and the broker run as real ``streamsource`` subprocesses and are killed with
SIGKILL while events keep being appended; both are restarted. At the end the projection
(fed only through Kafka and the inbox) must equal a replay of the store from scratch, every
event must have been applied exactly once, and every event must be on its topic. It runs
on a SQLite store and inbox, and on a PostgreSQL store and inbox.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

import streamsource as ss
from deadline import wait_until
from streamsource.bridge import Inbox, InboxConsumer, PostgresInbox, SqliteInbox
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.slow

ACCOUNTS = 12
ROUNDS = 150  # events appended = ACCOUNTS * ROUNDS


class RelayProcess:
    """``streamsource relay`` as a child process that can be SIGKILLed and started again."""

    def __init__(self, store_url: str, bootstrap: str, log_path: Path) -> None:
        self.args = [
            sys.executable, "-c", "from streamsource.cli import main; main()", "relay",
            "--store", store_url, "--bootstrap", bootstrap, "--category", "account",
        ]  # fmt: skip
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(30)


@dataclass
class Backend:
    """Where the store, the inbox and the read model live."""

    store_url: str
    new_inbox: Callable[[], Inbox]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = str(tmp_path / "read-model.db")
        return Backend(
            f"sqlite:///{tmp_path / 'bank.db'}", lambda: SqliteInbox(path, durability="full")
        )
    import psycopg
    from psycopg.conninfo import make_conninfo

    server_url: str = request.getfixturevalue("pg_server_url")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"  # inbox and read model: a schema of their own
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    conninfo = make_conninfo(server_url, options=f"-c search_path={schema}")
    return Backend(request.getfixturevalue("pg_url"), lambda: PostgresInbox(conninfo))


def apply_event(event: ss.RecordedEvent, db: Any) -> None:
    """The projection: balance and event count per account, one row each."""
    mark = "?" if isinstance(db, sqlite3.Connection) else "%s"
    amount = event.data["amount"] if event.type == "Deposited" else -event.data["amount"]
    db.execute(
        f"INSERT INTO balances VALUES ({mark}, {mark}, 1) ON CONFLICT (account) DO UPDATE"
        " SET balance = balances.balance + excluded.balance, events = balances.events + 1",
        (event.stream, amount),
    )


def create_read_model(db: Any) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INT, events INT)"
    )


def read_model(db: Any) -> dict[str, tuple[int, int]]:
    rows = db.execute("SELECT account, balance, events FROM balances").fetchall()
    return {account: (balance, events) for account, balance, events in rows}


def replay(store: ss.EventStore, path: Path) -> dict[str, tuple[int, int]]:
    """The projection rebuilt from scratch straight from the store."""
    db = sqlite3.connect(path, isolation_level=None)
    create_read_model(db)
    db.execute("BEGIN")
    for event in store.read_category("account"):
        apply_event(event, db)
    db.execute("COMMIT")
    return read_model(db)


def append_continuously(store_url: str, done: threading.Event, progress: list[int]) -> None:
    with ss.open_store(store_url) as store:
        for round_ in range(ROUNDS):
            for account in range(ACCOUNTS):
                kind = "Withdrawn" if round_ % 4 == 3 else "Deposited"
                store.append(f"account-{account}", [ss.NewEvent(kind, {"amount": round_ + 1})])
            progress[0] = round_ + 1
            time.sleep(0.01)
    done.set()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    wait_until(predicate, timeout, what, interval=0.05)


def event_id_header(message: Any) -> bytes:
    value = dict(message.headers() or [])["event-id"]
    assert isinstance(value, bytes), value
    return value


def topic_event_ids(bootstrap: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"audit-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["account"])
    ids: list[bytes] = []
    quiet_polls = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(set(ids)) < expected or quiet_polls < 5):
        batch = [m for m in consumer.consume(1000, 0.3) if m.error() is None]
        quiet_polls = 0 if batch else quiet_polls + 1
        ids.extend(event_id_header(m) for m in batch)
    consumer.close()
    return ids


def test_store_to_projection_survives_kill_9_of_relay_and_broker(
    tmp_path: Path, backend: Backend
) -> None:
    store_url = backend.store_url
    ss.open_store(store_url).close()  # create the store before the relay opens it
    broker = BrokerProcess(tmp_path / "broker", tmp_path / "broker.log", fsync="always")
    relay = RelayProcess(store_url, "", tmp_path / "relay.log")
    try:
        run_the_path_under_fire(tmp_path, backend, broker.start(), relay)
    finally:  # whatever happened, no process outlives the test
        if relay.proc is not None and relay.proc.poll() is None:
            relay.kill()
        if broker.alive:
            broker.kill()


def run_the_path_under_fire(
    tmp_path: Path, backend: Backend, broker: BrokerProcess, relay: RelayProcess
) -> None:
    store_url = backend.store_url
    admin = AdminClient(
        {"bootstrap.servers": broker.bootstrap, "logger": logging.getLogger("e2e.admin")}  # type: ignore[dict-item]  # the stubs omit the logger setting
    )
    for future in admin.create_topics([NewTopic("account", num_partitions=4)]).values():
        future.result(30)
    relay.args[relay.args.index("--bootstrap") + 1] = broker.bootstrap
    relay.start()

    inboxes: list[Any] = [backend.new_inbox() for _ in range(2)]
    create_read_model(inboxes[0].connection)
    members = [
        InboxConsumer(
            broker.bootstrap,
            "balances",
            ["account"],
            apply_event,
            inbox,
            consumer_config={
                "session.timeout.ms": 6000,
                "topic.metadata.refresh.interval.ms": 1000,
            },
        ).start()
        for inbox in inboxes
    ]
    done = threading.Event()
    progress = [0]
    writer = threading.Thread(target=append_continuously, args=(store_url, done, progress))
    total = ACCOUNTS * ROUNDS
    try:
        # both members are in the group (the second one's join made the group rebalance)
        wait_for(lambda: all(m.assignments > 0 for m in members), 60, "both members assigned")
        writer.start()
        wait_for(lambda: progress[0] >= ROUNDS // 4, 60, "the first quarter of appends")
        relay.kill()  # kill -9 of the relay mid-stream
        wait_for(lambda: progress[0] >= ROUNDS // 3, 60, "appends while the relay is dead")
        relay.start()
        wait_for(lambda: progress[0] >= ROUNDS // 2, 60, "half of the appends")
        broker.kill()  # kill -9 of the broker mid-stream
        wait_for(lambda: progress[0] >= 5 * ROUNDS // 8, 60, "appends while the broker is dead")
        broker.start()  # same data dir, same port
        wait_for(lambda: progress[0] >= 3 * ROUNDS // 4, 60, "three quarters of the appends")
        relay.kill()  # and both at once
        broker.kill()
        broker.start()
        relay.start()
        writer.join(120)
        assert done.is_set()
        wait_for(lambda: inboxes[0].applied("balances") >= total, 120, "every event applied")
    finally:
        for member in members:
            member.stop()
        if writer.is_alive():
            writer.join(30)

    with ss.open_store(store_url) as store:
        expected = replay(store, tmp_path / "replay.db")
        store_ids = {str(e.id).encode() for e in store.read_category("account")}
        assert len(store_ids) == total
        # the projection fed through Kafka equals a replay of the store from scratch
        assert read_model(inboxes[0].connection) == expected
        assert sum(events for _, events in expected.values()) == total
    # every event was applied exactly once (the inbox holds each id once)
    assert inboxes[0].applied("balances") == total
    assert sum(m.handled for m in members) == total
    assert all(m.handled > 0 for m in members)  # both members of the group did work
    # nothing was lost on the way: every event is on the topic (duplicates are allowed there)
    on_topic = topic_event_ids(broker.bootstrap, total)
    assert set(on_topic) == store_ids
    duplicates = len(on_topic) - len(set(on_topic))
    print(
        f"\n{total} events, {duplicates} duplicates on the topic,"
        f" {sum(m.skipped for m in members)} redeliveries skipped by the inbox,"
        f" applied by the two members: {[m.handled for m in members]},"
        f" batches whose offset commit failed: {sum(m.commit_failures for m in members)}"
    )
    assert relay.terminate() == 0  # a clean stop after all that
    for inbox in inboxes:
        inbox.close()
