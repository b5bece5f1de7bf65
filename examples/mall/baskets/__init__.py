"""The baskets service: shoppers fill baskets from cached products and check them out."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Baskets


def build(wiring: Wiring) -> APIRouter:
    baskets = Baskets(wiring.own)
    baskets.catalogue = wiring.follow("stores", handlers.handle_stores_events)
    return api.router(baskets)


SERVICE = Service("baskets", TABLES, build)
