"""The durable log of notifications sent, one row per order event (the message id keeps a
redelivered event from notifying twice, on top of the inbox)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streamsource.messaging import Context

from ..platform.storage import ServiceStore
from .domain import NOTIFIED

TABLES = (
    "CREATE TABLE IF NOT EXISTS notifications (message_id TEXT PRIMARY KEY, customer_id TEXT,"
    " order_id TEXT, kind TEXT, sent_at TEXT, seq BIGINT)",
    "CREATE INDEX IF NOT EXISTS notifications_by_customer ON notifications (customer_id)",
    # each insert numbers its row max(seq) + 1: without this index, a scan of every
    # notification ever sent, once per order event
    "CREATE INDEX IF NOT EXISTS notifications_by_seq ON notifications (seq)",
)


class Notifications:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own

    def sent_to(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self.own.query(
            "SELECT customer_id, order_id, kind, sent_at FROM notifications"
            " WHERE customer_id = ? ORDER BY seq LIMIT ?",
            (customer_id, limit),
        )
        keys = ("customerId", "orderId", "kind", "sentAt")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def notify(self, ctx: Context, event: Any) -> None:
        envelope = ctx.envelope
        assert envelope is not None
        sent = datetime.now(UTC)
        self.own.execute(
            ctx,
            "INSERT INTO notifications VALUES (?, ?, ?, ?, ?,"
            " (SELECT coalesce(max(seq), 0) + 1 FROM notifications))"
            " ON CONFLICT (message_id) DO NOTHING",
            (
                envelope.message_id,
                event.customer_id,
                event.order_id,
                NOTIFIED[envelope.name],
                sent.isoformat(),
            ),
        )
