"""Subscriptions on PostgreSQL: NOTIFY wakes subscribers of other processes; consumer groups."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import streamsource as ss
from streamsource.eventstore.subscriptions import PersistentSubscription, subscribe

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
            seen += [e.data["amount"] for e in sub.next_batch(timeout=120)]
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


def test_competing_consumers_and_parking_on_postgres(store: ss.EventStore) -> None:
    for i in range(60):
        store.append(f"order-{i % 4}", [ss.NewEvent("Placed", {"n": i})])
    handled: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        with PersistentSubscription(
            store, "ship", category="order", batch_size=4, max_attempts=2
        ) as sub:
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
    with PersistentSubscription(store, "ship", category="order") as sub:
        (parked,) = sub.parked()
        assert parked.data == {"n": 7} and parked.metadata["$error"] == "bad address"
        assert sub.in_flight() == 0
