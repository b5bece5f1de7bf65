"""Ordering's commands: from the API (cancel), the saga (check, approve, reject) and the
other services' events (create on checkout, ready on a completed shopping list, complete on
a paid invoice). Each state change publishes the matching integration event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamsource as ss
from streamsource.messaging import Context

from ..platform.http import NotFound, Refused
from ..platform.storage import ServiceStore
from . import messages as m
from .domain import APPROVED, COMPLETED, PENDING, READY, Order


class Ordering:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.repository = ss.Repository(own.store, Order)

    def load(self, id: str) -> Order:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no order {id}") from None

    def cancel(self, id: str) -> None:
        self.own.run(lambda ctx: change(ctx, id, lambda o: o.cancel()))


def change(ctx: Context, id: str, command: Callable[[Order], None]) -> Order:
    """Run ``command`` on order ``id`` and publish what changed."""
    try:
        order = ctx.load(Order, id)
    except ss.AggregateNotFound:
        raise NotFound(f"no order {id}") from None
    before = order.status
    command(order)
    if order.status != before:
        publish(ctx, order)
    return order


def publish(ctx: Context, o: Order) -> None:
    event: Any
    match o.status:
        case "pending":
            event = m.OrderCreated(o.id, o.customer_id, o.payment_id, o.items, o.total)
        case "approved":
            event = m.OrderApproved(o.id, o.customer_id, o.shopping_id)
        case "rejected":
            event = m.OrderRejected(o.id, o.customer_id)
        case "cancelled":
            event = m.OrderCanceled(o.id, o.customer_id, o.payment_id)
        case "ready":
            event = m.OrderReadied(o.id, o.customer_id, o.payment_id, o.total)
        case "completed":
            event = m.OrderCompleted(o.id, o.customer_id, o.id)
    ctx.publish(event, key=o.id)


def create(
    ctx: Context, order_id: str, customer_id: str, payment_id: str, items: list[Any]
) -> None:
    if ctx.service.store.stream_version(Order.stream_name(order_id)) is not None:
        return  # the same checkout again
    order = ctx.create(Order, order_id)
    order.create(customer_id, payment_id, items)
    publish(ctx, order)


def check_pending(order: Order) -> None:
    if order.status != PENDING:
        raise Refused(f"order {order.id} is {order.status}")


def tolerate(done: tuple[str, ...], action: Callable[[Order], None]) -> Callable[[Order], None]:
    """``action``, except on an order already past it (the same fact delivered again)."""

    def run(order: Order) -> None:
        if order.status not in done:
            action(order)

    return run


PAST_READY = (READY, COMPLETED)
PAST_APPROVED = (APPROVED, *PAST_READY)


def view(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customerId": order.customer_id,
        "paymentId": order.payment_id,
        "shoppingId": order.shopping_id or None,
        "items": order.items,
        "total": order.total,
        "status": order.status,
    }
