"""``/api/sagas``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ..platform.http import Camel, encoded, on_loop
from .application import Sagas


class SagaView(Camel):
    id: str
    name: str
    step: str
    status: str
    engine_status: str
    reason: str | None
    data: dict[str, Any]
    history: list[dict[str, Any]]


def router(sagas: Sagas) -> APIRouter:
    api = APIRouter(prefix="/api/sagas", tags=["sagas"])

    @api.get("/{id}", response_model=SagaView)
    @on_loop(sagas.own.local)
    def get(id: str) -> Response:
        return encoded(sagas.view(id))

    return api
