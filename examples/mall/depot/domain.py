"""Shopping lists: one per order, a stop per store; made available by InitiateShopping,
assigned to a bot, completed (which readies the order)."""

from __future__ import annotations

from typing import Any

import msgspec

import streamsource as ss

from ..platform.http import Refused

events = ss.EventRegistry()


@events.event("ShoppingListCreated")
class ShoppingListCreated(msgspec.Struct, frozen=True):
    orderId: str
    stops: list[dict[str, Any]]


@events.event("ShoppingListCanceled")
class ShoppingListCanceled(msgspec.Struct, frozen=True):
    orderId: str


@events.event("ShoppingListInitiated")
class ShoppingListInitiated(msgspec.Struct, frozen=True):
    orderId: str


@events.event("BotAssigned")
class BotAssigned(msgspec.Struct, frozen=True):
    orderId: str
    botId: str


@events.event("ShoppingListCompleted")
class ShoppingListCompleted(msgspec.Struct, frozen=True):
    orderId: str


PENDING, AVAILABLE, ASSIGNED = "pending", "available", "assigned"
COMPLETED, CANCELLED = "completed", "cancelled"


def stops_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One stop per store, in the order the items name them."""
    stops: dict[str, dict[str, Any]] = {}
    for item in items:
        stop = stops.setdefault(
            item["storeId"],
            {"storeId": item["storeId"], "storeName": item.get("storeName", ""), "items": []},
        )
        stop["items"].append(
            {
                "productId": item["productId"],
                "productName": item.get("productName", ""),
                "quantity": item["quantity"],
            }
        )
    return list(stops.values())


class ShoppingList(ss.Aggregate):
    registry = events
    category = "shoppinglist"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.order_id = ""
        self.stops: list[dict[str, Any]] = []
        self.bot_id = ""
        self.status = PENDING

    def create(self, order_id: str, items: list[dict[str, Any]]) -> None:
        self.record(ShoppingListCreated(orderId=order_id, stops=stops_of(items)))

    def cancel(self) -> None:
        if self.status == CANCELLED:
            return  # a compensation: already undone is fine
        if self.status == COMPLETED:
            raise Refused(f"shopping list {self.id} is completed")
        self.record(ShoppingListCanceled(orderId=self.order_id))

    def initiate(self) -> None:
        if self.status == AVAILABLE:
            return
        self._require(PENDING, "make available")
        self.record(ShoppingListInitiated(orderId=self.order_id))

    def assign(self, bot_id: str) -> None:
        self._require(AVAILABLE, "assign")
        self.record(BotAssigned(orderId=self.order_id, botId=bot_id))

    def complete(self) -> None:
        self._require(ASSIGNED, "complete")
        self.record(ShoppingListCompleted(orderId=self.order_id))

    def _require(self, status: str, action: str) -> None:
        if self.status != status:
            raise Refused(f"shopping list {self.id} is {self.status}: cannot {action} it")

    @ss.applies(ShoppingListCreated)
    def _created(self, event: ShoppingListCreated) -> None:
        self.order_id, self.stops = event.orderId, event.stops

    @ss.applies(ShoppingListCanceled)
    def _canceled(self, event: ShoppingListCanceled) -> None:
        self.status = CANCELLED

    @ss.applies(ShoppingListInitiated)
    def _initiated(self, event: ShoppingListInitiated) -> None:
        self.status = AVAILABLE

    @ss.applies(BotAssigned)
    def _assigned(self, event: BotAssigned) -> None:
        self.status, self.bot_id = ASSIGNED, event.botId

    @ss.applies(ShoppingListCompleted)
    def _completed(self, event: ShoppingListCompleted) -> None:
        self.status = COMPLETED
