"""``/api/depot``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from ..platform.http import Camel, encoded, on_loop
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
    local = depot.own.local

    @api.get("/shopping/{id}", response_model=ShoppingListView)
    @on_loop(local)
    def get(id: str) -> Response:
        s = depot.load(id)
        view = {"id": s.id, "orderId": s.order_id, "status": s.status, "stops": s.stops}
        return encoded({**view, "botId": s.bot_id or None})

    @api.put("/shopping/{id}/assign", status_code=204)
    @on_loop(local)
    def assign(id: str, body: AssignBot) -> None:
        depot.run(id, lambda s: s.assign(body.bot_id))

    @api.put("/shopping/{id}/complete", status_code=204)
    @on_loop(local)
    def complete(id: str) -> None:
        depot.run(id, lambda s: s.complete())

    return api
