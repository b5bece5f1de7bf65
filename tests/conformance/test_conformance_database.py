"""The database a backend hands out: declared, with its dialect, and one atomic transaction
for appended events and the caller's own rows (``store.transaction()``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of
from streamsource.eventstore.database import POSTGRESQL, SQLITE

DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL}


def _sql_store(store: Any) -> Any:
    """The store, with a table ``notes`` of our own beside its events; None for a backend
    without a SQL database, after checking that it refuses transactions clearly."""
    if store.recorder.database is None:
        with pytest.raises(ss.NotSupportedError, match="backend has none"), store.transaction():
            pass
        return None
    with store.transaction() as tx:
        tx.execute(f"CREATE TABLE IF NOT EXISTS notes (k TEXT PRIMARY KEY, v {tx.dialect.bigint})")
    return store


def _notes(tx: Any) -> str:
    return str(tx.dialect.insert_or_ignore("notes", ("k", "v")))


def _rows(store: Any) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return sorted(tuple(row) for row in tx.execute("SELECT k, v FROM notes"))


def test_backend_declares_its_database(store: Any) -> None:
    recorder = store.recorder
    assert recorder.backend in ("memory", "sqlite", "postgresql")
    database = recorder.database
    if recorder.backend == "memory":
        assert database is None
        with (
            pytest.raises(ss.NotSupportedError, match="memory backend has none"),
            store.transaction(),
        ):
            pass
    else:
        assert database.dialect == DIALECTS[recorder.backend]
        assert database.where


def test_append_and_own_rows_commit_together(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    with store.transaction() as tx:
        insert = _notes(tx)
        first = tx.append("order-1", events("Placed", "Paid"), expected_version=ss.NO_STREAM)
        tx.execute(insert, ("order-1", first.position))
    assert first.version == 1
    assert [e.type for e in store.read_stream("order-1")] == ["Placed", "Paid"]
    assert _rows(store) == [("order-1", first.position)]
    assert store.head_position() == first.position


def test_an_exception_rolls_back_events_and_rows(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    store.append("order-1", events("Placed"))
    before = log_of(store)
    with pytest.raises(RuntimeError, match="handler broke"), store.transaction() as tx:
        tx.append("order-1", events("Paid", "Shipped"), expected_version=0)
        tx.execute(_notes(tx), ("order-1", 1))
        raise RuntimeError("handler broke")
    assert log_of(store) == before
    assert _rows(store) == []
    # and the store goes on as before
    assert store.append("order-1", events("Paid"), expected_version=0).version == 1


def test_wrong_expected_version_inside_rolls_back_everything(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    store.append("order-1", events("Placed"))
    before = log_of(store)
    with pytest.raises(ss.WrongExpectedVersion) as raised, store.transaction() as tx:
        tx.append("order-1", events("Paid"), expected_version=5)
        tx.execute(_notes(tx), ("x", 1))
    assert raised.value.actual == 0
    assert log_of(store) == before
    assert _rows(store) == []


def test_a_swallowed_failure_still_rolls_back(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    with pytest.raises(ss.InterfaceError, match="rolled back"), store.transaction() as tx:
        tx.append("invoice-1", events("Issued"))
        try:
            tx.execute("INSERT INTO no_such_table VALUES (1)")
        except ss.DatabaseError as exc:
            assert "no_such_table" in str(exc)
        with pytest.raises(ss.InterfaceError, match="the transaction failed"):
            tx.execute(_notes(tx), ("x", 1))
    assert log_of(store) == []
    assert _rows(store) == []


def test_a_tombstone_is_checked_inside(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    store.append("order-1", events("Placed"))
    store.delete_stream("order-1", hard=True)
    with pytest.raises(ss.StreamDeleted), store.transaction() as tx:
        tx.append("order-1", events("Paid"))


def test_plain_appends_of_other_threads_go_on_around_transactions(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                store.append(
                    f"plain-{n}", events("Tick"), expected_version=i - 1 if i else ss.NO_STREAM
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for i in range(10):
        with store.transaction() as tx:
            tx.append("counted", events("Counted"), expected_version=i - 1 if i else ss.NO_STREAM)
            tx.execute(_notes(tx), (f"k{i}", i))
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert errors == []
    assert [store.stream_version(f"plain-{n}") for n in range(4)] == [19] * 4
    assert store.stream_version("counted") == 9
    assert len(_rows(store)) == 10


def test_store_append_inside_a_transaction_is_refused_not_hung(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    if not isinstance(store, ss.EventStore):  # the shim runs each call in a task of its own

        async def in_one_task() -> None:
            async with store.async_store.transaction() as tx:
                await tx.append("a-1", events("One"))
                await store.async_store.append("a-1", events("Two"))

        with pytest.raises(ss.InterfaceError, match="inside a transaction"):
            store._loop.run(in_one_task())
        assert log_of(store) == []
        return
    with pytest.raises(ss.InterfaceError, match="inside a transaction"), store.transaction() as tx:
        tx.append("a-1", events("One"))
        store.append("a-1", events("Two"))
    assert log_of(store) == []


def test_several_appends_and_writes_in_any_order_where_the_backend_allows(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    if store.recorder.backend == "postgresql":
        # positions follow transaction ids: an append must be the transaction's first write
        with pytest.raises(ss.NotSupportedError, match="append first"), store.transaction() as tx:
            tx.execute(_notes(tx), ("k", 1))
            tx.append("order-1", events("Placed"))
        assert log_of(store) == []
        assert _rows(store) == []
        return
    with store.transaction() as tx:
        tx.execute(_notes(tx), ("k", 1))
        tx.append("order-1", events("Placed"))
        tx.append("invoice-1", events("Issued"))
    assert [e.stream for e in store.read_all()] == ["order-1", "invoice-1"]
    assert _rows(store) == [("k", 1)]


def test_a_committed_transaction_is_in_the_log_at_once(store: Any) -> None:
    """Read-your-writes: the log a store reads right after its transaction committed holds
    that transaction's appends, as after a plain append (a consumer draining what it just
    sent, a transport delivering a reply it just recorded)."""
    store = _sql_store(store)
    if store is None:
        return
    for n in range(50):
        with store.transaction() as tx:
            [result] = tx.append_many([(f"order-{n}", events("Placed"), ss.NO_STREAM)])
        assert [e.stream for e in store.read_all(after=result.position - 1)] == [f"order-{n}"]
        assert store.head_position() == result.position
