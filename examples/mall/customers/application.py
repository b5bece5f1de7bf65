"""Customers' commands and queries."""

from __future__ import annotations

from collections.abc import Callable

import streamsource as ss

from ..platform.http import NotFound, new_id
from ..platform.storage import ServiceStore, Unit
from .domain import Customer


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
        customer = self.repository.create(new_id())
        customer.register(name, sms_number)
        unit = Unit()
        unit.save(customer)
        self.own.commit(unit)
        return customer.id

    def change(self, id: str, command: Callable[[Customer], None]) -> None:
        def run() -> Unit:
            customer = self.load(id)
            command(customer)
            unit = Unit()
            unit.save(customer)
            return unit

        self.own.run(run)
