"""The price history view: every price a product had, who set it and why, as a table.

The aggregate answers "what was the price at time T" by a time-travel replay of one stream;
this read model answers it (and "list every change made by carol") with one SQL query, and
keeps the current price of every product beside it::

    streamsource projections --store sqlite:///pricing.db \\
        --app examples.pricing.read_model:projections run
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import streamsource as ss
from streamsource.eventstore.projections import Projection, ProjectionContext

from .app import Product


def _micros(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


class PriceHistory(Projection):
    """``price_history``: one row per price; ``current_prices``: one row per product."""

    name = "price_history"
    tables = ("price_history", "current_prices")
    category = Product.category
    types = ("ProductListed", "PriceChanged")

    def create(self, db: ProjectionContext) -> None:
        db.execute(
            "CREATE TABLE {price_history} ("
            " product_id TEXT NOT NULL, version INTEGER NOT NULL, price INTEGER NOT NULL,"
            " previous_price INTEGER, changed_by TEXT, reason TEXT,"
            " changed_at_us BIGINT NOT NULL, PRIMARY KEY (product_id, version))"
        )
        db.execute(
            "CREATE TABLE {current_prices} ("
            " product_id TEXT PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL,"
            " since_us BIGINT NOT NULL)"
        )

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        product_id = event.stream.split("-", 1)[1]
        when = _micros(event.recorded_at)
        who, why = event.metadata.get("changed_by"), event.metadata.get("reason")
        if event.type == "ProductListed":
            price, previous = event.data["price"], None
            db.execute(
                "INSERT INTO {current_prices} VALUES (?, ?, ?, ?)",
                (product_id, event.data["name"], price, when),
            )
        else:
            price, previous = event.data["new_price"], event.data["old_price"]
            db.execute(
                "UPDATE {current_prices} SET price = ?, since_us = ? WHERE product_id = ?",
                (price, when, product_id),
            )
        db.execute(
            "INSERT INTO {price_history} VALUES (?, ?, ?, ?, ?, ?, ?)",
            (product_id, event.version, price, previous, who, why, when),
        )


projections = [PriceHistory()]
"""What ``streamsource projections --app examples.pricing.read_model:projections`` runs."""


@dataclass(frozen=True)
class HistoryRow:
    """One price a product had."""

    version: int
    price: int
    previous_price: int | None
    changed_by: str | None
    reason: str | None
    changed_at: datetime


def _row(row: tuple[object, ...]) -> HistoryRow:
    version, price, previous, who, why, micros = row
    assert isinstance(micros, int)
    return HistoryRow(
        version=int(str(version)),
        price=int(str(price)),
        previous_price=None if previous is None else int(str(previous)),
        changed_by=None if who is None else str(who),
        reason=None if why is None else str(why),
        changed_at=datetime.fromtimestamp(micros / 1_000_000, UTC),
    )


_COLUMNS = "version, price, previous_price, changed_by, reason, changed_at_us"


def history(db: sqlite3.Connection, product_id: str) -> list[HistoryRow]:
    """Every price of ``product_id``, oldest first."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM price_history WHERE product_id = ? ORDER BY version",
        (product_id,),
    ).fetchall()
    return [_row(row) for row in rows]


def price_at(db: sqlite3.Connection, product_id: str, when: datetime) -> HistoryRow | None:
    """The price in force at ``when`` and why it was set (None before the listing)."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM price_history WHERE product_id = ? AND changed_at_us <= ?"
        " ORDER BY changed_at_us DESC, version DESC LIMIT 1",
        (product_id, _micros(when)),
    ).fetchone()
    return None if row is None else _row(row)


def current_price(db: sqlite3.Connection, product_id: str) -> int | None:
    """The product's price now, from the read model."""
    row = db.execute(
        "SELECT price FROM current_prices WHERE product_id = ?", (product_id,)
    ).fetchone()
    return None if row is None else int(row[0])
