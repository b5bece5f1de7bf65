"""What stores publishes (on ``mall.stores.events``): stores and products as they change, for
the caches of baskets (and anyone else)."""

from __future__ import annotations

from streamsource.messaging import IntegrationEvent

from ..platform.messaging import registry


@registry.event("StoreCreated")
class StoreCreated(IntegrationEvent, frozen=True, rename="camel"):
    store_id: str
    name: str
    location: str


@registry.event("StoreRebranded")
class StoreRebranded(IntegrationEvent, frozen=True, rename="camel"):
    store_id: str
    name: str


@registry.event("StoreParticipationToggled")
class StoreParticipationToggled(IntegrationEvent, frozen=True, rename="camel"):
    store_id: str
    participating: bool


@registry.event("ProductAdded")
class ProductAdded(IntegrationEvent, frozen=True, rename="camel"):
    product_id: str
    store_id: str
    name: str
    description: str
    sku: str
    price: int


@registry.event("ProductRebranded")
class ProductRebranded(IntegrationEvent, frozen=True, rename="camel"):
    product_id: str
    name: str
    description: str


@registry.event("ProductPriceChanged")
class ProductPriceChanged(IntegrationEvent, frozen=True, rename="camel"):
    """ProductPriceIncreased and ProductPriceDecreased, as one fact: the new price."""

    product_id: str
    price: int


@registry.event("ProductRemoved")
class ProductRemoved(IntegrationEvent, frozen=True, rename="camel"):
    product_id: str
    store_id: str
