"""Projections on real SQLite files: exactly once, status and lag, rebuild while serving."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import streamsource as ss
from streamsource.eventstore.projections import (
    Projection,
    ProjectionContext,
    ProjectionFailed,
    ProjectionRunner,
    RebuildProgress,
)

from .ledger import Ledger, deposit_many


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ss.EventStore]:
    with ss.open_store(f"sqlite:///{tmp_path}/store.db") as opened:
        yield opened


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_a_projection_builds_its_read_model_in_the_store_file(
    store: ss.EventStore, tmp_path: Path
) -> None:
    deposit_many(store, 1000)
    store.append("order-1", [ss.NewEvent("Deposited", {"amount": 5})])  # another category
    store.append("account-1", [ss.NewEvent("Closed", {})])  # another type
    with ProjectionRunner(store, [Ledger()], batch_size=128) as runner:
        (before,) = runner.status()
        assert (before.generation, before.position, before.lag_events) == (0, None, 1000)
        runner.run_until_caught_up()
        (after,) = runner.status()
    db = tmp_path / "store.db"
    assert query(db, "SELECT count(*), count(DISTINCT event_id), sum(amount) FROM entries") == [
        (1000, 1000, sum(range(1, 1001)))
    ]
    assert query(db, "SELECT total FROM totals WHERE stream = 'account-3'") == [
        (sum(i + 1 for i in range(1000) if i % 10 == 3),)
    ]
    assert (after.generation, after.events, after.lag_events, after.lag_seconds) == (1, 1000, 0, 0)
    assert after.position == max(
        e.position for e in store.read_category("account", types="Deposited")
    )
    assert after.last_event_at is not None and after.error is None


def test_it_continues_from_its_checkpoint(store: ss.EventStore, tmp_path: Path) -> None:
    read_model = tmp_path / "read.db"
    url = f"sqlite:///{read_model}"
    deposit_many(store, 300)
    with ProjectionRunner(store, [Ledger()], read_model=url) as runner:
        runner.run_until_caught_up()
    deposit_many(store, 200, start=300)
    with ProjectionRunner(store, [Ledger()], read_model=url) as runner:
        (waiting,) = runner.status()
        assert waiting.lag_events == 200 and waiting.lag_seconds >= 0
        runner.run_until_caught_up()
    assert query(read_model, "SELECT count(*), sum(amount) FROM entries") == [
        (500, sum(range(1, 501)))
    ]


def test_a_failing_handler_commits_nothing_of_its_batch(
    store: ss.EventStore, tmp_path: Path
) -> None:
    deposit_many(store, 10)
    store.append("account-0", [ss.NewEvent("Deposited", {"amount": -1})])
    deposit_many(store, 10, start=10)
    runner = ProjectionRunner(store, [Ledger()], batch_size=4)
    with pytest.raises(ProjectionFailed) as failed:
        runner.run_until_caught_up()
    runner.close()
    assert failed.value.name == "ledger" and failed.value.position == 11
    assert "poisoned" in str(failed.value)
    # batches of 4: events 1-8 committed, the batch holding the bad event (9-12) did not
    assert query(tmp_path / "store.db", "SELECT count(*) FROM entries") == [(8,)]
    (status,) = ProjectionRunner(store, [Ledger()]).status()
    assert status.position == 8 and status.lag_events == 13


def test_why_a_runner_stopped_is_seen_from_another_runner_until_one_feeds_it_again(
    store: ss.EventStore,
) -> None:
    deposit_many(store, 3)
    store.append("account-0", [ss.NewEvent("Deposited", {"amount": -1})])
    with ProjectionRunner(store, [Ledger()]) as failing, pytest.raises(ProjectionFailed):
        failing.run_until_caught_up()
    # another process's view (a console): only the database tells it
    (seen,) = ProjectionRunner(store, [Ledger()]).status()
    assert seen.error is not None and "poisoned" in seen.error

    class Forgiving(Ledger):
        def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
            if event.data["amount"] > 0:
                super().handle(event, db)

    with ProjectionRunner(store, [Forgiving()]) as fixed:
        fixed.run_until_caught_up()
    (after,) = ProjectionRunner(store, [Ledger()]).status()
    assert after.error is None and after.lag_events == 0


def test_the_thread_follows_new_events(store: ss.EventStore, tmp_path: Path) -> None:
    with ProjectionRunner(store, [Ledger()], read_model=f"sqlite:///{tmp_path}/r.db") as runner:
        runner.start()
        deposit_many(store, 50)
        while runner.status()[0].lag_events:
            threading.Event().wait(0.01)
        runner.stop()
    assert query(tmp_path / "r.db", "SELECT count(*) FROM entries") == [(50,)]


def test_two_runners_on_one_read_model_apply_each_event_once(
    store: ss.EventStore, tmp_path: Path
) -> None:
    deposit_many(store, 3000)
    url = f"sqlite:///{tmp_path}/r.db"
    runners = [ProjectionRunner(store, [Ledger()], read_model=url, batch_size=50) for _ in "ab"]
    threads = [threading.Thread(target=r.run_until_caught_up) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for runner in runners:
        runner.close()
    assert query(tmp_path / "r.db", "SELECT count(*), count(DISTINCT event_id) FROM entries") == [
        (3000, 3000)
    ]


def test_a_rebuild_serves_the_old_model_until_the_new_one_caught_up(
    store: ss.EventStore, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    deposit_many(store, 2000)
    seen_during: list[list[tuple[object, ...]]] = []
    reports: list[RebuildProgress] = []

    def peek(progress: RebuildProgress) -> None:
        seen_during.append(query(db, "SELECT count(*) FROM entries"))
        reports.append(progress)

    with ProjectionRunner(store, [Ledger()], batch_size=500) as runner:
        runner.run_until_caught_up()
        deposit_many(store, 10, start=2000)  # the old generation does not have these yet
        assert runner.rebuild("ledger", progress=peek) == 2
        (status,) = runner.status()
        runner.run_until_caught_up()  # the runner notices the switch and follows generation 2
        deposit_many(store, 5, start=2010)
        runner.run_until_caught_up()
    assert seen_during and all(seen == [(2000,)] for seen in seen_during)
    assert [r.events for r in reports] == [500, 1000, 1500, 2000, 2010]  # one per batch
    assert all(r.projection == "ledger" and r.position <= r.head for r in reports)
    assert reports[-1].position == reports[-1].head
    assert (status.generation, status.rebuilding, status.lag_events) == (2, None, 0)
    assert query(db, "SELECT count(*), count(DISTINCT event_id) FROM entries") == [(2015, 2015)]
    tables = {row[0] for row in query(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"entries__g2", "totals__g2"} <= tables
    assert not {"entries__g1", "totals__g1"} & tables


def test_bad_definitions_and_names_are_refused(store: ss.EventStore) -> None:
    class Nameless(Projection):
        tables = ("t",)

    class BadTable(Projection):
        name = "bad"
        tables = ("no spaces",)

    for projection in (Nameless(), BadTable()):
        with pytest.raises(ss.ProgrammingError):
            ProjectionRunner(store, [projection])
    with pytest.raises(ss.ProgrammingError, match="two projections"):
        ProjectionRunner(store, [Ledger(), Ledger()])
    with pytest.raises(ss.ProgrammingError, match="no projection named"):
        ProjectionRunner(store, [Ledger()]).rebuild("nope")
    with (
        ss.open_store("memory://") as memory,
        pytest.raises(ss.ProgrammingError, match="read_model"),
    ):
        ProjectionRunner(memory, [Ledger()])


def test_a_memory_store_projects_into_a_sqlite_file(tmp_path: Path) -> None:
    class Unknown(Projection):
        name = "unknown"
        tables = ("t",)

        def create(self, db: ProjectionContext) -> None:
            db.execute("CREATE TABLE {t} (x INT)")

        def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
            db.execute("INSERT INTO {nope} VALUES (1)")

    with ss.open_store("memory://") as memory:
        deposit_many(memory, 20)
        with ProjectionRunner(memory, [Ledger()], read_model=f"sqlite:///{tmp_path}/m.db") as r:
            r.run_until_caught_up()
        assert query(tmp_path / "m.db", "SELECT count(*) FROM entries") == [(20,)]
        with (
            ProjectionRunner(memory, [Unknown()], read_model=f"sqlite:///{tmp_path}/m.db") as r,
            pytest.raises(ProjectionFailed, match="'nope' is not one of"),
        ):
            r.run_until_caught_up()


def test_a_rebuild_by_another_runner_is_followed_by_a_running_thread(
    store: ss.EventStore, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    deposit_many(store, 500)
    with ProjectionRunner(store, [Ledger()], batch_size=50) as serving:
        serving.start()  # keeps generation 1 up to date while the rebuild runs
        with ProjectionRunner(store, [Ledger()], batch_size=50) as rebuilder:
            writer = threading.Thread(target=deposit_many, args=(store, 300), kwargs={"start": 500})
            writer.start()
            assert rebuilder.rebuild("ledger") == 2
            writer.join()
        deposit_many(store, 10, start=800)
        while (status := serving.status()[0]).lag_events or status.generation != 2:
            threading.Event().wait(0.01)
        serving.stop()
    assert query(db, "SELECT count(*), count(DISTINCT event_id), sum(amount) FROM entries") == [
        (810, 810, sum(range(1, 811)))
    ]


async def test_the_runner_as_an_asyncio_task(store: ss.EventStore, tmp_path: Path) -> None:
    import asyncio

    deposit_many(store, 40)
    with ProjectionRunner(store, [Ledger()]) as runner:
        task = asyncio.create_task(runner.run_async())
        deadline = time.monotonic() + 60
        while (await asyncio.to_thread(runner.status))[0].lag_events:
            assert time.monotonic() < deadline, "the runner never caught up"
            await asyncio.sleep(0.01)
        deposit_many(store, 10, start=40)
        while (await asyncio.to_thread(runner.status))[0].events < 50:
            assert time.monotonic() < deadline, "the runner never applied the later events"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert query(tmp_path / "store.db", "SELECT count(*) FROM entries") == [(50,)]


class EveryStream(Projection):
    """A projection of $all: one row per event it receives."""

    name = "every_stream"
    tables = ("seen",)

    def create(self, db: ProjectionContext) -> None:
        db.execute("CREATE TABLE {seen} (stream TEXT)")

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        db.execute("INSERT INTO {seen} VALUES (?)", (event.stream,))


class EveryStreamWithSystem(EveryStream):
    name = "every_stream_with_system"
    tables = ("seen_all",)
    include_system = True

    def create(self, db: ProjectionContext) -> None:
        db.execute("CREATE TABLE {seen_all} (stream TEXT)")

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        db.execute("INSERT INTO {seen_all} VALUES (?)", (event.stream,))


def test_a_projection_of_all_leaves_out_system_streams_unless_asked(
    store: ss.EventStore, tmp_path: Path
) -> None:
    store.append("account-1", [ss.NewEvent("Opened", {})])
    store.append("$parked-billing", [ss.NewEvent("Opened", {})])
    store.append("order-1", [ss.NewEvent("Placed", {})])
    with ProjectionRunner(store, [EveryStream(), EveryStreamWithSystem()]) as runner:
        lags = {s.name: s.lag_events for s in runner.status()}
        assert lags == {"every_stream": 2, "every_stream_with_system": 3}
        runner.run_until_caught_up()
        assert {s.name: s.lag_events for s in runner.status()} == {
            "every_stream": 0,
            "every_stream_with_system": 0,
        }
    db = tmp_path / "store.db"
    assert query(db, "SELECT stream FROM seen") == [("account-1",), ("order-1",)]
    assert len(query(db, "SELECT stream FROM seen_all")) == 3
