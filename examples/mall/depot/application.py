"""Depot's commands, from the saga (create, cancel, initiate), the API (assign, complete) and
ordering's OrderCanceled."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamsource as ss
from streamsource.messaging import Context

from ..platform.http import NotFound
from ..platform.storage import ServiceStore
from .domain import COMPLETED, ShoppingList
from .messages import ShoppingListCompleted

# The list of an order has an id derived from the order's, so that a CreateShoppingList sent
# again (a retried step) finds the list it made instead of making a second one, and so that
# CancelShoppingList needs only the order id.
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

    def run(self, id: str, command: Callable[[ShoppingList], None]) -> None:
        self.own.run(lambda ctx: change(ctx, id, command))


def change(ctx: Context, id: str, command: Callable[[ShoppingList], None]) -> ShoppingList:
    try:
        shopping = ctx.load(ShoppingList, id)
    except ss.AggregateNotFound:
        raise NotFound(f"no shopping list {id}") from None
    before = shopping.status
    command(shopping)
    if shopping.status == COMPLETED != before:
        ctx.publish(ShoppingListCompleted(id, shopping.order_id), key=shopping.order_id)
    return shopping


def exists(ctx: Context, id: str) -> bool:
    return ctx.service.store.stream_version(ShoppingList.stream_name(id)) is not None
