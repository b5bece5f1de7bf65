"""Payments' commands: authorize (API), confirm (saga), invoices (order events, API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamsource as ss

from ..platform.http import NotFound, new_id
from ..platform.storage import ServiceStore, Unit
from .domain import Invoice, Payment

A = TypeVar("A", bound=ss.Aggregate)


class Payments:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.payments = ss.Repository(own.store, Payment)
        self.invoices = ss.Repository(own.store, Invoice)

    def authorize(self, customer_id: str, amount: int) -> str:
        payment = self.payments.create(new_id())
        payment.authorize(customer_id, amount)
        unit = Unit()
        unit.save(payment)
        self.own.commit(unit)
        return payment.id

    def invoice(self, id: str) -> Invoice:
        try:
            return self.invoices.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no invoice {id}") from None

    def pay(self, id: str) -> None:
        def run() -> Unit:
            invoice = self.invoice(id)
            invoice.pay()
            unit = Unit()
            unit.save(invoice)
            return unit

        self.own.run(run)

    def confirm(self, event: ss.RecordedEvent) -> Unit:
        data = event.data
        try:
            payment = self.payments.load(str(data["paymentId"]))
        except ss.AggregateNotFound:
            raise NotFound(f"no payment {data['paymentId']}") from None
        payment.confirm(str(data["orderId"]), str(data["customerId"]), int(data["amount"]))
        unit = Unit(cause=event)
        unit.save(payment)
        return unit

    def on_invoice(
        self, order_id: str, event: ss.RecordedEvent, command: Callable[[Invoice], None]
    ) -> Unit | None:
        invoice = self.invoices.load(order_id) if self.invoices.exists(order_id) else None
        if invoice is None:
            invoice = self.invoices.create(order_id)
        command(invoice)
        unit = Unit(cause=event)
        unit.save(invoice)
        return unit if unit.events else None
