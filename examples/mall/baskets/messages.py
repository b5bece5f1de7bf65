"""What baskets publishes (on ``mall.baskets.events``): a checked-out basket, which ordering
turns into an order."""

from __future__ import annotations

from typing import Any

from streamsource.messaging import IntegrationEvent

from ..platform.messaging import registry


@registry.event("BasketCheckedOut")
class BasketCheckedOut(IntegrationEvent, frozen=True, rename="camel"):
    basket_id: str
    customer_id: str
    payment_id: str
    items: list[dict[str, Any]]  # productId, storeId, productName, storeName, price, quantity
