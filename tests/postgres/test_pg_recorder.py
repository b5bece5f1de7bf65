"""PostgreSQL-specific behaviour beyond the conformance suite: wakeups, asyncio, stats."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

import streamsource as ss
from streamsource.eventstore.backends.postgres import AsyncPostgresRecorder, PostgresRecorder
from streamsource.eventstore.backends.postgres.notifier import CHANNEL

pytestmark = pytest.mark.postgres


def test_appends_wake_listeners_in_other_processes(pg_url: str, pg_server_url: str) -> None:
    with ss.open_store(pg_url) as store, psycopg.connect(pg_server_url, autocommit=True) as conn:
        assert isinstance(store.recorder, PostgresRecorder)
        schema = store.stats()["schema"]
        conn.execute(f"LISTEN {CHANNEL}")
        store.append("s-1", [ss.NewEvent("A", {})])
        payloads = [note.payload for note in conn.notifies(timeout=10, stop_after=1)]
        assert payloads == [schema]


def test_a_burst_of_appends_is_not_a_burst_of_notifications(
    pg_url: str, pg_server_url: str
) -> None:
    with ss.open_store(pg_url) as store, psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        for n in range(200):
            store.append("s-1", [ss.NewEvent("A", {"n": n})])
        received = list(conn.notifies(timeout=0.5))
        assert 1 <= len(received) < 200


async def test_asyncio_store_is_native_and_appends_concurrently(pg_url: str) -> None:
    store = await ss.open_async_store(pg_url, pool_size=4)
    try:
        assert isinstance(store.recorder, AsyncPostgresRecorder)

        async def writer(n: int) -> list[int]:
            positions = []
            for i in range(10):
                result = await store.append(f"w-{n}", [ss.NewEvent("E", {"i": i})])
                positions.append(result.position)
            return positions

        returned = await asyncio.gather(*(writer(n) for n in range(8)))
        log = [e async for e in store.read_all()]
        assert [e.position for e in log] == sorted(p for ps in returned for p in ps)
        for positions in returned:
            assert positions == sorted(positions)
        assert (await store.stats())["events"] == 80
    finally:
        await store.close()


def test_stats_describe_the_store_without_the_password(pg_url: str) -> None:
    with ss.open_store(pg_url, pool_size=3) as store:
        store.append("s-1", [ss.NewEvent("A", {}), ss.NewEvent("B", {})])
        stats = store.stats()
        assert stats["backend"] == "postgresql"
        assert stats["events"] == 2
        assert stats["pool_size"] == 3
        assert str(stats["server"]).startswith("postgresql://")
        assert ":" not in str(stats["server"]).split("@")[0].removeprefix("postgresql://")


def test_a_large_append_reads_back_in_pages(pg_url: str) -> None:
    with ss.open_store(pg_url) as store:
        batch = [ss.NewEvent("E", {"n": n}) for n in range(2500)]
        result = store.append("big-1", batch)
        assert result.version == 2499
        read = list(store.read_all())
        assert [e.id for e in read] == [e.id for e in batch]
        assert read[-1].position == result.position
        assert [e.version for e in store.read_stream("big-1", backwards=True, limit=3)] == [
            2499,
            2498,
            2497,
        ]


async def test_closing_an_async_store_announces_its_last_append_and_leaves_no_task(
    pg_url: str, pg_server_url: str
) -> None:
    with psycopg.connect(pg_server_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        store = await ss.open_async_store(pg_url)
        await store.append("s-1", [ss.NewEvent("A", {})])
        first = await asyncio.to_thread(lambda: list(listener.notifies(timeout=10, stop_after=1)))
        assert len(first) == 1
        # closed right after an append: the NOTIFY owed for it must still be sent
        await store.append("s-1", [ss.NewEvent("B", {})])
        await store.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        last = await asyncio.to_thread(lambda: list(listener.notifies(timeout=10, stop_after=1)))
        assert len(last) == 1
