"""Searchable orders: by customer, store, product, status, total range and creation time,
and by a part of the customer's name in any case; with the names of the customer, the stores
and the products.

Search never asks another service: it keeps its own copies of the names it shows, fed by
customers' CustomerRegistered and stores' StoreCreated/StoreRebranded and
ProductAdded/ProductRebranded, and copies them into an order's row when it indexes the
order (denormalised at index time, as Intelli-Mall's search does): a later rebrand changes
the names of orders indexed after it, never of those indexed before, which keep the names
the order was made under. The item names an order carries (baskets' copies) are not used:
every name shown comes from search's own copies, one source for all of them.

Messages travel on different channels, so an order may be indexed before search has seen
its customer, a store or a product: its names are then null (the order is found all the
same), and the event that brings the name fills every row still lacking it. Several search
consumers may index an order and bring one of its names at the same moment (processes
sharing a PostgreSQL database, where each sees only what the other has committed): the
order's transaction first locks the row of each name it copies (made empty when search has
not heard of it), the name's transaction locks the same row, so one of them waits for the
other to commit and then sees its work; a name is never missed.

The tables have names of their own (``search_index_*``): the earlier ``search_orders``
kept ids only, and a data directory made by it keeps that table unread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamsource.messaging import Context

from ..customers import messages as customers
from ..platform.http import NotFound
from ..platform.storage import ServiceStore
from ..stores import messages as stores
from .domain import STATUS_OF

TABLES = (
    "CREATE TABLE IF NOT EXISTS search_index_orders (id TEXT PRIMARY KEY, customer_id TEXT,"
    " customer_name TEXT, customer_key TEXT, payment_id TEXT, total BIGINT, status TEXT,"
    " created_at TEXT, updated_at TEXT)",
    "CREATE INDEX IF NOT EXISTS search_index_orders_by_customer"
    " ON search_index_orders (customer_id)",
    "CREATE INDEX IF NOT EXISTS search_index_orders_by_time ON search_index_orders (created_at)",
    "CREATE TABLE IF NOT EXISTS search_index_items (order_id TEXT, line INTEGER,"
    " product_id TEXT, store_id TEXT, product_name TEXT, store_name TEXT, price BIGINT,"
    " quantity BIGINT, PRIMARY KEY (order_id, line))",
    "CREATE INDEX IF NOT EXISTS search_index_items_by_store ON search_index_items (store_id)",
    "CREATE INDEX IF NOT EXISTS search_index_items_by_product ON search_index_items (product_id)",
    # name_key: the name casefolded in Python, so that matching ignores case the same way on
    # every database (SQLite's lower() and LIKE fold ASCII letters only)
    "CREATE TABLE IF NOT EXISTS search_customers (id TEXT PRIMARY KEY, name TEXT, name_key TEXT)",
    "CREATE TABLE IF NOT EXISTS search_stores (id TEXT PRIMARY KEY, name TEXT)",
    "CREATE TABLE IF NOT EXISTS search_products (id TEXT PRIMARY KEY, name TEXT)",
)
COLUMNS = "id, customer_id, customer_name, payment_id, total, status, created_at, updated_at"
ITEM_COLUMNS = "order_id, product_id, store_id, product_name, store_name, price, quantity"


@dataclass(frozen=True)
class Filters:
    customer_id: str | None = None
    customer_name: str | None = None  # a part of the name, in any case
    store_ids: list[str] | None = None
    product_ids: list[str] | None = None
    status: str | None = None
    min_total: int | None = None
    max_total: int | None = None
    after: datetime | None = None
    before: datetime | None = None
    limit: int = 50


class Search:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def order(self, id: str) -> dict[str, Any]:
        found = self._views(f"SELECT {COLUMNS} FROM search_index_orders WHERE id = ?", (id,))
        if not found:
            raise NotFound(f"no order {id}")
        return found[0]

    def orders(self, f: Filters) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []

        def cond(sql: str, *values: Any) -> None:
            where.append(sql)
            params.extend(values)

        if f.customer_id is not None:
            cond("customer_id = ?", f.customer_id)
        if f.customer_name is not None:
            cond("customer_key LIKE ? ESCAPE '!'", f"%{like_text(f.customer_name)}%")
        if f.status is not None:
            cond("status = ?", f.status)
        if f.min_total is not None:
            cond("total >= ?", f.min_total)
        if f.max_total is not None:
            cond("total <= ?", f.max_total)
        if f.after is not None:
            cond("created_at > ?", utc(f.after))
        if f.before is not None:
            cond("created_at < ?", utc(f.before))
        for column, ids in (("store_id", f.store_ids), ("product_id", f.product_ids)):
            if ids:
                marks = ", ".join("?" for _ in ids)
                cond(
                    f"id IN (SELECT order_id FROM search_index_items WHERE {column} IN ({marks}))",
                    *ids,
                )
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self._views(
            f"SELECT {COLUMNS} FROM search_index_orders{clause}"
            " ORDER BY created_at DESC, id LIMIT ?",
            (*params, f.limit),
        )

    def _views(self, statement: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The orders ``statement`` selects, each with its items (read after the orders:
        an order's items commit with it)."""
        rows = self.own.query(statement, params)
        if not rows:
            return []
        items: dict[str, list[dict[str, Any]]] = {row[0]: [] for row in rows}
        marks = ", ".join("?" for _ in items)
        for (
            order_id,
            product_id,
            store_id,
            product_name,
            store_name,
            price,
            quantity,
        ) in self.own.query(
            f"SELECT {ITEM_COLUMNS} FROM search_index_items WHERE order_id IN ({marks})"
            " ORDER BY order_id, line",
            list(items),
        ):
            items[order_id].append(
                {
                    "productId": product_id,
                    "storeId": store_id,
                    "productName": product_name,
                    "storeName": store_name,
                    "price": int(price),
                    "quantity": int(quantity),
                }
            )
        return [
            {
                "id": id,
                "customerId": customer_id,
                "customerName": customer_name,
                "paymentId": payment_id,
                "items": items[id],
                "total": int(total),
                "status": status,
                "createdAt": created_at,
                "updatedAt": updated_at,
            }
            for id, customer_id, customer_name, payment_id, total, status, created_at, updated_at in rows
        ]


def utc(moment: datetime) -> str:
    """ISO text comparable with the stored times (UTC; a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def like_text(part: str) -> str:
    """``part`` casefolded, LIKE's wildcards in it escaped (with ``!``)."""
    return part.casefold().replace("!", "!!").replace("%", "!%").replace("_", "!_")


def index(own: ServiceStore, ctx: Context, event: Any) -> None:
    """Keep the orders read model up to date with one of ordering's events."""
    envelope = ctx.envelope
    assert envelope is not None
    status = STATUS_OF[envelope.name]
    id = event.order_id
    at = utc(envelope.sent_at or datetime.now(UTC))
    if envelope.name != "OrderCreated":
        own.execute(
            ctx,
            "UPDATE search_index_orders SET status = ?, updated_at = ? WHERE id = ?",
            (status, at, id),
        )
        return
    # The names as search knows them now (null when not yet): scalar subqueries in the
    # handler's transaction, after locking the rows they read (always in the same order:
    # customer, stores, products, each sorted, so two orders never wait on each other in a
    # cycle).
    lock_name(own, ctx, "search_customers", event.customer_id)
    for table, column in (("search_stores", "storeId"), ("search_products", "productId")):
        for name_id in sorted({str(item[column]) for item in event.items}):
            lock_name(own, ctx, table, name_id)
    own.execute(
        ctx,
        "INSERT INTO search_index_orders VALUES (?, ?,"
        " (SELECT name FROM search_customers WHERE id = ?),"
        " (SELECT name_key FROM search_customers WHERE id = ?), ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (
            id,
            event.customer_id,
            event.customer_id,
            event.customer_id,
            event.payment_id,
            int(event.total),
            status,
            at,
            at,
        ),
    )
    for line, item in enumerate(event.items):
        product_id, store_id = str(item["productId"]), str(item["storeId"])
        own.execute(
            ctx,
            "INSERT INTO search_index_items VALUES (?, ?, ?, ?,"
            " (SELECT name FROM search_products WHERE id = ?),"
            " (SELECT name FROM search_stores WHERE id = ?), ?, ?)"
            " ON CONFLICT (order_id, line) DO NOTHING",
            (
                id,
                line,
                product_id,
                store_id,
                product_id,
                store_id,
                int(item["price"]),
                int(item["quantity"]),
            ),
        )


def lock_name(own: ServiceStore, ctx: Context, table: str, id: str) -> None:
    """Lock the row of a name in ``table`` (made with a null name when there is none yet)
    until the transaction ends: a name arriving meanwhile waits (see the module docstring)."""
    own.execute(
        ctx,
        f"INSERT INTO {table} (id) VALUES (?) ON CONFLICT (id) DO UPDATE SET name = {table}.name",
        (id,),
    )


class Names:
    """Search's copies of customers', stores' and products' names, from their services'
    integration events; each also fills the indexed rows still lacking that name."""

    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def customer_registered(self, ctx: Context, event: customers.CustomerRegistered) -> None:
        name_key = event.name.casefold()
        self.own.execute(
            ctx,
            "INSERT INTO search_customers VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key",
            (event.customer_id, event.name, name_key),
        )
        self.own.execute(
            ctx,
            "UPDATE search_index_orders SET customer_name = ?, customer_key = ?"
            " WHERE customer_id = ? AND customer_name IS NULL",
            (event.name, name_key, event.customer_id),
        )

    def store_named(self, ctx: Context, event: stores.StoreCreated | stores.StoreRebranded) -> None:
        self._name(ctx, "search_stores", event.store_id, event.name)
        self.own.execute(
            ctx,
            "UPDATE search_index_items SET store_name = ? WHERE store_id = ? AND store_name IS NULL",
            (event.name, event.store_id),
        )

    def product_named(
        self, ctx: Context, event: stores.ProductAdded | stores.ProductRebranded
    ) -> None:
        self._name(ctx, "search_products", event.product_id, event.name)
        self.own.execute(
            ctx,
            "UPDATE search_index_items SET product_name = ?"
            " WHERE product_id = ? AND product_name IS NULL",
            (event.name, event.product_id),
        )

    def _name(self, ctx: Context, table: str, id: str, name: str) -> None:
        self.own.execute(
            ctx,
            f"INSERT INTO {table} VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            (id, name),
        )
