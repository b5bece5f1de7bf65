"""What ordering publishes (on ``mall.ordering.events``) and the commands it answers."""

from __future__ import annotations

from typing import Any

from streamsource.messaging import Command, IntegrationEvent

from ..platform.messaging import registry


@registry.event("OrderCreated")
class OrderCreated(IntegrationEvent, frozen=True, rename="camel"):
    order_id: str
    customer_id: str
    payment_id: str
    items: list[dict[str, Any]]
    total: int


@registry.event("OrderApproved")
class OrderApproved(IntegrationEvent, frozen=True, rename="camel"):
    order_id: str
    customer_id: str
    shopping_id: str


@registry.event("OrderRejected")
class OrderRejected(IntegrationEvent, frozen=True, rename="camel"):
    order_id: str
    customer_id: str


@registry.event("OrderCanceled")
class OrderCanceled(IntegrationEvent, frozen=True, rename="camel"):
    order_id: str
    customer_id: str
    payment_id: str


@registry.event("OrderReadied")
class OrderReadied(IntegrationEvent, frozen=True, rename="camel"):
    order_id: str
    customer_id: str
    payment_id: str
    total: int


@registry.event("OrderCompleted")
class OrderCompleted(IntegrationEvent, frozen=True, rename="camel"):
    order_id: str
    customer_id: str
    invoice_id: str


@registry.event("CheckOrderPending")
class CheckOrderPending(Command, frozen=True, rename="camel"):
    """The saga's first step: refused when the order was cancelled before the saga began."""

    order_id: str


@registry.event("RejectOrder")
class RejectOrder(Command, frozen=True, rename="camel"):
    order_id: str


@registry.event("ApproveOrder")
class ApproveOrder(Command, frozen=True, rename="camel"):
    order_id: str
    shopping_id: str
