"""Depot's commands, from the saga (create, cancel, initiate), the API (assign, complete) and
ordering's OrderCanceled."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamsource as ss

from ..platform.http import NotFound
from ..platform.storage import ServiceStore, Unit
from .domain import ShoppingList

# The list of an order has an id derived from the order's, so that a CreateShoppingList sent
# again (a retried step) finds the list it made instead of making a second one.
LISTS = uuid.UUID("6f1d2c55-8d0e-4c55-9d07-5b0e6f3c2a11")


def shopping_id_of(order_id: str) -> str:
    return str(uuid.uuid5(LISTS, order_id))


class Depot:
    def __init__(self, own: ServiceStore) -> None:
        self.own = own
        self.repository = ss.Repository(own.store, ShoppingList)

    def load(self, id: str) -> ShoppingList:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no shopping list {id}") from None

    def change(
        self,
        id: str,
        command: Callable[[ShoppingList], None],
        cause: ss.RecordedEvent | None = None,
    ) -> Unit:
        shopping = self.load(id)
        command(shopping)
        unit = Unit(cause=cause)
        unit.save(shopping)
        return unit

    def run(self, id: str, command: Callable[[ShoppingList], None]) -> None:
        self.own.run(lambda: self.change(id, command))

    def create(self, event: ss.RecordedEvent) -> tuple[Unit, str]:
        order_id = str(event.data["orderId"])
        id = shopping_id_of(order_id)
        unit = Unit(cause=event)
        if not self.repository.exists(id):
            shopping = self.repository.create(id)
            shopping.create(order_id, list(event.data["items"]))
            unit.save(shopping)
        return unit, id
