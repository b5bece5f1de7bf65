"""Product price history: events keep every price and why it changed; a CRUD row does not.

In a CRUD table a price change is an ``UPDATE``: the previous price and the reason are gone.
Here each change is a ``PriceChanged`` event whose metadata says who changed it and why, so
"what was the price at time T, and why?" is a time-travel load plus one look at the event
that set it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

import streamsource as ss

pricing_events = ss.EventRegistry()


@pricing_events.event("ProductListed")
class ProductListed(msgspec.Struct, frozen=True):
    name: str
    price: int  # in cents


@pricing_events.event("PriceChanged")
class PriceChanged(msgspec.Struct, frozen=True):
    old_price: int
    new_price: int


class InvalidPrice(ss.DomainError):
    """A price that is not a positive number of cents, or no change at all."""


class Product(ss.Aggregate):
    """A product whose price is rebuilt from its listing and price changes."""

    registry = pricing_events
    category = "product"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.price = 0

    def put_on_sale(self, name: str, price: int) -> None:
        _check_price(price)
        self.record(ProductListed(name=name, price=price))

    def change_price(self, new_price: int) -> None:
        _check_price(new_price)
        if new_price == self.price:
            raise InvalidPrice(f"product {self.id} already costs {new_price}")
        self.record(PriceChanged(old_price=self.price, new_price=new_price))

    @ss.applies(ProductListed)
    def _listed(self, event: ProductListed) -> None:
        self.name = event.name
        self.price = event.price

    @ss.applies(PriceChanged)
    def _price_changed(self, event: PriceChanged) -> None:
        self.price = event.new_price


def _check_price(price: object) -> None:
    if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
        raise InvalidPrice(f"a price must be a positive number of cents, not {price!r}")


@dataclass(frozen=True)
class PriceAt:
    """The answer to "what was the price at time T, and why?"."""

    price: int
    since: datetime
    changed_by: str | None
    reason: str | None
    version: int


class Catalog:
    """The event-sourced side: list products and change prices with who/why metadata."""

    def __init__(self, store: ss.EventStore) -> None:
        self.store = store
        self.products = ss.Repository(store, Product)

    def list_product(self, product_id: str, name: str, price: int, *, by: str) -> None:
        product = self.products.create(product_id)
        product.put_on_sale(name, price)
        self.products.save(product, metadata={"changed_by": by, "reason": "listed"})

    def change_price(self, product_id: str, new_price: int, *, by: str, reason: str) -> None:
        self.products.update(
            product_id,
            lambda product: product.change_price(new_price),
            metadata={"changed_by": by, "reason": reason},
        )

    def price_at(self, product_id: str, when: datetime) -> PriceAt:
        """The price at ``when`` (a time-travel load) and the event that set it."""
        product = self.products.load(product_id, as_of_time=when)
        assert product.version is not None
        setter = next(self.store.read_stream(product.stream, from_version=product.version, limit=1))
        return PriceAt(
            price=product.price,
            since=setter.recorded_at,
            changed_by=_text(setter.metadata.get("changed_by")),
            reason=_text(setter.metadata.get("reason")),
            version=product.version,
        )

    def history(self, product_id: str) -> list[tuple[int, datetime, int, str, str]]:
        """(version, time, price, who, why) of every price the product has had."""
        rows = []
        for stored in self.products.history(product_id):
            price = getattr(stored.event, "new_price", getattr(stored.event, "price", 0))
            who = _text(stored.metadata.get("changed_by")) or ""
            why = _text(stored.metadata.get("reason")) or ""
            rows.append((stored.version, stored.recorded_at, price, who, why))
        return rows


def _clock(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class CrudProducts:
    """The contrast: a plain sqlite table where a price change is an UPDATE of one row."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS products (id TEXT PRIMARY KEY, name TEXT, price INTEGER)"
        )

    def list_product(self, product_id: str, name: str, price: int) -> None:
        with self.db:
            self.db.execute("INSERT INTO products VALUES (?, ?, ?)", (product_id, name, price))

    def change_price(self, product_id: str, new_price: int) -> None:
        with self.db:  # the previous price, who and why: overwritten, gone
            self.db.execute("UPDATE products SET price = ? WHERE id = ?", (new_price, product_id))

    def row(self, product_id: str) -> tuple[str, str, int]:
        found = self.db.execute(
            "SELECT id, name, price FROM products WHERE id = ?", (product_id,)
        ).fetchone()
        assert found is not None
        return (found[0], found[1], found[2])

    def close(self) -> None:
        self.db.close()


def run_demo(store: ss.EventStore, out: Any, product_id: str, crud_path: Path) -> None:
    """Three price changes recorded both ways; then ask for the price at the second change."""
    catalog = Catalog(store)
    crud = CrudProducts(crud_path)
    try:
        catalog.list_product(product_id, "Espresso machine", 19900, by="alice")
        crud.list_product(product_id, "Espresso machine", 19900)
        changes = [
            (21900, "bob", "supplier raised cost"),
            (17900, "carol", "black friday promotion"),
            (21900, "carol", "promotion ended"),
        ]
        for price, who, why in changes:
            catalog.change_price(product_id, price, by=who, reason=why)
            crud.change_price(product_id, price)
        out.table(
            "CRUD row (products table after three UPDATEs)",
            ["id", "name", "price"],
            [crud.row(product_id)],
        )
        history = catalog.history(product_id)
        out.table(
            f"event stream product-{product_id}",
            ["version", "recorded at (UTC)", "price", "changed by", "reason"],
            [(v, _clock(t), p, who, why) for v, t, p, who, why in history],
        )
        promotion_time = history[2][1]
        answer = catalog.price_at(product_id, promotion_time)
        out.text(
            f"price at {_clock(promotion_time)}: {answer.price}, "
            f"set by {answer.changed_by} because {answer.reason!r}. "
            "The CRUD row cannot answer this: it only knows the current price."
        )
    finally:
        crud.close()
