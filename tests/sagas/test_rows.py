"""Saga rows: two transitions from one version cannot both commit (optimistic concurrency,
like an aggregate's expected version)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

import streamsource as ss
from streamsource.eventstore.database import ensure_tables
from streamsource.sagas import SagaConflict
from streamsource.sagas.core import Start, new_state, transition
from streamsource.sagas.tables import SagaRows, create_statements

from .mall import PlaceOrder


def saved_saga(store: Any) -> SagaRows:
    database = store.recorder.database
    ensure_tables(database, *create_statements(database.dialect))
    rows = SagaRows(database.dialect)
    state, _ = transition(
        PlaceOrder,
        new_state(PlaceOrder, "s-1", "o-1", {"order": "o-1", "quantity": 1}),
        Start(),
        0.0,
    )
    with store.transaction() as tx:
        assert rows.create(tx, "sagas.orders", state)
    return rows


def test_a_second_update_from_the_same_version_conflicts(open_store: Callable[..., Any]) -> None:
    store = open_store()
    rows = saved_saga(store)
    with store.transaction() as tx:
        seen = rows.load(tx, "s-1")
    assert seen is not None and seen.version == 1
    first = msgspec.structs.replace(seen.state, data={"by": "first"})
    second = msgspec.structs.replace(seen.state, data={"by": "second"})
    with store.transaction() as tx:
        assert rows.save(tx, first, seen.version) == 2
    with (
        pytest.raises(SagaConflict, match="moved past version 1") as raised,
        store.transaction() as tx,
    ):
        rows.save(tx, second, seen.version)
    assert raised.value.retriable
    with store.transaction() as tx:
        now = rows.load(tx, "s-1")
    assert now is not None and now.state.data == {"by": "first"} and now.version == 2


@pytest.mark.postgres
def test_two_transactions_at_once_one_wins(pg_url: str) -> None:
    """PostgreSQL runs both transactions truly at once (SQLite takes them in turn)."""
    with ss.open_store(pg_url) as store:
        two_at_once(store)


def two_at_once(store: Any) -> None:
    rows = saved_saga(store)
    both_loaded = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def reply(who: str) -> None:
        try:
            with store.transaction() as tx:
                seen = rows.load(tx, "s-1")
                assert seen is not None
                both_loaded.wait()
                rows.save(tx, msgspec.structs.replace(seen.state, data={"by": who}), seen.version)
            outcomes.append("saved")
        except SagaConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=reply, args=(who,)) for who in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["conflict", "saved"]
