"""Appends of many asyncio tasks carried to SQLite's group commit in shared thread hops.

Made deterministic with SQLite's own write lock: another connection holds it, so the first
hop stays in flight (its writer waits on the busy timeout) while the tasks started after it
queue on the loop; they are certain to go together in the next hop once the lock is released.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import streamsource as ss
from deadline import Deadline
from streamsource.eventstore.backends.threaded import SharedHops, ThreadedAsyncRecorder


def deposit(n: int) -> ss.NewEvent:
    return ss.NewEvent("Deposited", {"amount": n})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ss.AsyncEventStore]:
    # A long busy timeout: the writer waits for the lock the test holds, never gives up on it.
    opened = await ss.open_async_store(f"sqlite:///{tmp_path}/store.db", timeout=60)
    yield opened
    await opened.close()


def hops_of(store: ss.AsyncEventStore) -> SharedHops:
    recorder = store._recorder
    assert isinstance(recorder, ThreadedAsyncRecorder) and recorder._hops is not None
    return recorder._hops


async def until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    deadline = Deadline(limit, what)
    while not condition():
        deadline.check()
        await asyncio.sleep(0.001)


@contextmanager
def write_lock_held(tmp_path: Path) -> Iterator[None]:
    """SQLite's write lock, taken by another connection (as another process would)."""
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


async def first_hop_in_flight(
    store: ss.AsyncEventStore, event: ss.NewEvent | None = None
) -> asyncio.Task[ss.AppendResult]:
    """An append whose hop is handed to the writer thread (and waits there for the lock)."""
    task = asyncio.create_task(store.append("first-1", event or deposit(0), ss.NO_STREAM))
    hops = hops_of(store)
    await until(lambda: hops._loop is not None and not hops._queued, "the first hop sent")
    return task


async def test_one_bad_append_among_many_in_one_hop_fails_alone(
    store: ss.AsyncEventStore, tmp_path: Path
) -> None:
    await store.append("taken-1", deposit(0), ss.NO_STREAM)
    await store.append("gone-1", deposit(0), ss.NO_STREAM)
    await store.delete_stream("gone-1", hard=True)
    before = await store.stats()
    with write_lock_held(tmp_path):
        first = await first_hop_in_flight(store)
        tasks = [
            asyncio.create_task(store.append(f"new-{n}", deposit(n), ss.NO_STREAM))
            for n in range(10)
        ]
        tasks.insert(3, asyncio.create_task(store.append("taken-1", deposit(1), ss.NO_STREAM)))
        tasks.insert(7, asyncio.create_task(store.append("gone-1", deposit(1))))
        await until(lambda: len(hops_of(store)._queued) == 12, "all twelve queued")
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    assert (await asyncio.wait_for(first, 30)).position == 3

    deleted, wrong = outcomes.pop(7), outcomes.pop(3)
    assert isinstance(deleted, ss.StreamDeleted)
    assert isinstance(wrong, ss.WrongExpectedVersion) and wrong.actual == 0
    assert outcomes == [ss.AppendResult(0, 4 + n) for n in range(10)]
    assert [e.stream async for e in store.read_all(after=3)] == [f"new-{n}" for n in range(10)]
    after = await store.stats()
    # The first hop's commit, then one commit for all twelve of the second hop.
    assert int(after["commits"]) - int(before["commits"]) == 2
    assert int(after["largest_batch"]) >= 12


async def test_a_cancelled_task_neither_loses_nor_doubles_its_append(
    store: ss.AsyncEventStore, tmp_path: Path
) -> None:
    in_flight_event = deposit(1)
    with write_lock_held(tmp_path):
        in_flight = await first_hop_in_flight(store, in_flight_event)
        queued = asyncio.create_task(store.append("queued-1", deposit(2), ss.NO_STREAM))
        kept = asyncio.create_task(store.append("kept-1", deposit(3), ss.NO_STREAM))
        await until(lambda: len(hops_of(store)._queued) == 2, "two appends queued")
        queued.cancel()
        in_flight.cancel()
    assert (await asyncio.wait_for(kept, 30)) == ss.AppendResult(0, 2)
    for cancelled in (queued, in_flight):
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    # The one in flight was written once; the one still queued was never written.
    assert [e.stream async for e in store.read_all()] == ["first-1", "kept-1"]
    assert await store.stream_version("queued-1") is None

    # A caller retrying its cancelled append with the same event gets the original result.
    retried = await store.append("first-1", in_flight_event, ss.NO_STREAM)
    assert retried == ss.AppendResult(0, 1)
    assert [e.id async for e in store.read_stream("first-1")] == [in_flight_event.id]


async def test_close_waits_for_the_appends_it_accepted(tmp_path: Path) -> None:
    store = await ss.open_async_store(f"sqlite:///{tmp_path}/store.db", timeout=60)
    with write_lock_held(tmp_path):
        first = await first_hop_in_flight(store)
        later = [
            asyncio.create_task(store.append(f"later-{n}", deposit(n), ss.NO_STREAM))
            for n in range(3)
        ]
        await until(lambda: len(hops_of(store)._queued) == 3, "three queued")
        closing = asyncio.create_task(store.close())
        await asyncio.sleep(0)
        assert not closing.done()
    await asyncio.wait_for(closing, 30)
    assert (await first).version == 0
    assert [(await task).version for task in later] == [0, 0, 0]
    with ss.open_store(f"sqlite:///{tmp_path}/store.db") as reopened:
        assert reopened.head_position() == 4
    with pytest.raises(ss.InterfaceError):
        await store.append("after-1", deposit(0))
