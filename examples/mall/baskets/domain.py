"""Baskets: items added and removed by quantity, then checked out or canceled.

An item keeps the price it was added at: a price change in the stores service does not
rewrite what the shopper already saw (the original crashed on it instead).
"""

from __future__ import annotations

import msgspec

import streamsource as ss

from ..platform.http import Refused

events = ss.EventRegistry()


class Item(msgspec.Struct, frozen=True):
    productId: str
    storeId: str
    productName: str
    storeName: str
    price: int
    quantity: int


@events.event("BasketStarted")
class BasketStarted(msgspec.Struct, frozen=True):
    customerId: str


@events.event("BasketItemAdded")
class BasketItemAdded(msgspec.Struct, frozen=True):
    item: Item


@events.event("BasketItemRemoved")
class BasketItemRemoved(msgspec.Struct, frozen=True):
    productId: str
    quantity: int


@events.event("BasketCanceled")
class BasketCanceled(msgspec.Struct, frozen=True):
    pass


@events.event("BasketCheckedOut")
class BasketCheckedOut(msgspec.Struct, frozen=True):
    customerId: str
    paymentId: str
    items: list[Item]


OPEN, CANCELED, CHECKED_OUT = "open", "canceled", "checked_out"


class Basket(ss.Aggregate):
    registry = events
    category = "basket"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.customer_id = ""
        self.payment_id = ""
        self.items: dict[str, Item] = {}
        self.status = OPEN

    def start(self, customer_id: str) -> None:
        self.record(BasketStarted(customerId=customer_id))

    def add(self, item: Item) -> None:
        self._check_open()
        held = self.items.get(item.productId)
        if held is not None:  # same line, same price as first added; only the quantity grows
            item = msgspec.structs.replace(held, quantity=item.quantity)
        self.record(BasketItemAdded(item=item))

    def remove(self, product_id: str, quantity: int) -> None:
        self._check_open()
        held = self.items.get(product_id)
        if held is None:
            raise Refused(f"basket {self.id} holds no product {product_id}")
        if quantity > held.quantity:
            raise Refused(
                f"basket {self.id} holds {held.quantity} of product {product_id}, not {quantity}"
            )
        self.record(BasketItemRemoved(productId=product_id, quantity=quantity))

    def cancel(self) -> None:
        self._check_open()
        self.record(BasketCanceled())

    def checkout(self, payment_id: str) -> None:
        self._check_open()
        if not self.items:
            raise Refused(f"basket {self.id} is empty")
        self.record(
            BasketCheckedOut(
                customerId=self.customer_id, paymentId=payment_id, items=list(self.items.values())
            )
        )

    def _check_open(self) -> None:
        if self.status != OPEN:
            raise Refused(f"basket {self.id} is {self.status.replace('_', ' ')}")

    @ss.applies(BasketStarted)
    def _started(self, event: BasketStarted) -> None:
        self.customer_id = event.customerId

    @ss.applies(BasketItemAdded)
    def _added(self, event: BasketItemAdded) -> None:
        held = self.items.get(event.item.productId)
        quantity = event.item.quantity + (held.quantity if held else 0)
        self.items[event.item.productId] = msgspec.structs.replace(event.item, quantity=quantity)

    @ss.applies(BasketItemRemoved)
    def _removed(self, event: BasketItemRemoved) -> None:
        held = self.items[event.productId]
        if held.quantity == event.quantity:
            del self.items[event.productId]
        else:
            self.items[event.productId] = msgspec.structs.replace(
                held, quantity=held.quantity - event.quantity
            )

    @ss.applies(BasketCanceled)
    def _canceled(self, event: BasketCanceled) -> None:
        self.status = CANCELED

    @ss.applies(BasketCheckedOut)
    def _checked_out(self, event: BasketCheckedOut) -> None:
        self.status, self.payment_id = CHECKED_OUT, event.paymentId
