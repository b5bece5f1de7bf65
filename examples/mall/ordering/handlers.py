"""Ordering's messages in: BasketCheckedOut creates the order; the saga's CheckOrderPending,
RejectOrder and ApproveOrder; ShoppingListCompleted readies it; InvoicePaid completes it.
Out: the order's integration events (OrderCreated starts the saga; notifications, search,
payments and depot follow them; the original never published OrderApproved/Rejected)."""

from __future__ import annotations

from streamsource.messaging import Context, Service

from ..baskets.messages import BasketCheckedOut
from ..depot.messages import ShoppingListCompleted
from ..payments.messages import InvoicePaid
from . import messages as m
from .application import PAST_APPROVED, PAST_READY, change, check_pending, create, tolerate


def checked_out(ctx: Context, event: BasketCheckedOut) -> None:
    create(ctx, event.basket_id, event.customer_id, event.payment_id, event.items)


def check(ctx: Context, command: m.CheckOrderPending) -> None:
    change(ctx, command.order_id, check_pending)


def reject(ctx: Context, command: m.RejectOrder) -> None:
    change(ctx, command.order_id, lambda o: o.reject())


def approve(ctx: Context, command: m.ApproveOrder) -> None:
    shopping = command.shopping_id
    change(ctx, command.order_id, tolerate(PAST_APPROVED, lambda o: o.approve(shopping)))


def shopped(ctx: Context, event: ShoppingListCompleted) -> None:
    change(ctx, event.order_id, tolerate(PAST_READY, lambda o: o.ready()))


def paid(ctx: Context, event: InvoicePaid) -> None:
    change(ctx, event.order_id, tolerate(("completed",), lambda o: o.complete(event.invoice_id)))


def register(service: Service) -> None:
    service.handle(BasketCheckedOut, checked_out, source="baskets")
    service.handle(m.CheckOrderPending, check)
    service.handle(m.RejectOrder, reject)
    service.handle(m.ApproveOrder, approve)
    service.handle(ShoppingListCompleted, shopped, source="depot")
    service.handle(InvoicePaid, paid, source="payments")
