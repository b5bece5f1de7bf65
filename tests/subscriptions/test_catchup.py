"""Catch-up subscriptions: history in pages, then live, with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import streamsource as ss
from deadline import Deadline
from streamsource.eventstore.subscriptions import subscribe

from .conftest import deposit, until_waiting


def test_history_then_live_in_order_without_gaps_or_duplicates(store: ss.EventStore) -> None:
    for i in range(2500):  # several pages of history
        deposit(store, f"account-{i % 7}", i)
    received: list[ss.RecordedEvent] = []
    with subscribe(store, page_size=1000) as sub:
        for event in sub:
            received.append(event)
            if len(received) == 2500:
                break
        assert sub.checkpoint == received[-1].position

        def write_more() -> None:
            for i in range(2500, 2600):
                deposit(store, f"account-{i % 7}", i)

        writer = threading.Thread(target=write_more)
        writer.start()
        for event in sub:  # live: blocks at the head until the writer's events arrive
            received.append(event)
            if len(received) == 2600:
                break
        writer.join()
    assert [e.data["amount"] for e in received] == list(range(2600))
    positions = [e.position for e in received]
    assert positions == sorted(set(positions))
    assert positions == [e.position for e in store.read_all()]


def test_a_category_and_an_event_type_filter(store: ss.EventStore) -> None:
    deposit(store, "account-1", 1)
    store.append("order-1", [ss.NewEvent("Placed", {})])
    store.append("account-2", [ss.NewEvent("Withdrawn", {"amount": 5})])
    deposit(store, "accounting-9", 3)  # another category despite the shared prefix
    with subscribe(store, category="account") as sub:
        assert [(e.stream, e.type) for e in sub.next_batch(timeout=0)] == [
            ("account-1", "Deposited"),
            ("account-2", "Withdrawn"),
        ]
    with subscribe(store, types="Deposited") as sub:
        assert [e.stream for e in sub.next_batch(timeout=0)] == ["account-1", "accounting-9"]
    with subscribe(store, category="account", types=["Withdrawn"]) as sub:
        assert [e.data for e in sub.next_batch(timeout=0)] == [{"amount": 5}]


def test_resuming_from_a_checkpoint_delivers_only_what_came_after(store: ss.EventStore) -> None:
    for i in range(10):
        deposit(store, "account-1", i)
    with subscribe(store, page_size=3) as sub:
        first = [next(sub) for _ in range(4)]
        checkpoint = sub.checkpoint
    assert checkpoint == first[-1].position
    with subscribe(store, after=checkpoint) as resumed:
        rest = resumed.next_batch(timeout=0)
    assert [e.data["amount"] for e in first + rest] == list(range(10))


def test_a_stream_subscription_follows_versions(store: ss.EventStore) -> None:
    for i in range(5):
        deposit(store, "account-1", i)
        deposit(store, "account-2", 100 + i)
    with subscribe(store, stream="account-2", after=1) as sub:
        batch = sub.next_batch(timeout=0)
        assert [e.version for e in batch] == [2, 3, 4]
        assert sub.checkpoint == 4
        deposit(store, "account-2", 105)
        assert [e.data["amount"] for e in sub.next_batch(timeout=5)] == [105]


def test_concurrent_writers_are_all_seen_exactly_once(store: ss.EventStore) -> None:
    writers, per_writer = 4, 100

    def write(n: int) -> None:
        for i in range(per_writer):
            deposit(store, f"account-{n}", i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    seen: list[ss.RecordedEvent] = []
    with subscribe(store, page_size=16) as sub:
        for thread in threads:
            thread.start()
        while len(seen) < writers * per_writer:
            seen.extend(sub.next_batch(timeout=10))
        for thread in threads:
            thread.join()
    positions = [e.position for e in seen]
    assert positions == sorted(set(positions))
    for n in range(writers):
        mine = [e.data["amount"] for e in seen if e.stream == f"account-{n}"]
        assert mine == list(range(per_writer))


def test_close_from_another_thread_ends_a_blocked_iteration(store: ss.EventStore) -> None:
    sub = subscribe(store, poll_interval=30)
    got: list[ss.RecordedEvent] = []
    consumer = threading.Thread(target=lambda: got.extend(sub))
    consumer.start()
    deposit(store, "account-1", 1)
    deadline = Deadline(30, "the subscriber to get the event")
    while not got:
        deadline.check()
        consumer.join(0.01)
    sub.close()
    consumer.join(10)
    assert not consumer.is_alive()
    assert [e.data for e in got] == [{"amount": 1}]
    with pytest.raises(ss.InterfaceError):
        sub.read_batch()


def test_next_batch_with_a_timeout_returns_nothing_at_the_head(store: ss.EventStore) -> None:
    with subscribe(store) as sub:
        assert sub.next_batch(timeout=0.01) == []
        assert sub.caught_up
        assert sub.checkpoint is None


def test_bad_arguments_are_refused(store: ss.EventStore) -> None:
    with pytest.raises(ss.ProgrammingError, match="not both"):
        subscribe(store, stream="a-1", category="a")
    with pytest.raises(ss.ProgrammingError, match="page_size"):
        subscribe(store, page_size=0)
    with pytest.raises(ss.ProgrammingError, match="after"):
        subscribe(store, after=-1)
    with pytest.raises(ss.InvalidStreamName):
        subscribe(store, category="")
    with pytest.raises(ss.ProgrammingError, match="poll_interval"):
        subscribe(store, poll_interval=0)


async def test_the_async_iterator_follows_history_then_live(store_url: str) -> None:
    async with await ss.open_async_store(store_url) as astore:
        for i in range(30):
            await astore.append(f"account-{i % 3}", [ss.NewEvent("Deposited", {"amount": i})])
        received: list[int] = []
        async with subscribe(astore, category="account", page_size=7, poll_interval=60) as sub:
            async for event in sub:
                received.append(event.data["amount"])
                if len(received) == 30:
                    break

            async def write_once_it_waits() -> None:
                await until_waiting(astore)
                await astore.append("account-9", [ss.NewEvent("Deposited", {"amount": 30})])

            task = asyncio.create_task(write_once_it_waits())
            # woken by the append signal, not by a poll (the next one is a minute away)
            event = await asyncio.wait_for(sub.__anext__(), 30)
            await task
            received.append(event.data["amount"])
            assert sub.checkpoint == event.position
        assert received == list(range(31))


async def test_async_close_ends_a_pending_step(store_url: str) -> None:
    async with await ss.open_async_store(store_url) as astore:
        sub = subscribe(astore, poll_interval=30)
        step = asyncio.create_task(sub.__anext__())
        await until_waiting(astore)  # the step is pending: waiting for an append
        sub.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(step, 10)


WRITER = """
import sys
import streamsource as ss
with ss.open_store(sys.argv[1]) as store:
    for i in range(int(sys.argv[2])):
        store.append("account-x", [ss.NewEvent("Deposited", {"amount": i})])
"""


def test_appends_from_another_process_are_seen_by_polling(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    with ss.open_store(url) as store, subscribe(store, poll_interval=0.05) as sub:
        assert sub.next_batch(timeout=0) == []
        writer = subprocess.Popen([sys.executable, "-c", WRITER, url, "50"])
        seen: list[int] = []
        while len(seen) < 50:
            seen.extend(e.data["amount"] for e in sub.next_batch(timeout=30))
        assert writer.wait(30) == 0
    assert seen == list(range(50))


def test_two_store_objects_on_one_file_share_the_wakeup(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    with (
        ss.open_store(url) as reader,
        ss.open_store(url) as writer,
        subscribe(reader, poll_interval=60) as sub,
    ):
        assert sub.next_batch(timeout=0) == []
        timer = threading.Timer(0.05, lambda: deposit(writer, "account-1", 7))
        timer.start()
        batch = sub.next_batch(timeout=60)  # would take a minute if the signal were lost
        timer.join()
    assert [e.data["amount"] for e in batch] == [7]


def test_a_stream_subscription_ends_with_stream_deleted_on_a_tombstone(
    store: ss.EventStore,
) -> None:
    deposit(store, "account-1", 1)
    with subscribe(store, stream="account-1") as sub:
        assert len(sub.next_batch(timeout=0)) == 1
        store.delete_stream("account-1", hard=True)
        with pytest.raises(ss.StreamDeleted):
            sub.next_batch(timeout=0)
    with subscribe(store) as everything:  # $all still has the events of deleted streams
        assert [e.stream for e in everything.next_batch(timeout=0)] == ["account-1"]
