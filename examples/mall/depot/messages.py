"""What depot answers (the saga's shopping-list commands) and publishes (ShoppingListCompleted,
which readies the order)."""

from __future__ import annotations

from typing import Any

from streamsource.messaging import Command, IntegrationEvent, Reply

from ..platform.messaging import registry


@registry.event("CreateShoppingList")
class CreateShoppingList(Command, frozen=True, rename="camel"):
    order_id: str
    items: list[dict[str, Any]]


@registry.event("ShoppingListCreated")
class ShoppingListCreated(Reply, frozen=True, rename="camel"):
    shopping_id: str


@registry.event("CancelShoppingList")
class CancelShoppingList(Command, frozen=True, rename="camel"):
    """Undo CreateShoppingList; harmless when the list was never made (after a timeout)."""

    order_id: str


@registry.event("InitiateShopping")
class InitiateShopping(Command, frozen=True, rename="camel"):
    """Make the list available to bots (the original never handled it)."""

    order_id: str
    shopping_id: str


@registry.event("ShoppingListCompleted")
class ShoppingListCompleted(IntegrationEvent, frozen=True, rename="camel"):
    shopping_id: str
    order_id: str
