"""Search: a denormalised orders read model (no aggregate: it only follows order events)."""

from __future__ import annotations

STATUS_OF = {
    "OrderCreated": "pending",
    "OrderApproved": "approved",
    "OrderReadied": "ready",
    "OrderCompleted": "completed",
    "OrderRejected": "rejected",
    "OrderCanceled": "cancelled",
}
