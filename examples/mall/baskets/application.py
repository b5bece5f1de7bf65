"""Baskets' commands, and the caches of stores and products they price items from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamsource as ss

from ..platform.http import NotFound, new_id
from ..platform.messaging import Consumer
from ..platform.storage import ServiceStore, Unit
from .domain import Basket, Item

TABLES = (
    "CREATE TABLE IF NOT EXISTS basket_stores (id TEXT PRIMARY KEY, name TEXT)",
    "CREATE TABLE IF NOT EXISTS basket_products (id TEXT PRIMARY KEY, store_id TEXT,"
    " name TEXT, price BIGINT, removed BOOLEAN)",
)
CACHE_WAIT = 5.0  # seconds an unknown product may take to reach the cache from stores


class Baskets:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.repository = ss.Repository(own.store, Basket)
        self.catalogue: Consumer | None = None  # the consumer filling the caches

    def load(self, id: str) -> Basket:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no basket {id}") from None

    def start(self, customer_id: str) -> str:
        basket = self.repository.create(new_id())
        basket.start(customer_id)
        unit = Unit()
        unit.save(basket)
        self.own.commit(unit)
        return basket.id

    def change(self, id: str, command: Callable[[Basket], None]) -> None:
        def run() -> Unit:
            basket = self.load(id)
            command(basket)
            unit = Unit()
            unit.save(basket)
            return unit

        self.own.run(run)

    def add_item(self, id: str, product_id: str, quantity: int) -> None:
        self.load(id)  # an unknown basket is a 404 before an unknown product
        product = self._product(product_id)
        self.change(id, lambda b: b.add(Item(**product, quantity=quantity)))

    def _product(self, product_id: str) -> dict[str, Any]:
        """The cached product, after waiting for the cache to catch up if it is unknown."""
        for attempt in range(2):
            rows = self.own.query(
                "SELECT p.id, p.store_id, p.name, coalesce(s.name, ''), p.price, p.removed"
                " FROM basket_products p LEFT JOIN basket_stores s ON s.id = p.store_id"
                " WHERE p.id = ?",
                (product_id,),
            )
            if rows and not rows[0][5]:
                pid, store_id, name, store_name, price, _ = rows[0]
                return {
                    "productId": pid,
                    "storeId": store_id,
                    "productName": name,
                    "storeName": store_name,
                    "price": int(price),
                }
            if attempt == 0 and not rows and self.catalogue is not None:
                self.catalogue.wait_caught_up(CACHE_WAIT)
        raise NotFound(f"no product {product_id}")


def cache_unit(event: ss.RecordedEvent) -> Unit | None:
    """The caches' share of a stores event (None for events they do not keep)."""
    unit, data, id = Unit(), event.data, event.stream.partition("-")[2]
    match event.type:
        case "StoreCreated" | "StoreRebranded":
            unit.execute(
                "INSERT INTO basket_stores VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (id, data["name"]),
            )
        case "ProductAdded":
            unit.execute(
                "INSERT INTO basket_products VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (id, data["storeId"], data["name"], data["price"], False),
            )
        case "ProductRebranded":
            unit.execute("UPDATE basket_products SET name = ? WHERE id = ?", (data["name"], id))
        case "ProductPriceIncreased" | "ProductPriceDecreased":
            unit.execute("UPDATE basket_products SET price = ? WHERE id = ?", (data["price"], id))
        case "ProductRemoved":
            unit.execute("UPDATE basket_products SET removed = ? WHERE id = ?", (True, id))
        case _:
            return None
    return unit
