"""Payments' messages in: ConfirmPayment from the saga (refused when the authorized amount is
below the order's total); OrderReadied creates the invoice (its id: the order's);
OrderCanceled cancels an unpaid one."""

from __future__ import annotations

from streamsource.messaging import Context, Service

from ..ordering.messages import OrderCanceled, OrderReadied
from .application import exists, load
from .domain import Invoice, Payment
from .messages import ConfirmPayment


def confirm(ctx: Context, command: ConfirmPayment) -> None:
    payment = load(ctx, Payment, "payment", command.payment_id)
    payment.confirm(command.order_id, command.customer_id, command.amount)


def readied(ctx: Context, event: OrderReadied) -> None:
    if not exists(ctx, Invoice, event.order_id):  # else: the same fact again
        ctx.create(Invoice, event.order_id).create(event.payment_id, event.total)


def canceled(ctx: Context, event: OrderCanceled) -> None:
    if exists(ctx, Invoice, event.order_id):
        load(ctx, Invoice, "invoice", event.order_id).cancel()


def register(service: Service) -> None:
    service.handle(ConfirmPayment, confirm)
    service.handle(OrderReadied, readied, source="ordering")
    service.handle(OrderCanceled, canceled, source="ordering")
