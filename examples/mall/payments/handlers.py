"""Payments' messages in: ConfirmPayment from the saga; OrderReadied creates the invoice
(its id: the order's); OrderCanceled cancels an unpaid one. Out: InvoicePaid."""

from __future__ import annotations

import streamsource as ss

from ..platform.messaging import command_of, reply_to
from ..platform.storage import Unit
from .application import Payments
from .domain import Invoice


def handle_commands(payments: Payments, event: ss.RecordedEvent) -> Unit | None:
    cmd = command_of(event, "payments")
    if cmd is None or cmd.name != "ConfirmPayment":
        return None
    try:
        unit = payments.confirm(event)
    except ss.DomainError as refused:
        return reply_to(Unit(cause=event), cmd, failure=str(refused))
    return reply_to(unit, cmd)


def handle_orders(payments: Payments, event: ss.RecordedEvent) -> Unit | None:
    order_id = event.stream.partition("-")[2]
    if event.type == "OrderReadied":
        payment_id, total = str(event.data["paymentId"]), int(event.data["total"])

        def create(invoice: Invoice) -> None:
            if invoice.version is None:  # a redelivered OrderReadied finds it made
                invoice.create(payment_id, total)

        return payments.on_invoice(order_id, event, create)
    if event.type == "OrderCanceled" and payments.invoices.exists(order_id):
        return payments.on_invoice(order_id, event, lambda i: i.cancel())
    return None
