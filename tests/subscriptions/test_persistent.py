"""Persistent subscriptions: competing consumers, ack/nack, parking, replay, dead consumers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import streamsource as ss
from deadline import Deadline
from streamsource.eventstore.subscriptions import (
    AsyncPersistentSubscription,
    Message,
    PersistentSubscription,
    subscribe,
)

from .conftest import BlockingPersistent, LoopThread, Persistent, deposit, wait_until_waiting


def orders(store: ss.EventStore, count: int) -> None:
    for i in range(count):
        store.append(f"order-{i % 5}", [ss.NewEvent("Placed", {"n": i})])
    store.append("customer-1", [ss.NewEvent("Registered", {})])  # another category


def test_messages_are_delivered_and_acked_once(
    store: ss.EventStore, persistent: Persistent
) -> None:
    orders(store, 12)
    with persistent(store, "billing", category="order", batch_size=5) as sub:
        first = sub.fetch()
        assert [m.event.data["n"] for m in first] == [0, 1, 2, 3, 4]
        assert all(m.attempt == 1 for m in first)
        for message in first:
            sub.ack(message)
        rest = sub.fetch(20)
        assert [m.event.data["n"] for m in rest] == list(range(5, 12))
        for message in rest:
            sub.ack(message)
        assert sub.fetch() == [] and sub.in_flight() == 0
    with persistent(store, "billing", category="order") as again:
        assert again.fetch() == []  # the group's checkpoint is kept in the store
        store.append("order-9", [ss.NewEvent("Placed", {"n": 12})])
        assert [m.event.data["n"] for m in again.fetch(timeout=10)] == [12]


def test_competing_consumers_share_the_work_without_overlap(
    store: ss.EventStore, persistent: Persistent
) -> None:
    orders(store, 400)
    handled: list[list[int]] = [[], [], []]

    def consume(index: int) -> None:
        with persistent(store, "ship", category="order", batch_size=7) as sub:
            while True:
                batch = sub.fetch(timeout=0.2)
                if not batch:
                    return
                for message in batch:
                    handled[index].append(message.event.data["n"])
                    sub.ack(message)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [n for share in handled for n in share]
    assert sorted(everything) == list(range(400))  # each exactly once


def test_a_nacked_message_is_retried_then_parked_with_its_error(
    store: ss.EventStore, persistent: Persistent
) -> None:
    orders(store, 2)
    with persistent(store, "mail", category="order", max_attempts=3) as sub:
        attempts = []
        deadline = Deadline(60, "three attempts at the failing message")
        while True:
            deadline.check()
            batch = sub.fetch(timeout=5)
            for message in batch:
                if message.event.data["n"] == 1:
                    attempts.append(message.attempt)
                    sub.nack(message, ValueError("smtp down"))
                else:
                    sub.ack(message)
            if len(attempts) == 3:
                break
        assert attempts == [1, 2, 3]
        assert sub.fetch(timeout=0) == [] and sub.in_flight() == 0
        (parked,) = sub.parked()
        assert parked.stream == "$parked-mail" and parked.data == {"n": 1}
        assert parked.metadata["$error"] == "ValueError: smtp down"
        assert parked.metadata["$attempts"] == 3
        assert parked.metadata["$original_stream"] == "order-1"

        assert sub.replay_parked() == 1
        assert sub.replay_parked() == 0  # each parked message is replayed once
        (again,) = sub.fetch(timeout=5)
        assert (again.event.data, again.attempt, again.replays) == ({"n": 1}, 1, 1)
        sub.nack(again, "still down", park=True)
        assert [p.metadata["$error"] for p in sub.parked()] == [
            "ValueError: smtp down",
            "still down",
        ]


def test_messages_of_a_consumer_that_stops_acking_are_redelivered(
    store: ss.EventStore, persistent: Persistent
) -> None:
    orders(store, 3)
    lazy = persistent(store, "g", category="order", lease_timeout=0.2)
    taken = lazy.fetch()
    assert len(taken) == 3
    lazy.close()  # never acks: its leases run out
    with persistent(store, "g", category="order", lease_timeout=5) as other:
        redelivered: list[Message] = []
        while len(redelivered) < 3:
            redelivered += other.fetch(timeout=10)
        assert [(m.event.data["n"], m.attempt) for m in redelivered] == [(0, 2), (1, 2), (2, 2)]


def test_a_group_is_bound_to_its_category(store: ss.EventStore, persistent: Persistent) -> None:
    persistent(store, "g", category="order").close()
    with pytest.raises(ss.ProgrammingError, match="consumes category 'order'"):
        persistent(store, "g", category="customer")
    with pytest.raises(ss.ProgrammingError, match="max_attempts"):
        persistent(store, "h", category="order", max_attempts=0)


def test_a_consumer_blocked_in_iteration_is_woken_by_an_append(
    store: ss.EventStore, persistent: Persistent
) -> None:
    with persistent(store, "live", category="account", poll_interval=60) as sub:
        got: list[Message] = []

        def consume() -> None:
            for message in sub:
                got.append(message)
                sub.ack(message)
                return

        consumer = threading.Thread(target=consume)
        consumer.start()
        wait_until_waiting(store)  # found nothing; its next poll is a minute away
        deposit(store, "account-1", 5)
        consumer.join(30)
        assert not consumer.is_alive() and got[0].event.data == {"amount": 5}


CONSUMER = """
import sys
import streamsource as ss
from streamsource.eventstore.subscriptions import PersistentSubscription
with ss.open_store(sys.argv[1]) as store:
    sub = PersistentSubscription(store, "g", category="order", lease_timeout=0.5, batch_size=5)
    taken = sub.fetch(timeout=30)
    print(len(taken), flush=True)
    if sys.argv[2] == "hang":
        import time; time.sleep(600)
    for message in taken:
        sub.ack(message)
"""


@pytest.mark.slow
def test_a_killed_consumer_process_has_its_messages_redelivered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    with ss.open_store(url) as store:
        orders(store, 8)
    dying = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, url, "hang"], stdout=subprocess.PIPE, text=True
    )
    assert dying.stdout is not None and dying.stdout.readline().strip() == "5"
    os.kill(dying.pid, signal.SIGKILL)
    dying.wait()
    dying.stdout.close()
    with ss.open_store(url) as store, PersistentSubscription(store, "g", category="order") as sub:
        seen: list[tuple[int, int]] = []
        while len(seen) < 8:
            for message in sub.fetch(timeout=10):
                seen.append((message.event.data["n"], message.attempt))
                sub.ack(message)
        assert sorted(seen) == [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 1), (6, 1), (7, 1)]


def test_all_leaves_out_parked_messages_unless_system_streams_are_asked_for(
    store: ss.EventStore, persistent: Persistent
) -> None:
    for i in range(3):
        store.append(f"order-{i}", [ss.NewEvent("Placed", {"n": i})])
    with persistent(store, "ship", category="order", max_attempts=1) as group:
        for message in group.fetch():
            if message.event.data["n"] == 1:
                group.nack(message, "bad address")  # parked: appended to $parked-ship
            else:
                group.ack(message)
    # more than a page of parked events in a row must not look like the head of the log
    for i in range(5):
        store.append(f"$parked-other-{i}", [ss.NewEvent("Placed", {"n": 100 + i})])
    store.append("order-3", [ss.NewEvent("Placed", {"n": 3})])

    with subscribe(store, page_size=2) as everything:
        seen: list[int] = []
        while batch := everything.read_batch():  # empty only at the head
            seen += [e.data["n"] for e in batch]
        assert seen == [0, 1, 2, 3]
        assert everything.checkpoint == store.head_position()
    with subscribe(store, include_system=True) as with_system:
        streams = [e.stream for e in with_system.next_batch(timeout=0)]
        assert streams.count("$parked-ship") == 1 and len(streams) == 10
    with subscribe(store, category="$parked") as parked:
        assert len(parked.next_batch(timeout=0)) == 6


def test_sync_and_asyncio_consumers_of_one_group_share_the_work(
    store: ss.EventStore, async_store: ss.AsyncEventStore, loop_thread: LoopThread
) -> None:
    orders(store, 120)
    handled: list[list[int]] = [[], []]
    subscriptions: list[PersistentSubscription | BlockingPersistent] = [
        PersistentSubscription(store, "mixed", category="order", batch_size=5),
        BlockingPersistent(
            AsyncPersistentSubscription(async_store, "mixed", category="order", batch_size=5),
            loop_thread,
        ),
    ]

    def consume(index: int) -> None:
        with subscriptions[index] as sub:
            while batch := sub.fetch(timeout=0.2):
                for message in batch:
                    handled[index].append(message.event.data["n"])
                    sub.ack(message)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(handled[0] + handled[1]) == list(range(120))  # each exactly once


def check_operator_overview(store: ss.EventStore) -> None:
    """What an operator's console reads of the groups: each group's row with its in-flight
    count, and the in-flight messages with their attempts, holder and last error."""
    from streamsource.eventstore.subscriptions.group_tables import open_group_tables

    orders(store, 6)
    with PersistentSubscription(store, "billing", category="order", retry_delay=3600) as sub:
        first, second, third = sub.fetch(3)
        sub.ack(first)
        sub.nack(second, "bank timed out")
        with PersistentSubscription(store, "audit", category="order", consumer="auditor") as other:
            assert other.fetch(1)
        tables = open_group_tables(store.recorder)
        try:
            overview = {g.name: g for g in tables.groups()}
            with tables.transaction("billing"):
                entries = tables.in_flight_entries("billing", 10)
        finally:
            tables.close()
    assert [(g.name, g.category, g.in_flight) for g in overview.values()] == [
        ("audit", "order", 1),
        ("billing", "order", 2),
    ]
    assert overview["billing"].checkpoint == third.event.position
    assert [(e.position, e.attempts, e.consumer) for e in entries] == [
        (second.event.position, 1, None),
        (third.event.position, 1, sub.consumer),
    ]
    if store.recorder.database is not None:  # the memory tables keep no error text
        assert [e.last_error for e in entries] == ["bank timed out", None]


def test_operators_see_every_group_and_its_in_flight_messages(store: ss.EventStore) -> None:
    check_operator_overview(store)
