"""Customers' commands and queries."""

from __future__ import annotations

from collections.abc import Callable

import streamsource as ss
from streamsource.messaging import Context

from ..platform.http import NotFound, new_id
from ..platform.storage import ServiceStore
from .domain import Customer
from .messages import CustomerRegistered


class Customers:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.repository = ss.Repository(own.store, Customer)

    def load(self, id: str) -> Customer:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no customer {id}") from None

    def register(self, name: str, sms_number: str) -> str:
        def run(ctx: Context) -> str:
            customer = ctx.create(Customer, new_id())
            customer.register(name, sms_number)
            ctx.publish(CustomerRegistered(customer.id, name), key=customer.id)
            return customer.id

        return self.own.run(run)

    def change(self, id: str, command: Callable[[Customer], None]) -> None:
        def run(ctx: Context) -> None:
            command(load(ctx, id))

        self.own.run(run)


def load(ctx: Context, id: str) -> Customer:
    try:
        return ctx.load(Customer, id)
    except ss.AggregateNotFound:
        raise NotFound(f"no customer {id}") from None
