"""Search's messages in, on its own inbox (it sees all of them): ordering's order events, and
the names of customers and of stores and products from their services' events."""

from __future__ import annotations

from functools import partial

from streamsource.messaging import Service

from ..customers import messages as customers
from ..ordering import messages as m
from ..platform.storage import ServiceStore
from ..stores import messages as stores
from .application import Names, index


def register(service: Service, own: ServiceStore) -> None:
    for event in (
        m.OrderCreated,
        m.OrderApproved,
        m.OrderReadied,
        m.OrderCompleted,
        m.OrderRejected,
        m.OrderCanceled,
    ):
        service.handle(event, partial(index, own), source="ordering")
    names = Names(own)
    service.handle(customers.CustomerRegistered, names.customer_registered, source="customers")
    for named, handler in (
        (stores.StoreCreated, names.store_named),
        (stores.StoreRebranded, names.store_named),
        (stores.ProductAdded, names.product_named),
        (stores.ProductRebranded, names.product_named),
    ):
        service.handle(named, handler, source="stores")
