"""Projections with the read model in PostgreSQL: exactly once across kill -9, rebuild."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest

import streamsource as ss
from streamsource.eventstore.backends.postgres import parse
from streamsource.eventstore.projections import ProjectionRunner

from .ledger import Ledger, deposit_many
from .test_kill import run_child

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(pg_url) as opened:
        yield opened


def query(pg_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(parse(pg_url, {}).conninfo) as db:
        return db.execute(sql.encode()).fetchall()


def test_a_read_model_in_the_stores_schema_and_its_rebuild(
    store: ss.EventStore, pg_url: str
) -> None:
    deposit_many(store, 700)
    seen_during: list[list[tuple[object, ...]]] = []
    with ProjectionRunner(store, [Ledger()], batch_size=200) as runner:
        runner.run_until_caught_up()
        assert query(pg_url, "SELECT count(*), sum(amount) FROM entries") == [
            (700, sum(range(1, 701)))
        ]
        deposit_many(store, 50, start=700)
        generation = runner.rebuild(
            "ledger",
            progress=lambda _: seen_during.append(query(pg_url, "SELECT count(*) FROM entries")),
        )
        runner.run_until_caught_up()
        (status,) = runner.status()
    assert generation == 2 and seen_during and all(s == [(700,)] for s in seen_during)
    assert (status.generation, status.events, status.lag_events) == (2, 750, 0)
    assert query(pg_url, "SELECT count(*), count(DISTINCT event_id) FROM entries") == [(750, 750)]
    assert query(pg_url, "SELECT to_regclass('entries__g1') IS NULL") == [(True,)]


def checkpoint(pg_url: str) -> int:
    try:
        rows = query(pg_url, "SELECT max(position) FROM ss_projection_checkpoints")
    except psycopg.errors.UndefinedTable:
        return 0
    return int(str(rows[0][0])) if rows[0][0] is not None else 0


@pytest.mark.slow
def test_every_event_takes_effect_once_across_kill_9(store: ss.EventStore, pg_url: str) -> None:
    total = 4000
    deposit_many(store, total)
    for target in (600, 1800, 3000):
        child = run_child(pg_url, "-", "forever")
        deadline = time.monotonic() + 120
        while checkpoint(pg_url) < target and child.poll() is None:
            assert time.monotonic() < deadline, "the projector made no progress"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert run_child(pg_url, "-", "until-caught-up").wait(120) == 0
    assert query(pg_url, "SELECT count(*), count(DISTINCT event_id), sum(amount) FROM entries") == [
        (total, total, total * (total + 1) // 2)
    ]
    assert query(pg_url, "SELECT sum(total) FROM totals") == [(total * (total + 1) // 2,)]


def test_a_write_failing_at_commit_fails_the_batch_and_commits_nothing(
    store: ss.EventStore, pg_url: str
) -> None:
    from streamsource.eventstore.projections import (
        Projection,
        ProjectionContext,
        ProjectionFailed,
    )

    class OnePerStream(Projection):
        name = "one_per_stream"
        tables = ("firsts",)

        def create(self, db: ProjectionContext) -> None:
            db.execute("CREATE TABLE {firsts} (stream TEXT PRIMARY KEY)")

        def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
            db.execute("INSERT INTO {firsts} VALUES (?)", (event.stream,))  # sent in bulk

    store.append("a-1", [ss.NewEvent("E", {})])
    store.append("a-2", [ss.NewEvent("E", {}), ss.NewEvent("E", {})])  # a-2 twice: a conflict
    with ProjectionRunner(store, [OnePerStream()], batch_size=10) as runner:
        with pytest.raises(ProjectionFailed, match="batch of events ending at position 3"):
            runner.run_until_caught_up()
        (status,) = runner.status()
    assert status.position is None and "duplicate key" in str(status.error)
    assert query(pg_url, "SELECT count(*) FROM firsts") == [(0,)]


@pytest.mark.slow
def test_the_runner_thread_survives_a_server_restart() -> None:
    from pg_server import PgServer, ServerUnavailable

    try:
        server = PgServer.start()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        url = f"{server.url}?schema=restart&pool_timeout=5"
        with ss.open_store(url) as store, ProjectionRunner(store, [Ledger()]) as runner:
            deposit_many(store, 100)
            runner.start()
            deadline = time.monotonic() + 60
            while runner.status()[0].lag_events:
                assert time.monotonic() < deadline, "the runner never caught up"
                time.sleep(0.01)
            assert runner.last_error is None
            server.stop()  # the runner meets a dead connection, then waits and retries
            while runner.last_error is None:
                assert time.monotonic() < deadline, "the runner never noticed the server gone"
                time.sleep(0.01)
            server.start_again()
            for _ in range(50):  # the store's pool may hand out a stale connection first
                try:
                    store.head_position()
                    break
                except ss.OperationalError:
                    time.sleep(0.1)
            deposit_many(store, 100, start=100)
            deadline = time.monotonic() + 60
            while (status := runner.status()[0]).events < 200:
                assert time.monotonic() < deadline, (status, runner.last_error)
                time.sleep(0.05)
            runner.stop()
            assert not runner.errors
        assert query(url, "SELECT count(*), count(DISTINCT event_id) FROM entries") == [(200, 200)]
    finally:
        server.destroy()
