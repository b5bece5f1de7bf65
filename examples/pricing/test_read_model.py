"""The price history view: the same answers as the time-travel queries, by SQL."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import streamsource as ss
from examples.pricing.app import Catalog
from examples.pricing.read_model import PriceHistory, current_price, history, price_at
from streamsource.eventstore.projections import ProjectionRunner


def test_the_view_answers_price_at_time_t_and_why(tmp_path: Path) -> None:
    with ss.open_store(f"sqlite:///{tmp_path}/pricing.db") as store:
        catalog = Catalog(store)
        catalog.list_product("p1", "Kettle", 2500, by="alice")
        catalog.change_price("p1", 2900, by="bob", reason="supplier raised cost")
        catalog.change_price("p1", 1900, by="carol", reason="clearance")
        catalog.list_product("p2", "Toaster", 3000, by="alice")
        read_model = tmp_path / "views.db"
        with ProjectionRunner(store, [PriceHistory()], read_model=f"sqlite:///{read_model}") as r:
            r.run_until_caught_up()
        with sqlite3.connect(read_model) as db:
            rows = history(db, "p1")
            assert [
                (h.version, h.price, h.previous_price, h.changed_by, h.reason) for h in rows
            ] == [
                (0, 2500, None, "alice", "listed"),
                (1, 2900, 2500, "bob", "supplier raised cost"),
                (2, 1900, 2900, "carol", "clearance"),
            ]
            for when in [h.changed_at for h in rows] + [rows[-1].changed_at + timedelta(days=1)]:
                by_view = price_at(db, "p1", when)
                by_replay = catalog.price_at("p1", when)
                assert by_view is not None
                assert (by_view.price, by_view.reason) == (by_replay.price, by_replay.reason)
            assert price_at(db, "p1", rows[0].changed_at - timedelta(seconds=1)) is None
            assert (current_price(db, "p1"), current_price(db, "p2")) == (1900, 3000)
