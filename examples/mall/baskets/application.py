"""Baskets' commands, and the caches of stores and products they price items from."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

import streamsource as ss
from streamsource.messaging import Context

from ..platform.http import NotFound, Unavailable, new_id, wait_allowed
from ..platform.storage import ServiceStore
from ..stores import messages as m
from .domain import CHECKED_OUT, Basket, Item
from .messages import BasketCheckedOut

TABLES = (
    "CREATE TABLE IF NOT EXISTS basket_stores (id TEXT PRIMARY KEY, name TEXT)",
    "CREATE TABLE IF NOT EXISTS basket_products (id TEXT PRIMARY KEY, store_id TEXT,"
    " name TEXT, price BIGINT, removed BOOLEAN)",
)
CACHE_WAIT = 3.0  # seconds an unknown product or store may take to reach the cache


class Baskets:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.repository = ss.Repository(own.store, Basket)

    def load(self, id: str) -> Basket:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no basket {id}") from None

    def start(self, customer_id: str) -> str:
        def run(ctx: Context) -> str:
            basket = ctx.create(Basket, new_id())
            basket.start(customer_id)
            return basket.id

        return self.own.run(run)

    def change(self, id: str, command: Callable[[Basket], None]) -> None:
        def run(ctx: Context) -> None:
            try:
                basket = ctx.load(Basket, id)
            except ss.AggregateNotFound:
                raise NotFound(f"no basket {id}") from None
            command(basket)
            if basket.status == CHECKED_OUT and basket.pending_events:
                items = [msgspec.to_builtins(i) for i in basket.items.values()]
                checked_out = BasketCheckedOut(id, basket.customer_id, basket.payment_id, items)
                ctx.publish(checked_out, key=id)

        self.own.run(run)

    def add_item(self, id: str, product_id: str, quantity: int) -> None:
        # an unknown basket is a 404 before an unknown product (its version: no replay here,
        # change() loads it in its transaction)
        if self.own.store.stream_version(Basket.stream_name(id)) is None:
            raise NotFound(f"no basket {id}")
        product = self._product(product_id)
        self.change(id, lambda b: b.add(Item(**product, quantity=quantity)))

    def _product(self, product_id: str) -> dict[str, Any]:
        """The cached product with its store's name. Stores' events reach the cache on
        different partitions (keyed by product, by store), so a product just added, or its
        store, may take a moment to arrive: an item never records a store without its name."""
        deadline = time.monotonic() + CACHE_WAIT
        while True:
            rows = self.own.query(
                "SELECT p.id, p.store_id, p.name, s.name, p.price, p.removed"
                " FROM basket_products p LEFT JOIN basket_stores s ON s.id = p.store_id"
                " WHERE p.id = ?",
                (product_id,),
            )
            if rows and rows[0][5]:
                raise NotFound(f"no product {product_id}")
            if rows and rows[0][3] is not None:
                pid, store_id, name, store_name, price, _ = rows[0]
                return {
                    "productId": pid,
                    "storeId": store_id,
                    "productName": name,
                    "storeName": store_name,
                    "price": int(price),
                }
            if time.monotonic() > deadline:
                if rows:
                    raise Unavailable(
                        f"the store of product {product_id} has not reached baskets yet; try again"
                    )
                raise NotFound(f"no product {product_id}")
            wait_allowed()  # on the event loop: the route runs again in the thread pool
            time.sleep(0.02)


class Caches:
    """Baskets' copies of stores and products, from stores' integration events."""

    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def store_created(self, ctx: Context, event: m.StoreCreated) -> None:
        self._store(ctx, event.store_id, event.name)

    def store_rebranded(self, ctx: Context, event: m.StoreRebranded) -> None:
        self._store(ctx, event.store_id, event.name)

    def _store(self, ctx: Context, id: str, name: str) -> None:
        self.own.execute(
            ctx,
            "INSERT INTO basket_stores VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            (id, name),
        )

    def product_added(self, ctx: Context, event: m.ProductAdded) -> None:
        self.own.execute(
            ctx,
            "INSERT INTO basket_products VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (event.product_id, event.store_id, event.name, event.price, False),
        )

    def product_rebranded(self, ctx: Context, event: m.ProductRebranded) -> None:
        self.own.execute(
            ctx, "UPDATE basket_products SET name = ? WHERE id = ?", (event.name, event.product_id)
        )

    def price_changed(self, ctx: Context, event: m.ProductPriceChanged) -> None:
        self.own.execute(
            ctx,
            "UPDATE basket_products SET price = ? WHERE id = ?",
            (event.price, event.product_id),
        )

    def product_removed(self, ctx: Context, event: m.ProductRemoved) -> None:
        self.own.execute(
            ctx, "UPDATE basket_products SET removed = ? WHERE id = ?", (True, event.product_id)
        )
