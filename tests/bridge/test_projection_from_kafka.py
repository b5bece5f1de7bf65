"""A Projection fed from Kafka through the inbox equals the same projection fed from the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import streamsource as ss
from streamsource.bridge import OutboxRelay
from streamsource.bridge.projection import projection_consumer
from streamsource.eventstore.projections import Projection, ProjectionContext, ProjectionRunner

from .kafka_helpers import wait_until


class Totals(Projection):
    """Each account's total of deposits (other categories and types are ignored)."""

    name = "totals"
    tables = ("totals",)
    category = "account"
    types = ("Deposited",)

    def create(self, db: ProjectionContext) -> None:
        db.execute("CREATE TABLE {totals} (stream TEXT PRIMARY KEY, total INT, n INT)")

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        db.execute(
            "INSERT INTO {totals} VALUES (?, ?, 1) ON CONFLICT (stream)"
            " DO UPDATE SET total = {totals}.total + excluded.total, n = {totals}.n + 1",
            (event.stream, event.data["amount"]),
        )


def _view(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT stream, total, n FROM totals").fetchall())


def test_a_projection_fed_from_kafka_matches_the_store_runner(
    store: ss.EventStore, broker: Any, tmp_path: Path
) -> None:
    for n in range(60):
        store.append(f"account-{n % 4}", [ss.NewEvent("Deposited", {"amount": n})])
        store.append(f"account-{n % 4}", [ss.NewEvent("Withdrawn", {"amount": 1})])
    store.append("audit-1", [ss.NewEvent("Deposited", {"amount": 1000})])
    # publish everything twice (two relays): the inbox must skip the second copy
    for name in ("one", "two"):
        with OutboxRelay(store, broker.bootstrap, name=name) as relay:
            assert relay.wait_for(store.head_position())

    from_kafka = tmp_path / "kafka-read-model.db"
    consumer = projection_consumer(
        broker.bootstrap, "totals", ["account", "audit"], Totals(), f"sqlite:///{from_kafka}"
    )
    assert wait_until(lambda: consumer.poll(0.2) >= 0 and consumer.handled >= 121)
    for _ in range(5):
        consumer.poll(0.2)  # the duplicates are in there too
    consumer.close()
    assert consumer.handled == 121  # 120 account events + 1 audit, each once
    assert consumer.skipped == 121

    from_store = tmp_path / "store-read-model.db"
    with ProjectionRunner(store, [Totals()], read_model=f"sqlite:///{from_store}") as runner:
        runner.run_until_caught_up()
    assert _view(from_kafka) == _view(from_store)
    assert len(_view(from_kafka)) == 4
