"""What payments answers (ConfirmPayment) and publishes (InvoicePaid, which completes the
order: the original published it to no one)."""

from __future__ import annotations

from streamsource.messaging import Command, IntegrationEvent

from ..platform.messaging import registry


@registry.event("ConfirmPayment")
class ConfirmPayment(Command, frozen=True, rename="camel"):
    payment_id: str
    customer_id: str
    order_id: str
    amount: int


@registry.event("InvoicePaid")
class InvoicePaid(IntegrationEvent, frozen=True, rename="camel"):
    invoice_id: str
    order_id: str
    amount: int
