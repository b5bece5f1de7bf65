"""Faults: the server going away mid-append, an exhausted pool, bad credentials, no server.

These tests stop and start a server of their own (durable settings, password auth), never
the session's shared one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import streamsource as ss
from deadline import wait_until
from pg_server import PgServer, ServerUnavailable, free_port
from streamsource.eventstore.backends.postgres import (
    AuthenticationFailed,
    CannotConnect,
    ConnectionLost,
    PoolExhausted,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    try:  # even with STREAMSOURCE_TEST_PG_URL: these tests stop and start their server
        own = PgServer.start(password=PASSWORD)
    except ServerUnavailable as exc:
        pytest.skip(f"the fault tests need local PostgreSQL binaries: {exc}")
    try:
        yield own
    finally:
        own.destroy()


@pytest.fixture
def url(server: PgServer) -> str:
    if not (server.data_dir / "postmaster.pid").exists():
        server.start_again()  # a previous test may have left it stopped
    return f"{server.url}?schema=f_{uuid.uuid4().hex[:16]}"


def _big_batch(count: int) -> list[ss.NewEvent]:
    filler = "x" * 400
    return [ss.NewEvent("Filled", {"n": n, "filler": filler}) for n in range(count)]


def _wait_until_appending(server: PgServer) -> None:
    """Return once a session of the server is running append_events."""
    with psycopg.connect(server.url, autocommit=True) as watcher:

        def appending() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE state = 'active' AND query LIKE '%%append_%%' AND pid <> pg_backend_pid()"
            ).fetchone()
            return bool(row and row[0])

        wait_until(appending, 10, "the append to start", interval=0.005)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_stopping_mid_append_leaves_all_or_nothing(
    server: PgServer, url: str, mode: str
) -> None:
    batch = _big_batch(20_000)
    with ss.open_store(url, pool_timeout=2) as store:
        store.append("before-1", [ss.NewEvent("A", {})])
        outcome: list[object] = []

        def append() -> None:
            try:
                outcome.append(store.append("big-1", batch, ss.NO_STREAM))
            except Exception as exc:
                outcome.append(exc)

        writer = threading.Thread(target=append)
        writer.start()
        _wait_until_appending(server)
        server.stop(mode)
        writer.join(timeout=120)
        (error,) = outcome
        assert isinstance(error, ss.OperationalError), error
        assert isinstance(error, ConnectionLost)
        assert error.retriable
        assert f"127.0.0.1:{server.port}" in str(error)
        assert "retry" in str(error)

        # while the server is down every call fails clearly (after pool_timeout)
        with pytest.raises(CannotConnect, match=f"127.0.0.1:{server.port}"):
            store.head_position()

        server.start_again()
        stored = list(store.read_stream("big-1"))
        assert len(stored) in (0, len(batch)), "a half-written batch"
        # the retry completes it exactly once, whether or not the first attempt committed
        result = store.append("big-1", batch, ss.NO_STREAM)
        assert result.version == len(batch) - 1
        assert [e.id for e in store.read_stream("big-1")] == [e.id for e in batch]
        assert [e.stream for e in store.read_all()].count("big-1") == len(batch)


def test_an_exhausted_pool_waits_then_fails_clearly(server: PgServer, url: str) -> None:
    with ss.open_store(url, pool_size=2, pool_timeout=0.5) as store:
        store.append("hot-1", [ss.NewEvent("A", {})])
        schema = store.stats()["schema"]
        results: list[object] = []
        with psycopg.connect(server.url) as holder:
            # hold the stream's lock: both pooled connections end up waiting behind it
            holder.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s || '.' || %s, 0))",
                (schema, "hot-1"),
            )

            def append(n: int) -> None:
                results.append(store.append("hot-1", [ss.NewEvent("B", {"n": n})]))

            writers = [threading.Thread(target=append, args=(n,)) for n in range(2)]
            for writer in writers:
                writer.start()
            _wait_for_lock_waiters(server, 2)
            with pytest.raises(PoolExhausted) as caught:
                store.head_position()
            assert isinstance(caught.value, ss.OperationalError)
            assert caught.value.retriable
            assert "pool_timeout=0.5" in str(caught.value)
            assert f"127.0.0.1:{server.port}" in str(caught.value)
            holder.rollback()  # let them through
        for writer in writers:
            writer.join(timeout=30)
        assert sorted(r.version for r in results) == [1, 2]  # type: ignore[attr-defined]
        assert store.head_position() > 0


def _wait_for_lock_waiters(server: PgServer, count: int) -> None:
    with psycopg.connect(server.url, autocommit=True) as watcher:
        for _ in range(2000):
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0] >= count:
                return
            time.sleep(0.005)
    raise AssertionError("the appends never blocked")


def test_wrong_password_fails_at_open_naming_the_host(server: PgServer, url: str) -> None:
    wrong = url.replace(PASSWORD, "not-the-password")
    with pytest.raises(AuthenticationFailed) as caught:
        ss.open_store(wrong)
    message = str(caught.value)
    assert f"127.0.0.1:{server.port}" in message
    assert "not-the-password" not in message
    assert not caught.value.retriable
    assert isinstance(caught.value, ss.OperationalError)


async def test_wrong_password_fails_the_async_open_too(server: PgServer, url: str) -> None:
    with pytest.raises(AuthenticationFailed, match=f"127.0.0.1:{server.port}"):
        await ss.open_async_store(url.replace(PASSWORD, "nope"))


def test_no_server_listening_fails_fast_naming_the_host() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(CannotConnect) as caught:
        ss.open_store(f"postgresql://someone:pw@127.0.0.1:{port}/db?connect_timeout=2")
    assert isinstance(caught.value, ss.OperationalError)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "pw" not in str(caught.value).replace("postgresql", "")


def test_a_one_event_append_on_a_connection_the_server_dropped(server: PgServer, url: str) -> None:
    with ss.open_store(url, pool_timeout=2) as store:
        store.append("one-1", [ss.NewEvent("A", {})])  # leaves a connection in the pool
        server.stop("fast")
        with pytest.raises(ss.OperationalError, match=f"127.0.0.1:{server.port}") as caught:
            store.append("one-1", [ss.NewEvent("B", {})])
        assert isinstance(caught.value, ConnectionLost | CannotConnect)
        assert caught.value.retriable
        server.start_again()
        event = ss.NewEvent("C", {})
        first = store.append("one-1", [event], 0)
        assert store.append("one-1", [event], 0) == first  # a retry: the original result
        with pytest.raises(ss.WrongExpectedVersion):
            store.append("one-1", [ss.NewEvent("D", {})], 0)
        assert [e.type for e in store.read_stream("one-1")] == ["A", "C"]
