"""Stores' commands, and the mall and catalogue read models they keep in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamsource as ss
from streamsource.messaging import Context

from ..platform.http import NotFound, new_id
from ..platform.storage import ServiceStore
from . import messages
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


def _load(ctx: Context, kind: type[A], name: str, id: str) -> A:
    try:
        return ctx.load(kind, id)
    except ss.AggregateNotFound:
        raise NotFound(f"no {name} {id}") from None


class Stores:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def create_store(self, name: str, location: str) -> str:
        def run(ctx: Context) -> str:
            store = ctx.create(Store, new_id())
            store.create(name, location)
            ctx.publish(messages.StoreCreated(store.id, name, location), key=store.id)
            self.own.execute(
                ctx,
                "INSERT INTO mall_stores VALUES (?, ?, ?, ?)",
                (store.id, name, location, False),
            )
            return store.id

        return self.own.run(run)

    def change_store(self, id: str, command: Callable[[Store], None]) -> None:
        def run(ctx: Context) -> None:
            store = _load(ctx, Store, "store", id)
            before = (store.name, store.participating)
            command(store)
            if store.name != before[0]:
                ctx.publish(messages.StoreRebranded(id, store.name), key=id)
            if store.participating != before[1]:
                ctx.publish(messages.StoreParticipationToggled(id, store.participating), key=id)
            self.own.execute(
                ctx,
                "UPDATE mall_stores SET name = ?, participating = ? WHERE id = ?",
                (store.name, store.participating, id),
            )

        self.own.run(run)

    def add_product(self, store_id: str, name: str, description: str, sku: str, price: int) -> str:
        def run(ctx: Context) -> str:
            _load(ctx, Store, "store", store_id)
            product = ctx.create(Product, new_id())
            product.add(store_id, name, description, sku, price)
            ctx.publish(
                messages.ProductAdded(product.id, store_id, name, description, sku, price),
                key=product.id,
            )
            self.own.execute(
                ctx,
                "INSERT INTO catalogue VALUES (?, ?, ?, ?, ?, ?)",
                (product.id, store_id, name, description, sku, price),
            )
            return product.id

        return self.own.run(run)

    def change_product(self, id: str, command: Callable[[Product], None]) -> None:
        def run(ctx: Context) -> None:
            product = _load(ctx, Product, "product", id)
            before = (product.name, product.description, product.price)
            command(product)
            if product.removed:
                ctx.publish(messages.ProductRemoved(id, product.store_id), key=id)
                self.own.execute(ctx, "DELETE FROM catalogue WHERE id = ?", (id,))
                return
            if (product.name, product.description) != before[:2]:
                ctx.publish(
                    messages.ProductRebranded(id, product.name, product.description), key=id
                )
            if product.price != before[2]:
                ctx.publish(messages.ProductPriceChanged(id, product.price), key=id)
            self.own.execute(
                ctx,
                "UPDATE catalogue SET name = ?, description = ?, price = ? WHERE id = ?",
                (product.name, product.description, product.price, id),
            )

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
