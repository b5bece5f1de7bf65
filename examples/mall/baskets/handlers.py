"""Baskets' messages: stores' integration events in (the caches of stores and products);
BasketCheckedOut out."""

from __future__ import annotations

from streamsource.messaging import Service

from ..stores import messages as m
from .application import Caches


def register(service: Service, caches: Caches) -> None:
    for event, handler in (
        (m.StoreCreated, caches.store_created),
        (m.StoreRebranded, caches.store_rebranded),
        (m.ProductAdded, caches.product_added),
        (m.ProductRebranded, caches.product_rebranded),
        (m.ProductPriceChanged, caches.price_changed),
        (m.ProductRemoved, caches.product_removed),
    ):
        service.handle(event, handler, source="stores")
