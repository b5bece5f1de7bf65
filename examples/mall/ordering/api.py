"""``/api/ordering``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ..platform.http import Camel, encoded, on_loop
from .application import Ordering, view


class OrderView(Camel):
    id: str
    customer_id: str
    payment_id: str
    shopping_id: str | None
    items: list[dict[str, Any]]
    total: int
    status: str


def router(ordering: Ordering) -> APIRouter:
    api = APIRouter(prefix="/api/ordering", tags=["ordering"])

    @api.get("/{id}", response_model=OrderView)
    @on_loop(ordering.own.local)
    def get(id: str) -> Response:
        return encoded(view(ordering.load(id)))

    @api.delete("/{id}", status_code=204)
    @on_loop(ordering.own.local)
    def cancel(id: str) -> None:
        ordering.cancel(id)

    return api
