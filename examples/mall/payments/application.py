"""Payments' commands: authorize (API), confirm (saga), invoices (order events, API)."""

from __future__ import annotations

from typing import Any

import streamsource as ss
from streamsource.messaging import Context

from ..platform.http import NotFound, new_id
from ..platform.storage import ServiceStore
from .domain import Invoice, Payment
from .messages import InvoicePaid


class Payments:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.invoices = ss.Repository(own.store, Invoice)

    def authorize(self, customer_id: str, amount: int) -> str:
        def run(ctx: Context) -> str:
            payment = ctx.create(Payment, new_id())
            payment.authorize(customer_id, amount)
            return payment.id

        return self.own.run(run)

    def invoice(self, id: str) -> Invoice:
        try:
            return self.invoices.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no invoice {id}") from None

    def pay(self, id: str) -> None:
        def run(ctx: Context) -> None:
            invoice = load(ctx, Invoice, "invoice", id)
            invoice.pay()
            ctx.publish(InvoicePaid(id, id, invoice.amount), key=id)

        self.own.run(run)


def load(ctx: Context, kind: type[Payment] | type[Invoice], name: str, id: str) -> Any:
    try:
        return ctx.load(kind, id)
    except ss.AggregateNotFound:
        raise NotFound(f"no {name} {id}") from None


def exists(ctx: Context, kind: type[ss.Aggregate], id: str) -> bool:
    return ctx.service.store.stream_version(kind.stream_name(id)) is not None
