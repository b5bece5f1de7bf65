"""Notifications: which order events a customer is told about (the original sent SMS for
OrderCreated, OrderReadied and OrderCanceled; here completion and rejection too)."""

from __future__ import annotations

NOTIFIED = {
    "OrderCreated": "order_created",
    "OrderReadied": "order_ready",
    "OrderCanceled": "order_cancelled",
    "OrderRejected": "order_rejected",
    "OrderCompleted": "order_completed",
}
