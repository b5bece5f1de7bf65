"""``/api/depot``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from ..platform.http import Camel
from .application import Depot


class AssignBot(Camel):
    bot_id: str = Field(min_length=1, max_length=100)


class ShoppingListView(Camel):
    id: str
    order_id: str
    status: str
    stops: list[dict[str, Any]]
    bot_id: str | None = None


def router(depot: Depot) -> APIRouter:
    api = APIRouter(prefix="/api/depot", tags=["depot"])

    @api.get("/shopping/{id}", response_model=ShoppingListView)
    def get(id: str) -> ShoppingListView:
        s = depot.load(id)
        return ShoppingListView(
            id=s.id, order_id=s.order_id, status=s.status, stops=s.stops, bot_id=s.bot_id or None
        )

    @api.put("/shopping/{id}/assign", status_code=204)
    def assign(id: str, body: AssignBot) -> None:
        depot.run(id, lambda s: s.assign(body.bot_id))

    @api.put("/shopping/{id}/complete", status_code=204)
    def complete(id: str) -> None:
        depot.run(id, lambda s: s.complete())

    return api
