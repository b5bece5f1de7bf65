"""``/api/stores``: stores, participation, products and prices."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from ..platform.http import Camel, Created, created, on_loop
from .application import Stores


class CreateStore(Camel):
    name: str = Field(min_length=1, max_length=200)
    location: str = Field(min_length=1, max_length=200)


class RebrandStore(Camel):
    name: str = Field(min_length=1, max_length=200)


class StoreView(Camel):
    id: str
    name: str
    location: str
    participating: bool


class AddProduct(Camel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    sku: str = Field(min_length=1, max_length=100)
    price: int = Field(gt=0, lt=10**12, description="integer cents")


class PriceChange(Camel):
    price: int = Field(gt=0, lt=10**12, description="the amount of change, in cents")


class RebrandProduct(Camel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class ProductView(Camel):
    id: str
    store_id: str
    name: str
    description: str
    sku: str
    price: int


def router(stores: Stores) -> APIRouter:
    api = APIRouter(prefix="/api/stores", tags=["stores"])
    local = stores.own.local

    @api.post("", status_code=201, response_model=Created)
    @on_loop(local)
    def create(body: CreateStore) -> Response:
        return created(stores.create_store(body.name, body.location))

    @api.get("", response_model=list[StoreView])
    def all_stores() -> list[StoreView]:
        return [StoreView(**s) for s in stores.all_stores()]

    @api.get("/participating", response_model=list[StoreView])
    def participating() -> list[StoreView]:
        return [StoreView(**s) for s in stores.all_stores(participating_only=True)]

    # products/{id} before {id}: "products" is not a store id
    @api.get("/products/{id}", response_model=ProductView)
    @on_loop(local)
    def product(id: str) -> ProductView:
        return ProductView.model_validate(stores.product(id))

    @api.put("/products/{id}/increasePrice", status_code=204)
    @on_loop(local)
    def increase(id: str, body: PriceChange) -> None:
        stores.change_product(id, lambda p: p.increase_price(body.price))

    @api.put("/products/{id}/decreasePrice", status_code=204)
    @on_loop(local)
    def decrease(id: str, body: PriceChange) -> None:
        stores.change_product(id, lambda p: p.decrease_price(body.price))

    @api.put("/products/{id}/rebrand", status_code=204)
    @on_loop(local)
    def rebrand_product(id: str, body: RebrandProduct) -> None:
        stores.change_product(id, lambda p: p.rebrand(body.name, body.description))

    @api.delete("/products/{id}", status_code=204)
    @on_loop(local)
    def remove(id: str) -> None:
        stores.change_product(id, lambda p: p.remove())

    @api.get("/{id}", response_model=StoreView)
    @on_loop(local)
    def store(id: str) -> StoreView:
        return StoreView(**stores.store(id))

    @api.put("/{id}/participating", status_code=204)
    @on_loop(local)
    def enable(id: str) -> None:
        stores.change_store(id, lambda s: s.enable_participation())

    @api.delete("/{id}/participating", status_code=204)
    @on_loop(local)
    def disable(id: str) -> None:
        stores.change_store(id, lambda s: s.disable_participation())

    @api.put("/{id}/rebrand", status_code=204)
    @on_loop(local)
    def rebrand(id: str, body: RebrandStore) -> None:
        stores.change_store(id, lambda s: s.rebrand(body.name))

    @api.post("/{store_id}/products", status_code=201, response_model=Created)
    @on_loop(local)
    def add_product(store_id: str, body: AddProduct) -> Response:
        product_id = stores.add_product(store_id, body.name, body.description, body.sku, body.price)
        return created(product_id)

    @api.get("/{store_id}/products", response_model=list[ProductView])
    def products(store_id: str) -> list[ProductView]:
        return [ProductView.model_validate(p) for p in stores.catalogue(store_id)]

    return api
