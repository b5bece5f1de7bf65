"""Subscriptions on PostgreSQL: NOTIFY wakes subscribers of other processes; consumer groups."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import streamsource as ss
from streamsource.eventstore.subscriptions import PersistentSubscription, subscribe
from streamsource.eventstore.subscriptions.async_group_tables import open_async_group_tables

from .conftest import LoopThread, Persistent

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(pg_url) as opened:
        yield opened


WRITER = """
import sys
import streamsource as ss
with ss.open_store(sys.argv[1]) as store:
    for i in range(int(sys.argv[2])):
        store.append(f"account-{i % 3}", [ss.NewEvent("Deposited", {"amount": i})])
"""


def test_appends_of_another_process_wake_the_subscriber_by_notify(
    store: ss.EventStore, pg_url: str
) -> None:
    store.append("account-0", [ss.NewEvent("Deposited", {"amount": -1})])
    # a poll every minute: only NOTIFY can make this test finish quickly
    with subscribe(store, category="account", poll_interval=60) as sub:
        assert [e.data["amount"] for e in sub.next_batch(timeout=0)] == [-1]
        writer = subprocess.Popen([sys.executable, "-c", WRITER, pg_url, "30"])
        seen: list[int] = []
        while len(seen) < 30:
            # never a poll (60 s): every batch, the last one too, comes from a NOTIFY, which
            # the writer must send even when it closes its store right after its appends
            batch = sub.next_batch(timeout=30)
            assert batch, f"no NOTIFY woke the subscriber after {seen}"
            seen += [e.data["amount"] for e in batch]
        assert writer.wait(60) == 0
    assert seen == list(range(30))


async def test_the_async_subscription_follows_a_postgres_store(pg_url: str) -> None:
    async with await ss.open_async_store(pg_url) as astore:
        await astore.append("order-1", [ss.NewEvent("Placed", {"n": 0})])
        async with subscribe(astore, poll_interval=60) as sub:
            first = await sub.next_batch(timeout=0)
            await astore.append("order-2", [ss.NewEvent("Placed", {"n": 1})])
            second = await sub.next_batch(timeout=60)
    assert [e.data["n"] for e in first + second] == [0, 1]


@pytest.fixture
def async_store(pg_url: str, loop_thread: LoopThread) -> Iterator[ss.AsyncEventStore]:
    """The asyncio store on the same database (its own pool, the native asyncio driver)."""
    opened = loop_thread.run(ss.open_async_store(pg_url))
    yield opened
    loop_thread.run(opened.close())


def test_competing_consumers_and_parking_on_postgres(
    store: ss.EventStore, persistent: Persistent
) -> None:
    for i in range(60):
        store.append(f"order-{i % 4}", [ss.NewEvent("Placed", {"n": i})])
    handled: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        with persistent(store, "ship", category="order", batch_size=4, max_attempts=2) as sub:
            while batch := sub.fetch(timeout=0.5):
                for message in batch:
                    if message.event.data["n"] == 7:
                        sub.nack(message, "bad address")
                        continue
                    with lock:
                        handled.append(message.event.data["n"])
                    sub.ack(message)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(handled) == [n for n in range(60) if n != 7]
    with persistent(store, "ship", category="order") as sub:
        (parked,) = sub.parked()
        assert parked.data == {"n": 7} and parked.metadata["$error"] == "bad address"
        assert sub.in_flight() == 0
        # the address was fixed: send the parked message through the group again
        assert sub.replay_parked() == 1
        (again,) = sub.fetch(timeout=10)
        assert (again.event.data, again.attempt, again.replays) == ({"n": 7}, 1, 1)
        sub.ack(again)
        assert sub.in_flight() == 0 and sub.replay_parked() == 0


def test_the_last_appends_before_a_writer_closes_its_store_are_notified(
    store: ss.EventStore, pg_url: str
) -> None:
    # A few appends in a row, then close at once: the last ones land while an earlier
    # NOTIFY is being sent, so only a NOTIFY sent on close can announce them.
    with subscribe(store, category="account", poll_interval=60) as sub:
        for count in (2, 3, 5, 8, 13):
            subprocess.run([sys.executable, "-c", WRITER, pg_url, str(count)], check=True)
            seen: list[int] = []
            while len(seen) < count:
                batch = sub.next_batch(timeout=30)
                assert batch, f"{count} appends: only {seen} were notified"
                seen += [e.data["amount"] for e in batch]
            assert seen == list(range(count))


CONSUMER = """
import sys, time
import streamsource as ss
from streamsource.eventstore.subscriptions import PersistentSubscription
with ss.open_store(sys.argv[1]) as store:
    sub = PersistentSubscription(store, "g", category="order", lease_timeout=3.0, batch_size=5)
    taken = sub.fetch(timeout=30)
    print(*(m.event.data["n"] for m in taken), flush=True)
    time.sleep(600)  # holds its leases until it is killed
"""


@pytest.mark.slow
def test_consumer_processes_compete_and_a_killed_ones_messages_are_redelivered(
    store: ss.EventStore, pg_url: str
) -> None:
    for i in range(12):
        store.append(f"order-{i % 4}", [ss.NewEvent("Placed", {"n": i})])
    dying = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, pg_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert dying.stdout is not None
        held = [int(n) for n in dying.stdout.readline().split()]
        # A competing consumer while the other process holds its leases (3 s: long enough
        # for a loaded machine, short enough to wait for after the kill).
        with PersistentSubscription(store, "g", category="order", batch_size=5) as healthy:
            competing = healthy.fetch(timeout=30)
            for message in competing:
                healthy.ack(message)
        acked = [m.event.data["n"] for m in competing]
        assert held == [0, 1, 2, 3, 4] and acked == [5, 6, 7, 8, 9]  # no message to both
    finally:
        dying.kill()  # SIGKILL: no ack, no clean close; its leases run out after 3 s
        dying.wait()
        if dying.stdout is not None:
            dying.stdout.close()
    with PersistentSubscription(store, "g", category="order") as sub:
        seen: list[tuple[int, int]] = []
        while len(seen) < 7:
            batch = sub.fetch(timeout=30)
            assert batch, f"nothing redelivered after {seen}"
            for message in batch:
                seen.append((message.event.data["n"], message.attempt))
                sub.ack(message)
        assert sorted(seen) == [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (10, 1), (11, 1)]
        assert sub.in_flight() == 0


def test_consumers_starting_at_once_on_a_new_schema_all_get_the_group_tables(
    pg_url: str,
) -> None:
    # Concurrent CREATE TABLE IF NOT EXISTS on PostgreSQL fails all but one creator with
    # "type ... already exists" or a catalog unique violation; every consumer must start.
    async def start_consumers() -> int:
        stores = [await ss.open_async_store(pg_url) for _ in range(8)]
        try:
            opened = await asyncio.gather(
                *(open_async_group_tables(store.recorder) for store in stores)
            )
            found = []
            for tables in opened:
                async with tables.transaction("orders"):
                    found.append(await tables.group("orders"))
            return found.count(None)
        finally:
            for store in stores:
                await store.close()

    assert asyncio.run(start_consumers()) == 8


def test_operators_see_every_group_and_its_in_flight_messages(store: ss.EventStore) -> None:
    from .test_persistent import check_operator_overview

    check_operator_overview(store)
