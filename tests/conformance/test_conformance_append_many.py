"""``tx.append_many``: several streams appended in one transaction, each with its own
expected version, committing with the rows written after them or not at all."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of
from streamsource.eventstore.appended import signal_for


def _sql_store(store: Any) -> Any:
    """The store with a ``notes`` table beside its events; None for a backend without SQL
    (after checking that it refuses a transaction clearly)."""
    if store.recorder.database is None:
        with pytest.raises(ss.NotSupportedError, match="backend has none"), store.transaction():
            pass
        return None
    with store.transaction() as tx:
        tx.execute(f"CREATE TABLE IF NOT EXISTS notes (k TEXT PRIMARY KEY, v {tx.dialect.bigint})")
    return store


def _note(tx: Any, key: str, value: int) -> None:
    tx.execute(tx.dialect.insert_or_ignore("notes", ("k", "v")), (key, value))


def _notes(store: Any) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return sorted(tuple(row) for row in tx.execute("SELECT k, v FROM notes"))


def test_appends_to_several_streams_and_rows_after_them_commit_together(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    store.append("account-1", events("Opened"))
    with store.transaction() as tx:
        results = tx.append_many(
            [
                ("account-1", events("Withdrawn"), 0),
                ("account-2", events("Opened", "Deposited"), ss.NO_STREAM),
                ("transfer-9", events("Completed"), ss.ANY),
            ]
        )
        _note(tx, "transfer-9", results[-1].position)
    assert [r.version for r in results] == [1, 1, 0]
    assert [e.type for e in store.read_stream("account-1")] == ["Opened", "Withdrawn"]
    assert [e.type for e in store.read_stream("account-2")] == ["Opened", "Deposited"]
    assert [e.type for e in store.read_stream("transfer-9")] == ["Completed"]
    assert _notes(store) == [("transfer-9", results[-1].position)]
    # global order: the appends' events in the order given, at consecutive positions
    log = log_of(store)[1:]
    assert [(s, v, t) for s, v, _, t in log] == [
        ("account-1", 1, "Withdrawn"),
        ("account-2", 0, "Opened"),
        ("account-2", 1, "Deposited"),
        ("transfer-9", 0, "Completed"),
    ]
    positions = [p for _, _, p, _ in log]
    assert positions == list(range(positions[0], positions[0] + 4))
    assert [r.position for r in results] == [positions[0], positions[2], positions[3]]
    assert store.head_position() == positions[-1]


def test_a_conflict_in_the_second_stream_leaves_nothing(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    store.append("order-1", events("Placed"))
    store.append("stock-1", events("Received", "Received"))
    before = log_of(store)
    with pytest.raises(ss.WrongExpectedVersion) as raised, store.transaction() as tx:
        tx.append_many([("order-1", events("Paid"), 0), ("stock-1", events("Reserved"), 0)])
        _note(tx, "never", 1)
    assert raised.value.stream == "stock-1"
    assert raised.value.expected == 0
    assert raised.value.actual == 1
    assert "stock-1" in str(raised.value)
    assert log_of(store) == before
    assert _notes(store) == []
    # the store goes on, and the same appends with the right versions succeed
    with store.transaction() as tx:
        tx.append_many([("order-1", events("Paid"), 0), ("stock-1", events("Reserved"), 1)])
    assert store.stream_version("order-1") == 1
    assert store.stream_version("stock-1") == 2


def test_a_tombstoned_stream_fails_the_whole_transaction(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    store.append("cart-7", events("Created"))
    store.delete_stream("cart-7", hard=True)
    before = log_of(store)
    with pytest.raises(ss.StreamDeleted) as raised, store.transaction() as tx:
        tx.append_many(
            [("order-7", events("Placed"), ss.ANY), ("cart-7", events("Emptied"), ss.ANY)]
        )
    assert raised.value.stream == "cart-7"
    assert log_of(store) == before


def test_an_event_id_stored_before_fails_the_whole_transaction(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    reused = uuid.uuid4()
    store.append("order-1", [ss.NewEvent("Placed", {}, id=reused)])
    before = log_of(store)
    with pytest.raises(ss.DuplicateEventId) as raised, store.transaction() as tx:
        tx.append_many(
            [
                ("order-2", events("Placed"), ss.NO_STREAM),
                ("order-3", [ss.NewEvent("Placed", {}, id=reused)], ss.NO_STREAM),
            ]
        )
    assert raised.value.event_id == reused
    assert log_of(store) == before


def test_one_id_in_two_appends_is_refused_before_anything_is_sent(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    twice = uuid.uuid4()
    with pytest.raises(ss.DuplicateEventId, match="append 1"), store.transaction() as tx:
        tx.append_many(
            [
                ("a-1", [ss.NewEvent("A", {}, id=twice)], ss.ANY),
                ("b-1", [ss.NewEvent("B", {}, id=twice)], ss.ANY),
            ]
        )
    assert log_of(store) == []


def test_the_same_stream_twice_sees_its_own_first_append(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    with store.transaction() as tx:
        results = tx.append_many(
            [
                ("ledger-1", events("Opened"), ss.NO_STREAM),
                ("ledger-1", events("Credited"), 0),
            ]
        )
    assert [r.version for r in results] == [0, 1]
    assert [e.type for e in store.read_stream("ledger-1")] == ["Opened", "Credited"]
    with pytest.raises(ss.WrongExpectedVersion) as raised, store.transaction() as tx:
        tx.append_many([("ledger-1", events("Debited"), 1), ("ledger-1", events("Debited"), 1)])
    assert raised.value.stream == "ledger-1"
    assert raised.value.actual == 2
    assert store.stream_version("ledger-1") == 1


def test_subscribers_wake_once_per_transaction(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    signal = signal_for(store.recorder)
    seen = signal.seq
    with store.transaction() as tx:
        tx.append_many([("a-1", events("A"), ss.ANY), ("b-1", events("B", "C"), ss.ANY)])
        assert signal.seq == seen  # not before the commit
    assert signal.seq == seen + 1
    assert [e.stream for e in store.read_all()] == ["a-1", "b-1", "b-1"]


def test_bad_input_is_refused_naming_the_append(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    with pytest.raises(ss.ProgrammingError, match="append 2"), store.transaction() as tx:
        tx.append_many([("a-1", events("A"), ss.ANY), ("b-1", events("B"))])
    with pytest.raises(ss.ProgrammingError, match="list of"), store.transaction() as tx:
        tx.append_many(("a-1", events("A"), ss.ANY))
    with pytest.raises(ss.InvalidExpectedVersion, match="'b-1'"), store.transaction() as tx:
        tx.append_many([("a-1", events("A"), ss.ANY), ("b-1", events("B"), -7)])
    with pytest.raises(ss.InvalidStreamName), store.transaction() as tx:
        tx.append_many([("", events("A"), ss.ANY)])
    assert log_of(store) == []


def test_appends_first_then_other_writes(store: Any) -> None:
    store = _sql_store(store)
    if store is None:
        return
    if store.recorder.backend != "postgresql":  # SQLite: any order, any number of appends
        with store.transaction() as tx:
            _note(tx, "k", 1)
            tx.append_many([("a-1", events("A"), ss.ANY)])
            tx.append_many([("b-1", events("B"), ss.ANY)])
        assert [e.stream for e in store.read_all()] == ["a-1", "b-1"]
        return
    for first in ("write", "append"):
        with pytest.raises(ss.NotSupportedError, match="append first"), store.transaction() as tx:
            if first == "write":
                _note(tx, "k", 1)
            else:
                tx.append("c-1", events("C"))
            tx.append_many([("a-1", events("A"), ss.ANY)])
    assert log_of(store) == []
    assert _notes(store) == []


def test_concurrent_transactions_over_shared_streams_all_commit(store: Any) -> None:
    """Each transaction locks its streams; two that share streams in opposite orders wait
    for each other, and never deadlock."""
    store = _sql_store(store)
    if store is None:
        return
    errors: list[BaseException] = []
    rounds = 10

    def transfer(n: int) -> None:
        names = ["pot-a", "pot-b", f"own-{n}"]
        if n % 2:
            names.reverse()
        try:
            for i in range(rounds):
                with store.transaction() as tx:
                    tx.append_many([(name, events("Moved"), ss.ANY) for name in names])
                    _note(tx, f"{n}-{i}", i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=transfer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert errors == []
    assert store.stream_version("pot-a") == store.stream_version("pot-b") == 4 * rounds - 1
    assert len(_notes(store)) == 4 * rounds
    # every transaction's three events sit together in the log
    log = log_of(store)
    for start in range(0, len(log), 3):
        streams = {s for s, _, _, _ in log[start : start + 3]}
        assert {"pot-a", "pot-b"} <= streams
