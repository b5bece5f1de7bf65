"""The projections the console tests name with ``--projections``: the bank's balances and
one that stops at a poisoned event, so the console has a last error to show."""

from __future__ import annotations

from examples.bank.read_model import AccountBalances

import streamsource as ss
from streamsource.eventstore.projections import Projection, ProjectionContext


class OrderTotals(Projection):
    name = "order_totals"
    tables = ("order_totals",)
    category = "order"

    def create(self, db: ProjectionContext) -> None:
        db.execute("CREATE TABLE {order_totals} (stream TEXT PRIMARY KEY, total INTEGER)")

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        if event.type == "OrderPoisoned":
            raise ValueError("cannot total a poisoned order")
        db.execute(
            "INSERT INTO {order_totals} VALUES (?, ?) ON CONFLICT (stream) DO NOTHING",
            (event.stream, event.data.get("total", 0)),
        )


projections = [AccountBalances(), OrderTotals()]
