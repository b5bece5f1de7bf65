"""Searchable orders: by customer, store, product, status, total range and creation time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamsource.messaging import Context

from ..platform.http import NotFound
from ..platform.storage import ServiceStore
from .domain import STATUS_OF

TABLES = (
    "CREATE TABLE IF NOT EXISTS search_orders (id TEXT PRIMARY KEY, customer_id TEXT,"
    " payment_id TEXT, items TEXT, total BIGINT, status TEXT, created_at TEXT,"
    " updated_at TEXT)",
    "CREATE INDEX IF NOT EXISTS search_orders_by_customer ON search_orders (customer_id)",
    "CREATE TABLE IF NOT EXISTS search_order_stores (order_id TEXT, store_id TEXT,"
    " PRIMARY KEY (order_id, store_id))",
    "CREATE TABLE IF NOT EXISTS search_order_products (order_id TEXT, product_id TEXT,"
    " PRIMARY KEY (order_id, product_id))",
)
COLUMNS = "id, customer_id, payment_id, items, total, status, created_at, updated_at"


@dataclass(frozen=True)
class Filters:
    customer_id: str | None = None
    store_ids: list[str] | None = None
    product_ids: list[str] | None = None
    status: str | None = None
    min_total: int | None = None
    max_total: int | None = None
    after: datetime | None = None
    before: datetime | None = None
    limit: int = 50


def row_view(row: tuple[Any, ...]) -> dict[str, Any]:
    id, customer_id, payment_id, items, total, status, created_at, updated_at = row
    return {
        "id": id,
        "customerId": customer_id,
        "paymentId": payment_id,
        "items": json.loads(items),
        "total": int(total),
        "status": status,
        "createdAt": created_at,
        "updatedAt": updated_at,
    }


class Search:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def order(self, id: str) -> dict[str, Any]:
        rows = self.own.query(f"SELECT {COLUMNS} FROM search_orders WHERE id = ?", (id,))
        if not rows:
            raise NotFound(f"no order {id}")
        return row_view(rows[0])

    def orders(self, f: Filters) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []

        def cond(sql: str, *values: Any) -> None:
            where.append(sql)
            params.extend(values)

        if f.customer_id is not None:
            cond("customer_id = ?", f.customer_id)
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
        for table, column, ids in (
            ("search_order_stores", "store_id", f.store_ids),
            ("search_order_products", "product_id", f.product_ids),
        ):
            if ids:
                marks = ", ".join("?" for _ in ids)
                cond(f"id IN (SELECT order_id FROM {table} WHERE {column} IN ({marks}))", *ids)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.own.query(
            f"SELECT {COLUMNS} FROM search_orders{clause} ORDER BY created_at DESC, id LIMIT ?",
            (*params, f.limit),
        )
        return [row_view(r) for r in rows]


def utc(moment: datetime) -> str:
    """ISO text comparable with the stored times (UTC; a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


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
            "UPDATE search_orders SET status = ?, updated_at = ? WHERE id = ?",
            (status, at, id),
        )
        return
    items = list(event.items)
    own.execute(
        ctx,
        "INSERT INTO search_orders VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            id,
            event.customer_id,
            event.payment_id,
            json.dumps(items),
            int(event.total),
            status,
            at,
            at,
        ),
    )
    for store_id in sorted({str(i["storeId"]) for i in items}):
        own.execute(
            ctx,
            "INSERT INTO search_order_stores VALUES (?, ?) ON CONFLICT DO NOTHING",
            (id, store_id),
        )
    for product_id in sorted({str(i["productId"]) for i in items}):
        own.execute(
            ctx,
            "INSERT INTO search_order_products VALUES (?, ?) ON CONFLICT DO NOTHING",
            (id, product_id),
        )
