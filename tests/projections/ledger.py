"""A projection used by the tests: one row per event plus a running total per stream."""

from __future__ import annotations

import streamsource as ss
from streamsource.eventstore.projections import Projection, ProjectionContext


class Ledger(Projection):
    """Every deposit of the account category as a row, and each account's total."""

    name = "ledger"
    tables = ("entries", "totals")
    category = "account"
    types = ("Deposited",)

    def create(self, db: ProjectionContext) -> None:
        # no key on entries: a duplicate would be counted, not refused
        db.execute("CREATE TABLE {entries} (event_id TEXT NOT NULL, stream TEXT, amount INT)")
        db.execute("CREATE TABLE {totals} (stream TEXT PRIMARY KEY, total BIGINT NOT NULL)")

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        amount = event.data["amount"]
        if amount == -1:
            raise ValueError("a poisoned event")
        db.execute("INSERT INTO {entries} VALUES (?, ?, ?)", (str(event.id), event.stream, amount))
        db.execute(
            "INSERT INTO {totals} VALUES (?, ?) ON CONFLICT (stream)"
            " DO UPDATE SET total = {totals}.total + excluded.total",
            (event.stream, amount),
        )


def deposit_many(store: ss.EventStore, count: int, *, accounts: int = 10, start: int = 0) -> None:
    """Append ``count`` deposits of 1..n spread over ``accounts`` streams, 100 per append."""
    batch: dict[str, list[ss.NewEvent]] = {}
    for i in range(start, start + count):
        batch.setdefault(f"account-{i % accounts}", []).append(
            ss.NewEvent("Deposited", {"amount": i + 1})
        )
        if sum(len(v) for v in batch.values()) >= 100:
            for stream, events in batch.items():
                store.append(stream, events)
            batch = {}
    for stream, events in batch.items():
        store.append(stream, events)
