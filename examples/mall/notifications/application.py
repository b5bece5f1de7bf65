"""The durable log of notifications sent, one row per order event (the event's id keeps a
redelivered event from notifying twice)."""

from __future__ import annotations

from typing import Any

import streamsource as ss

from ..platform.storage import ServiceStore, Unit
from .domain import NOTIFIED

TABLES = (
    "CREATE TABLE IF NOT EXISTS notifications (event_id TEXT PRIMARY KEY, customer_id TEXT,"
    " order_id TEXT, kind TEXT, sent_at TEXT, position BIGINT)",
    "CREATE INDEX IF NOT EXISTS notifications_by_customer ON notifications (customer_id)",
)


class Notifications:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def sent_to(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self.own.query(
            "SELECT customer_id, order_id, kind, sent_at FROM notifications"
            " WHERE customer_id = ? ORDER BY position LIMIT ?",
            (customer_id, limit),
        )
        keys = ("customerId", "orderId", "kind", "sentAt")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def notify(event: ss.RecordedEvent) -> Unit | None:
    kind = NOTIFIED.get(event.type)
    if kind is None:
        return None
    unit = Unit()
    unit.execute(
        "INSERT INTO notifications VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        (
            str(event.id),
            str(event.data["customerId"]),
            event.stream.partition("-")[2],
            kind,
            event.recorded_at.isoformat(),
            event.position,
        ),
    )
    return unit
