"""Stores' commands, and the mall and catalogue read models they keep in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamsource as ss

from ..platform.http import NotFound, new_id
from ..platform.storage import ServiceStore, Unit
from .domain import Product, Store

A = TypeVar("A", bound=ss.Aggregate)

TABLES = (
    "CREATE TABLE IF NOT EXISTS mall_stores (id TEXT PRIMARY KEY, name TEXT, location TEXT,"
    " participating BOOLEAN)",
    "CREATE TABLE IF NOT EXISTS catalogue (id TEXT PRIMARY KEY, store_id TEXT, name TEXT,"
    " description TEXT, sku TEXT, price BIGINT)",
    "CREATE INDEX IF NOT EXISTS catalogue_by_store ON catalogue (store_id)",
)


def store_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "location": row[2], "participating": bool(row[3])}


def product_row(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "storeId", "name", "description", "sku", "price")
    return dict(zip(keys, row, strict=True))


class Stores:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.stores = ss.Repository(own.store, Store)
        self.products = ss.Repository(own.store, Product)

    def _load(self, repository: ss.Repository[A], kind: str, id: str) -> A:
        try:
            return repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no {kind} {id}") from None

    def create_store(self, name: str, location: str) -> str:
        store = self.stores.create(new_id())
        store.create(name, location)
        unit = Unit()
        unit.save(store)
        unit.execute(
            "INSERT INTO mall_stores VALUES (?, ?, ?, ?)", (store.id, name, location, False)
        )
        self.own.commit(unit)
        return store.id

    def change_store(self, id: str, command: Callable[[Store], None]) -> None:
        def run() -> Unit:
            store = self._load(self.stores, "store", id)
            command(store)
            unit = Unit()
            unit.save(store)
            unit.execute(
                "UPDATE mall_stores SET name = ?, participating = ? WHERE id = ?",
                (store.name, store.participating, id),
            )
            return unit

        self.own.run(run)

    def add_product(self, store_id: str, name: str, description: str, sku: str, price: int) -> str:
        self._load(self.stores, "store", store_id)
        product = self.products.create(new_id())
        product.add(store_id, name, description, sku, price)
        unit = Unit()
        unit.save(product)
        unit.execute(
            "INSERT INTO catalogue VALUES (?, ?, ?, ?, ?, ?)",
            (product.id, store_id, name, description, sku, price),
        )
        self.own.commit(unit)
        return product.id

    def change_product(self, id: str, command: Callable[[Product], None]) -> None:
        def run() -> Unit:
            product = self._load(self.products, "product", id)
            command(product)
            unit = Unit()
            unit.save(product)
            if product.removed:
                unit.execute("DELETE FROM catalogue WHERE id = ?", (id,))
            else:
                unit.execute(
                    "UPDATE catalogue SET name = ?, description = ?, price = ? WHERE id = ?",
                    (product.name, product.description, product.price, id),
                )
            return unit

        self.own.run(run)

    # -- queries: the read models ------------------------------------------------------------

    def all_stores(self, participating_only: bool = False) -> list[dict[str, Any]]:
        where = " WHERE participating" if participating_only else ""
        rows = self.own.query(f"SELECT * FROM mall_stores{where} ORDER BY name, id")
        return [store_row(r) for r in rows]

    def store(self, id: str) -> dict[str, Any]:
        rows = self.own.query("SELECT * FROM mall_stores WHERE id = ?", (id,))
        if not rows:
            raise NotFound(f"no store {id}")
        return store_row(rows[0])

    def catalogue(self, store_id: str) -> list[dict[str, Any]]:
        self.store(store_id)
        rows = self.own.query(
            "SELECT * FROM catalogue WHERE store_id = ? ORDER BY name, id", (store_id,)
        )
        return [product_row(r) for r in rows]

    def product(self, id: str) -> dict[str, Any]:
        rows = self.own.query("SELECT * FROM catalogue WHERE id = ?", (id,))
        if not rows:
            raise NotFound(f"no product {id}")
        return product_row(rows[0])
