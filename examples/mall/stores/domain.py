"""Stores and their products (prices in integer cents)."""

from __future__ import annotations

import msgspec

import streamsource as ss

from ..platform.http import Refused

events = ss.EventRegistry()


@events.event("StoreCreated")
class StoreCreated(msgspec.Struct, frozen=True):
    name: str
    location: str


@events.event("StoreParticipationEnabled")
class StoreParticipationEnabled(msgspec.Struct, frozen=True):
    pass


@events.event("StoreParticipationDisabled")
class StoreParticipationDisabled(msgspec.Struct, frozen=True):
    pass


@events.event("StoreRebranded")
class StoreRebranded(msgspec.Struct, frozen=True):
    name: str


@events.event("ProductAdded")
class ProductAdded(msgspec.Struct, frozen=True):
    storeId: str
    name: str
    description: str
    sku: str
    price: int


@events.event("ProductRebranded")
class ProductRebranded(msgspec.Struct, frozen=True):
    name: str
    description: str


@events.event("ProductPriceIncreased")
class ProductPriceIncreased(msgspec.Struct, frozen=True):
    delta: int
    price: int  # the new price, so that consumers need no arithmetic


@events.event("ProductPriceDecreased")
class ProductPriceDecreased(msgspec.Struct, frozen=True):
    delta: int
    price: int


@events.event("ProductRemoved")
class ProductRemoved(msgspec.Struct, frozen=True):
    storeId: str


class Store(ss.Aggregate):
    registry = events
    category = "store"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.location = ""
        self.participating = False

    def create(self, name: str, location: str) -> None:
        self.record(StoreCreated(name=name, location=location))

    def enable_participation(self) -> None:
        if self.participating:
            raise Refused(f"store {self.id} is already participating")
        self.record(StoreParticipationEnabled())

    def disable_participation(self) -> None:
        if not self.participating:
            raise Refused(f"store {self.id} is not participating")
        self.record(StoreParticipationDisabled())

    def rebrand(self, name: str) -> None:
        self.record(StoreRebranded(name=name))

    @ss.applies(StoreCreated)
    def _created(self, event: StoreCreated) -> None:
        self.name, self.location = event.name, event.location

    @ss.applies(StoreParticipationEnabled)
    def _enabled(self, event: StoreParticipationEnabled) -> None:
        self.participating = True

    @ss.applies(StoreParticipationDisabled)
    def _disabled(self, event: StoreParticipationDisabled) -> None:
        self.participating = False

    @ss.applies(StoreRebranded)
    def _rebranded(self, event: StoreRebranded) -> None:
        self.name = event.name


class Product(ss.Aggregate):
    registry = events
    category = "product"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.store_id = ""
        self.name = ""
        self.description = ""
        self.sku = ""
        self.price = 0
        self.removed = False

    def add(self, store_id: str, name: str, description: str, sku: str, price: int) -> None:
        self.record(
            ProductAdded(storeId=store_id, name=name, description=description, sku=sku, price=price)
        )

    def rebrand(self, name: str, description: str) -> None:
        self._check_present()
        self.record(ProductRebranded(name=name, description=description))

    def increase_price(self, delta: int) -> None:
        self._check_present()
        self.record(ProductPriceIncreased(delta=delta, price=self.price + delta))

    def decrease_price(self, delta: int) -> None:
        self._check_present()
        if delta >= self.price:
            raise Refused(f"product {self.id}: cannot decrease its price {self.price} by {delta}")
        self.record(ProductPriceDecreased(delta=delta, price=self.price - delta))

    def remove(self) -> None:
        self._check_present()
        self.record(ProductRemoved(storeId=self.store_id))

    def _check_present(self) -> None:
        if self.removed:
            raise Refused(f"product {self.id} was removed")

    @ss.applies(ProductAdded)
    def _added(self, event: ProductAdded) -> None:
        self.store_id, self.name, self.description = event.storeId, event.name, event.description
        self.sku, self.price = event.sku, event.price

    @ss.applies(ProductRebranded)
    def _rebranded(self, event: ProductRebranded) -> None:
        self.name, self.description = event.name, event.description

    @ss.applies(ProductPriceIncreased, ProductPriceDecreased)
    def _repriced(self, event: ProductPriceIncreased | ProductPriceDecreased) -> None:
        self.price = event.price

    @ss.applies(ProductRemoved)
    def _removed(self, event: ProductRemoved) -> None:
        self.removed = True
