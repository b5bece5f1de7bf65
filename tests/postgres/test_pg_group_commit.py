"""Group commit on PostgreSQL: concurrent appends of one store share one call and one commit,
and every guarantee of a lone append holds for each of them.

The deterministic tests hold the store's position lock from a connection of their own, so
the first append (the leader) waits in the server while the others queue behind it;
releasing the lock sends the queued appends as one batch. That they shared a transaction is visible in
the database itself: their events carry one ``tx_id``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import streamsource as ss
from deadline import Deadline, wait_until
from pg_server import pg_store_url
from streamsource.eventstore.backends.postgres import groupcommit as gc
from streamsource.eventstore.events import AppendResult
from streamsource.eventstore.recorder import EventRecord

pytestmark = pytest.mark.postgres


# -- the queue, without I/O ------------------------------------------------------------------


def _job(stream: str, *ids: uuid.UUID) -> gc.Job:
    records = [EventRecord(i, "E", b"{}", b"{}") for i in (ids or (uuid.uuid4(),))]
    return gc.Job(stream, records, ss.ANY)


def test_a_lone_append_leads_at_once_and_others_queue_behind_it() -> None:
    queue = gc.Queue()
    first, second, third = _job("a-1"), _job("b-1"), _job("c-1")
    assert queue.arrive(first)
    assert queue.take(first) == [first]  # sent while the others arrive
    assert not queue.arrive(second)
    assert not queue.arrive(third)
    assert queue.finish([first]) is second  # the first queued leads the next batch
    assert second.promoted
    assert queue.take(second) == [second, third]  # its own append first, then the rest
    assert queue.finish([second, third]) is None
    assert queue.leading == 0
    assert (queue.batches, queue.appends) == (2, 3)


def test_appends_naming_the_same_id_go_in_different_batches() -> None:
    queue = gc.Queue()
    shared = uuid.uuid4()
    leader, one, other, free = _job("a-1"), _job("b-1", shared), _job("c-1", shared), _job("d-1")
    queue.arrive(leader)
    queue.take(leader)
    for job in (one, other, free):
        queue.arrive(job)
    successor = queue.finish([leader])
    assert successor is one
    assert queue.take(one) == [one, free]
    assert queue.pending == [other]
    assert queue.finish([one, free]) is other


def test_a_batch_holds_at_most_max_batch_appends() -> None:
    queue = gc.Queue(max_batch=3)
    jobs = [_job(f"s-{n}") for n in range(6)]
    queue.arrive(jobs[0])
    assert queue.take(jobs[0]) == [jobs[0]]
    for job in jobs[1:]:
        queue.arrive(job)
    assert queue.finish([jobs[0]]) is jobs[1]
    assert queue.take(jobs[1]) == jobs[1:4]
    assert queue.pending == jobs[4:]


def test_a_withdrawn_successor_hands_the_lead_on() -> None:
    queue = gc.Queue()
    leader, quitter, patient = _job("a-1"), _job("b-1"), _job("c-1")
    queue.arrive(leader)
    queue.take(leader)
    queue.arrive(quitter)
    queue.arrive(patient)
    assert queue.finish([leader]) is quitter
    assert queue.withdraw(quitter) is patient  # it never leads: the next one does
    assert queue.pending == [patient]
    assert queue.withdraw(patient) is None
    assert queue.leading == 0 and queue.pending == []


def test_batch_outcomes_give_each_append_its_own() -> None:
    jobs = [_job("a-1"), _job("b-1"), _job("c-1")]
    gc.batch_outcomes(jobs, ([0, 1, 2], [4, 7, None], [10, 0, 0]))
    assert jobs[0].outcome == AppendResult(version=4, position=10)
    assert jobs[1].outcome == gc.Refused(1, 7)
    assert jobs[2].outcome == gc.Refused(2, None)
    stale, deleted = gc.decide(jobs[1]), gc.decide(jobs[2])
    assert not isinstance(stale, AppendResult) and not isinstance(deleted, AppendResult)
    assert isinstance(stale.error, ss.WrongExpectedVersion) and stale.maybe_retry
    assert isinstance(deleted.error, ss.StreamDeleted) and not deleted.maybe_retry


# -- against the server ----------------------------------------------------------------------


@pytest.fixture
def url(pg_server_url: str) -> str:
    return pg_store_url(pg_server_url)


class StreamLock:
    """A stream's lock, held from a connection of the test's own (as an appender holds it)."""

    def __init__(self, server_url: str, schema: str, stream: str) -> None:
        self._conn = psycopg.connect(server_url)
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s || '.' || %s, 0))", (schema, stream)
        )

    def release(self) -> None:
        self._conn.rollback()
        self._conn.close()


class PositionLock:
    """The store's position lock (rule 1 of the backend's docs), held from a connection of
    the test's own: an append in flight waits for it after its stream checks, so the appends
    made meanwhile queue behind it."""

    def __init__(self, server_url: str, schema: str) -> None:
        self._conn = psycopg.connect(server_url, autocommit=True)
        self._key = (1397977699, schema)
        self._conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", self._key)

    def release(self) -> None:
        self._conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", self._key)
        self._conn.close()


def _schema(store: Any) -> str:
    return str(store.stats()["schema"])


def _wait_queued(recorder: Any, count: int) -> None:
    # the recorder's queue (private): how the test knows the followers are waiting
    wait_until(lambda: len(recorder._queue.pending) >= count, 30, f"{count} queued appends")


def _wait_leading(recorder: Any, server_url: str) -> None:
    """Until a leader's call waits in the server for a lock the test holds (before that it
    may still take appends made meanwhile into its batch)."""
    wait_until(lambda: recorder._queue.leading == 1, 30, "a leader")
    with psycopg.connect(server_url, autocommit=True) as watcher:

        def blocked() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
            ).fetchone()
            return bool(row and row[0])

        wait_until(blocked, 30, "the leader to wait for the lock")


def _wait_outcome(outcome: list[Any]) -> None:
    wait_until(lambda: bool(outcome), 30, "an outcome")


def _transactions(server_url: str, schema: str, streams: list[str]) -> int:
    with psycopg.connect(server_url, options=f"-c search_path={schema}") as conn:
        row = conn.execute(
            "SELECT count(DISTINCT tx_id) FROM events WHERE stream = ANY(%s)", (streams,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def threads() -> Iterator[Callable[[Callable[[], Any]], list[Any]]]:
    """Starts a call on a thread of its own; its outcome (result or exception) lands in the
    returned list. Every thread is joined (with a deadline) at the end of the test."""
    started: list[threading.Thread] = []

    def start(call: Callable[[], Any]) -> list[Any]:
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(call())
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        started.append(thread)
        return outcome

    yield start
    for thread in started:
        thread.join(timeout=60)
        assert not thread.is_alive()


def _events(n: int, kind: str = "E") -> list[ss.NewEvent]:
    return [ss.NewEvent(kind, {"n": i}) for i in range(n)]


def test_queued_appends_share_one_transaction_each_with_its_own_outcome(
    pg_server_url: str, url: str, threads: Any
) -> None:
    with ss.open_store(url) as store:
        schema = _schema(store)
        store.append("tomb-1", _events(1))
        store.delete_stream("tomb-1", hard=True)
        store.append("versioned-1", _events(2))
        retried = [ss.NewEvent("Paid", {"n": 1})]
        first = store.append("retried-1", retried)
        reused = uuid.uuid4()
        store.append("owner-1", [ss.NewEvent("Owned", {}, id=reused)])

        lock = PositionLock(pg_server_url, schema)
        leader = threads(lambda: store.append("hot-1", _events(1)))
        _wait_leading(store.recorder, pg_server_url)
        calls: dict[str, Callable[[], Any]] = {
            "fine": lambda: store.append("fine-1", _events(2), ss.NO_STREAM),
            "stale": lambda: store.append("versioned-1", _events(1), 0),
            "tomb": lambda: store.append("tomb-1", _events(1)),
            "retry": lambda: store.append("retried-1", retried),
            "reuse": lambda: store.append("thief-1", [ss.NewEvent("Other", {}, id=reused)]),
            "right": lambda: store.append("versioned-1", _events(1), 1),
        }
        outcomes: dict[str, list[Any]] = {}
        for name, call in calls.items():
            # queued one after another, in this order ("stale" must meet version 1, before
            # "right" makes it 2): threads started together queue in any order
            outcomes[name] = threads(call)
            _wait_queued(store.recorder, len(outcomes))
        lock.release()
        for outcome in [leader, *outcomes.values()]:
            _wait_outcome(outcome)

        assert leader[0].version == 0
        (fine,) = outcomes["fine"]
        assert fine.version == 1
        (stale,) = outcomes["stale"]
        assert isinstance(stale, ss.WrongExpectedVersion)
        assert (stale.stream, stale.actual) == ("versioned-1", 1)
        (tomb,) = outcomes["tomb"]
        assert isinstance(tomb, ss.StreamDeleted)
        assert outcomes["retry"] == [first]  # idempotent: the original result
        (reuse,) = outcomes["reuse"]
        assert isinstance(reuse, ss.DuplicateEventId)
        assert "owner-1" in str(reuse)
        (right,) = outcomes["right"]
        assert right.version == 2
        # the appends that were written share one transaction (the batch)
        assert _transactions(pg_server_url, schema, ["fine-1", "versioned-1"]) == 2
        with psycopg.connect(pg_server_url, options=f"-c search_path={schema}") as conn:
            rows = conn.execute(
                "SELECT DISTINCT tx_id::text FROM events WHERE stream IN ('fine-1')"
                " OR (stream = 'versioned-1' AND version = 2)"
            ).fetchall()
        assert len(rows) == 1
        assert not list(store.read_stream("thief-1"))
        assert [e.type for e in store.read_stream("retried-1")] == ["Paid"]
        # the global log: positions strictly increasing, each stream in version order
        log = list(store.read_all())
        assert [e.position for e in log] == sorted({e.position for e in log})
        for stream in ("fine-1", "versioned-1"):
            last = store.stream_version(stream)
            assert last is not None
            assert [e.version for e in log if e.stream == stream] == list(range(last + 1))
        # and the store goes on: a lone append after the batch
        assert store.append("fine-1", _events(1), 1).version == 2


@pytest.mark.parametrize("events", [1, 3])
def test_a_stream_held_by_a_transaction_holds_up_only_its_own_appends(
    pg_server_url: str, url: str, threads: Any, events: int
) -> None:
    """Another transaction holds stream hot-1 (as a store.transaction() that appended to it
    and is still writing its rows): an append to hot-1 waits for it, on its own; the appends
    to other streams, before and after it in the queue, go on."""
    with ss.open_store(url) as store:
        schema = _schema(store)
        store.append("hot-1", _events(1))
        lock = StreamLock(pg_server_url, schema, "hot-1")
        try:
            waiting = threads(lambda: store.append("hot-1", _events(events), 0))
            others = [
                threads(lambda n=n: store.append(f"cold-{n}", _events(events))) for n in range(6)
            ]
            for outcome in others:
                _wait_outcome(outcome)
                assert outcome[0].version == events - 1
            assert waiting == []  # still waiting for the transaction
        finally:
            lock.release()
        _wait_outcome(waiting)
        assert waiting[0].version == events
        assert [e.version for e in store.read_stream("hot-1")] == list(range(events + 1))

        # the same inside a batch: hot-1's append is queued with others behind a leader
        hold_stream = StreamLock(pg_server_url, schema, "hot-1")
        hold_positions = PositionLock(pg_server_url, schema)
        try:
            leader = threads(lambda: store.append("lead-1", _events(events)))
            _wait_leading(store.recorder, pg_server_url)
            waiting = threads(lambda: store.append("hot-1", _events(events), events))
            _wait_queued(store.recorder, 1)
            others = [
                threads(lambda n=n: store.append(f"cold-{n}", _events(events))) for n in range(4)
            ]
            _wait_queued(store.recorder, 5)
            hold_positions.release()
            for outcome in [leader, *others]:
                _wait_outcome(outcome)
            assert [o[0].version for o in others] == [2 * events - 1] * 4
            assert waiting == []
        finally:
            hold_stream.release()
        _wait_outcome(waiting)
        assert waiting[0].version == 2 * events


def test_a_batch_that_fails_as_a_whole_sends_each_append_again_alone(
    pg_server_url: str, url: str, threads: Any
) -> None:
    """A concurrent transaction inserts an event id that a queued append also uses: the
    batch waits for it, then fails on the unique index; every append of the batch is sent
    again on its own, so only the one that reused the id fails."""
    with ss.open_store(url) as store:
        schema = _schema(store)
        store.append("warm-1", _events(1))
        taken = uuid.uuid4()
        other = psycopg.connect(pg_server_url, options=f"-c search_path={schema}")
        try:
            other.execute(
                "SELECT append_event('other-1', -1, %s, 'Taken', '{}'::bytea, '{}'::bytea)",
                (taken,),
            )  # inserted, not committed
            lock = PositionLock(pg_server_url, schema)
            leader = threads(lambda: store.append("hot-1", _events(1)))
            _wait_leading(store.recorder, pg_server_url)
            clash = threads(lambda: store.append("mine-1", [ss.NewEvent("Mine", {}, id=taken)]))
            bystander = threads(lambda: store.append("bystander-1", _events(1)))
            _wait_queued(store.recorder, 2)
            lock.release()
            _wait_outcome(leader)

            def batch_waits_for_the_other_transaction() -> bool:
                with psycopg.connect(pg_server_url, autocommit=True) as watcher:
                    row = watcher.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted"
                        " AND locktype = 'transactionid'"
                    ).fetchone()
                return bool(row and row[0])

            wait_until(batch_waits_for_the_other_transaction, 30, "the batch to wait")
            other.commit()
        finally:
            other.close()
        _wait_outcome(clash)
        _wait_outcome(bystander)
        assert isinstance(clash[0], ss.DuplicateEventId)
        assert "other-1" in str(clash[0])
        assert bystander[0].version == 0
        assert [e.type for e in store.read_stream("bystander-1")] == ["E"]
        assert not list(store.read_stream("mine-1"))
        # no position lock was left behind: appends go on
        assert store.append("after-1", _events(1)).version == 0


def test_many_threads_appending_with_expected_versions(url: str) -> None:
    writers, appends = 16, 25
    errors: list[BaseException] = []
    with ss.open_store(url) as store:
        barrier = threading.Barrier(writers)

        def writer(n: int) -> None:
            try:
                barrier.wait(timeout=30)
                version: int | None = None
                for i in range(appends):
                    expected = ss.NO_STREAM if version is None else version
                    version = store.append(f"w-{n}", _events(1 + i % 2), expected).version
                # a concurrent writer of a shared stream
                store.append("shared-1", _events(1), ss.ANY)
            except BaseException as exc:
                errors.append(exc)

        pool = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=120)
            assert not thread.is_alive()
        assert errors == []
        per_writer = sum(1 + i % 2 for i in range(appends))
        log = list(store.read_all())
        assert len(log) == writers * per_writer + writers
        assert [e.position for e in log] == sorted({e.position for e in log})
        for n in range(writers):
            assert [e.version for e in log if e.stream == f"w-{n}"] == list(range(per_writer))
        assert [e.version for e in log if e.stream == "shared-1"] == list(range(writers))
        stats = store.stats()
        assert stats["writes"] == writers * appends + writers
        assert 0 < int(stats["commits"]) <= int(stats["writes"])


def test_asyncio_tasks_share_a_batch_and_a_cancelled_queued_task_writes_nothing(
    pg_server_url: str, url: str
) -> None:
    async def scenario() -> None:
        async with await ss.open_async_store(url) as store:
            recorder: Any = store.recorder
            schema = str((await store.stats())["schema"])
            lock = await asyncio.to_thread(PositionLock, pg_server_url, schema)
            leader = asyncio.create_task(store.append("hot-1", _events(1)))
            await asyncio.to_thread(_wait_leading, recorder, pg_server_url)
            followers = [
                asyncio.create_task(store.append(f"task-{n}", _events(1), ss.NO_STREAM))
                for n in range(8)
            ]
            quitter = asyncio.create_task(store.append("quitter-1", _events(1)))
            deadline = Deadline(30, "9 queued appends")
            while len(recorder._queue.pending) < 9:
                deadline.check()
                await asyncio.sleep(0.01)
            quitter.cancel()
            await asyncio.to_thread(lock.release)
            assert (await asyncio.wait_for(leader, 30)).version == 0
            results = await asyncio.wait_for(asyncio.gather(*followers), 30)
            assert [r.version for r in results] == [0] * 8
            with pytest.raises(asyncio.CancelledError):
                await quitter
            assert [e async for e in store.read_stream("quitter-1")] == []
            streams = [f"task-{n}" for n in range(8)]
            shared = await asyncio.to_thread(_transactions, pg_server_url, schema, streams)
            assert shared == 1

            # many tasks with expected versions, every guarantee kept
            async def writer(n: int) -> None:
                version = 0
                for _ in range(10):
                    version = (await store.append(f"task-{n}", _events(1), version)).version

            await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(8))), 60)
            log = [e async for e in store.read_all()]
            assert [e.position for e in log] == sorted({e.position for e in log})
            for n in range(8):
                versions = [e.version for e in log if e.stream == f"task-{n}"]
                assert versions == list(range(11))

    asyncio.run(scenario())
