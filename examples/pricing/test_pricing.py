"""Price history: who/why metadata, "price at time T and why", and the CRUD contrast."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import streamsource as ss
from examples.pricing.app import Catalog, CrudProducts, InvalidPrice, run_demo


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ss.EventStore]:
    with ss.open_store(f"sqlite:///{tmp_path}/pricing.db") as opened:
        yield opened


def test_every_price_is_kept_with_who_and_why(store: ss.EventStore) -> None:
    catalog = Catalog(store)
    catalog.list_product("p1", "Kettle", 2500, by="alice")
    catalog.change_price("p1", 2900, by="bob", reason="supplier raised cost")
    catalog.change_price("p1", 1900, by="carol", reason="clearance")
    rows = [(v, price, who, why) for v, _t, price, who, why in catalog.history("p1")]
    assert rows == [
        (0, 2500, "alice", "listed"),
        (1, 2900, "bob", "supplier raised cost"),
        (2, 1900, "carol", "clearance"),
    ]
    changed = list(store.read_stream("product-p1"))[1]
    assert changed.data == {"old_price": 2500, "new_price": 2900}
    assert changed.metadata["changed_by"] == "bob"


def test_the_price_at_a_time_and_why_it_changed(store: ss.EventStore) -> None:
    catalog = Catalog(store)
    catalog.list_product("p1", "Kettle", 2500, by="alice")
    catalog.change_price("p1", 2900, by="bob", reason="supplier raised cost")
    catalog.change_price("p1", 1900, by="carol", reason="clearance")
    times = [t for _v, t, _p, _w, _y in catalog.history("p1")]

    at_second = catalog.price_at("p1", times[1])
    assert (at_second.price, at_second.changed_by, at_second.reason) == (
        2900,
        "bob",
        "supplier raised cost",
    )
    assert at_second.since == times[1] and at_second.version == 1

    later = catalog.price_at("p1", times[2] + timedelta(days=1))
    assert (later.price, later.reason) == (1900, "clearance")
    with pytest.raises(ss.AggregateNotFound):
        catalog.price_at("p1", times[0] - timedelta(seconds=1))


def test_a_crud_row_keeps_only_the_current_price(tmp_path: Path) -> None:
    crud = CrudProducts(tmp_path / "crud.db")
    try:
        crud.list_product("p1", "Kettle", 2500)
        crud.change_price("p1", 2900)
        crud.change_price("p1", 1900)
        assert crud.row("p1") == ("p1", "Kettle", 1900)  # 2500, 2900, who and why: gone
    finally:
        crud.close()


def test_invalid_prices_are_refused(store: ss.EventStore) -> None:
    catalog = Catalog(store)
    catalog.list_product("p1", "Kettle", 2500, by="alice")
    with pytest.raises(InvalidPrice):
        catalog.change_price("p1", -1, by="eve", reason="oops")
    with pytest.raises(InvalidPrice, match="already costs 2500"):
        catalog.change_price("p1", 2500, by="eve", reason="no change")
    assert store.stream_version("product-p1") == 0


def test_run_demo_answers_the_question(store: ss.EventStore, tmp_path: Path) -> None:
    lines: list[str] = []
    tables: list[tuple[str, list[str], list[tuple[object, ...]]]] = []

    class Out:
        def text(self, line: str) -> None:
            lines.append(line)

        def table(self, title: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
            tables.append((title, columns, [tuple(r) for r in rows]))

    run_demo(store, Out(), "demo", tmp_path / "crud.db")
    assert tables[0][2] == [("demo", "Espresso machine", 21900)]
    assert len(tables[1][2]) == 4
    assert "17900, set by carol because 'black friday promotion'" in lines[-1]
