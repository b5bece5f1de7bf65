"""The search service: orders, searchable."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Search


def build(wiring: Wiring) -> APIRouter:
    wiring.follow("ordering", handlers.handle_orders)
    return api.router(Search(wiring.own))


SERVICE = Service("search", TABLES, build)
