"""``/api/search`` (the original left both endpoints unimplemented)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from ..platform.http import Camel
from .application import Filters, Search

Id = Field(min_length=1, max_length=100)


class SearchOrders(Camel):
    customer_id: str | None = Field(default=None, min_length=1, max_length=100)
    customer_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="a part of the name, any case"
    )
    store_ids: list[str] | None = Field(default=None, max_length=100)
    product_ids: list[str] | None = Field(default=None, max_length=100)
    status: Literal["pending", "approved", "ready", "completed", "rejected", "cancelled"] | None = (
        None
    )
    min_total: int | None = Field(default=None, ge=0)
    max_total: int | None = Field(default=None, ge=0)
    after: datetime | None = None
    before: datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)


class FoundItem(Camel):
    """A line of the order; the names as search knew them when it indexed the order (null
    until search has heard of that product or store)."""

    product_id: str
    store_id: str
    product_name: str | None
    store_name: str | None
    price: int
    quantity: int


class FoundOrder(Camel):
    id: str
    customer_id: str
    customer_name: str | None  # null until search has heard of the customer
    payment_id: str
    items: list[FoundItem]
    total: int
    status: str
    created_at: str
    updated_at: str


class Found(Camel):
    orders: list[FoundOrder]


def router(search: Search) -> APIRouter:
    api = APIRouter(prefix="/api/search", tags=["search"])

    @api.post("/orders", response_model=Found)
    def orders(body: SearchOrders) -> Found:
        found = search.orders(Filters(**body.model_dump()))
        return Found(orders=[FoundOrder.model_validate(o) for o in found])

    @api.get("/orders/{id}", response_model=FoundOrder)
    def order(id: str) -> FoundOrder:
        return FoundOrder.model_validate(search.order(id))

    return api
