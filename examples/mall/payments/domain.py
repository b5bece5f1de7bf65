"""Payments authorized for an amount, confirmed against an order's total; invoices paid."""

from __future__ import annotations

import msgspec

import streamsource as ss

from ..platform.http import Refused

events = ss.EventRegistry()


@events.event("PaymentAuthorized")
class PaymentAuthorized(msgspec.Struct, frozen=True):
    customerId: str
    amount: int


@events.event("PaymentConfirmed")
class PaymentConfirmed(msgspec.Struct, frozen=True):
    orderId: str
    amount: int


@events.event("InvoiceCreated")
class InvoiceCreated(msgspec.Struct, frozen=True):
    orderId: str
    paymentId: str
    amount: int


@events.event("InvoicePaid")
class InvoicePaid(msgspec.Struct, frozen=True):
    orderId: str
    amount: int


@events.event("InvoiceCanceled")
class InvoiceCanceled(msgspec.Struct, frozen=True):
    orderId: str


class Payment(ss.Aggregate):
    registry = events
    category = "payment"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.customer_id = ""
        self.amount = 0
        self.order_id: str | None = None

    def authorize(self, customer_id: str, amount: int) -> None:
        self.record(PaymentAuthorized(customerId=customer_id, amount=amount))

    def confirm(self, order_id: str, customer_id: str, total: int) -> None:
        if self.order_id == order_id:
            return  # the same confirmation again
        if self.order_id is not None:
            raise Refused(f"payment {self.id} already pays order {self.order_id}")
        if customer_id != self.customer_id:
            raise Refused(f"payment {self.id} was authorized for another customer")
        if self.amount < total:
            raise Refused(
                f"payment {self.id} authorizes {self.amount}, below the order total {total}"
            )
        self.record(PaymentConfirmed(orderId=order_id, amount=total))

    @ss.applies(PaymentAuthorized)
    def _authorized(self, event: PaymentAuthorized) -> None:
        self.customer_id, self.amount = event.customerId, event.amount

    @ss.applies(PaymentConfirmed)
    def _confirmed(self, event: PaymentConfirmed) -> None:
        self.order_id = event.orderId


ISSUED, PAID, CANCELED = "issued", "paid", "canceled"


class Invoice(ss.Aggregate):
    """An invoice; its id is the order's id."""

    registry = events
    category = "invoice"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.payment_id = ""
        self.amount = 0
        self.status = ISSUED

    def create(self, payment_id: str, amount: int) -> None:
        self.record(InvoiceCreated(orderId=self.id, paymentId=payment_id, amount=amount))

    def pay(self) -> None:
        if self.status != ISSUED:
            raise Refused(f"invoice {self.id} is {self.status}")
        self.record(InvoicePaid(orderId=self.id, amount=self.amount))

    def cancel(self) -> None:
        if self.status == ISSUED:
            self.record(InvoiceCanceled(orderId=self.id))

    @ss.applies(InvoiceCreated)
    def _created(self, event: InvoiceCreated) -> None:
        self.payment_id, self.amount = event.paymentId, event.amount

    @ss.applies(InvoicePaid)
    def _paid(self, event: InvoicePaid) -> None:
        self.status = PAID

    @ss.applies(InvoiceCanceled)
    def _canceled(self, event: InvoiceCanceled) -> None:
        self.status = CANCELED
