"""Ordering's commands: from the API (cancel), the saga (approve, reject) and the other
services' events (create on checkout, ready on a completed shopping list, complete on a paid
invoice)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamsource as ss

from ..platform.http import NotFound
from ..platform.storage import ServiceStore, Unit
from .domain import Order


class Ordering:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.repository = ss.Repository(own.store, Order)

    def load(self, id: str) -> Order:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no order {id}") from None

    def change(
        self, id: str, command: Callable[[Order], None], cause: ss.RecordedEvent | None = None
    ) -> Unit:
        order = self.load(id)
        command(order)
        unit = Unit(cause=cause)
        unit.save(order)
        return unit

    def cancel(self, id: str) -> None:
        self.own.run(lambda: self.change(id, lambda o: o.cancel()))

    def create(self, event: ss.RecordedEvent) -> Unit | None:
        id = event.stream.partition("-")[2]  # the basket id
        if self.repository.exists(id):
            return None
        order = self.repository.create(id)
        items: list[dict[str, Any]] = list(event.data["items"])
        order.create(event.data["customerId"], event.data["paymentId"], items)
        unit = Unit(cause=event)
        unit.save(order)
        return unit


def view(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customerId": order.customer_id,
        "paymentId": order.payment_id,
        "shoppingId": order.shopping_id or None,
        "items": order.items,
        "total": order.total,
        "status": order.status,
    }
