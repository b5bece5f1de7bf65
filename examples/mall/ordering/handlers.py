"""Ordering's messages in: BasketCheckedOut creates the order; the saga's RejectOrder and
ApproveOrder; ShoppingListCompleted readies it; InvoicePaid completes it. Out: the order
events (OrderCreated starts the saga; notifications, search and payments follow them)."""

from __future__ import annotations

import streamsource as ss

from ..platform.messaging import command_of, reply_to
from ..platform.storage import Unit
from .application import Ordering


def handle_baskets(ordering: Ordering, event: ss.RecordedEvent) -> Unit | None:
    return ordering.create(event) if event.type == "BasketCheckedOut" else None


def handle_commands(ordering: Ordering, event: ss.RecordedEvent) -> Unit | None:
    cmd = command_of(event, "ordering")
    if cmd is None:
        return None
    order_id = str(event.data["orderId"])
    try:
        if cmd.name == "RejectOrder":
            unit = ordering.change(order_id, lambda o: o.reject(), event)
        elif cmd.name == "ApproveOrder":
            shopping_id = str(event.data["shoppingId"])
            unit = ordering.change(order_id, lambda o: o.approve(shopping_id), event)
        else:
            return None
    except ss.DomainError as refused:
        return reply_to(Unit(cause=event), cmd, failure=str(refused))
    return reply_to(unit, cmd)


def handle_depot(ordering: Ordering, event: ss.RecordedEvent) -> Unit | None:
    if event.type != "ShoppingListCompleted":
        return None
    return _tolerant(ordering, str(event.data["orderId"]), "ready", event)


def handle_payments(ordering: Ordering, event: ss.RecordedEvent) -> Unit | None:
    if event.type != "InvoicePaid":
        return None
    invoice_id = event.stream.partition("-")[2]
    return _tolerant(ordering, str(event.data["orderId"]), "complete", event, invoice_id)


def _tolerant(
    ordering: Ordering, order_id: str, action: str, event: ss.RecordedEvent, *args: str
) -> Unit | None:
    """A state change caused by another service's fact; refused ones are logged as dead
    letters by raising, except when the order already moved past it (redelivery)."""
    try:
        return ordering.change(order_id, lambda o: getattr(o, action)(*args), event)
    except ss.DomainError:
        order = ordering.load(order_id)
        if order.status in ("ready", "completed"):
            return None
        raise
