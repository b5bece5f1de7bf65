"""``/api/baskets``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from ..platform.http import Camel, Created, created, encoded, on_loop
from .application import Baskets


class StartBasket(Camel):
    customer_id: str = Field(min_length=1, max_length=100)


class ItemChange(Camel):
    product_id: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=10_000)


class Checkout(Camel):
    payment_id: str = Field(min_length=1, max_length=100)


class ItemView(Camel):
    product_id: str
    store_id: str
    product_name: str
    price: int
    quantity: int


class BasketView(Camel):
    id: str
    customer_id: str
    items: list[ItemView]
    status: str


def router(baskets: Baskets) -> APIRouter:
    api = APIRouter(prefix="/api/baskets", tags=["baskets"])
    local = baskets.own.local

    @api.post("", status_code=201, response_model=Created)
    @on_loop(local)
    def start(body: StartBasket) -> Response:
        return created(baskets.start(body.customer_id))

    @api.get("/{id}", response_model=BasketView)
    @on_loop(local)
    def get(id: str) -> Response:
        b = baskets.load(id)
        items = [
            {
                "productId": i.productId,
                "storeId": i.storeId,
                "productName": i.productName,
                "price": i.price,
                "quantity": i.quantity,
            }
            for i in b.items.values()
        ]
        return encoded(
            {"id": b.id, "customerId": b.customer_id, "items": items, "status": b.status}
        )

    @api.put("/{id}/addItem", status_code=204)
    @on_loop(local)
    def add_item(id: str, body: ItemChange) -> None:
        baskets.add_item(id, body.product_id, body.quantity)

    @api.put("/{id}/removeItem", status_code=204)
    @on_loop(local)
    def remove_item(id: str, body: ItemChange) -> None:
        baskets.change(id, lambda b: b.remove(body.product_id, body.quantity))

    @api.put("/{id}/checkout", status_code=204)
    @on_loop(local)
    def checkout(id: str, body: Checkout) -> None:
        baskets.change(id, lambda b: b.checkout(body.payment_id))

    @api.delete("/{id}", status_code=204)
    @on_loop(local)
    def cancel(id: str) -> None:
        baskets.change(id, lambda b: b.cancel())

    return api
