"""The baskets service: shoppers fill baskets from cached products and check them out."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Baskets, Caches


def build(wiring: Wiring) -> APIRouter:
    handlers.register(wiring.own.messages, Caches(wiring.own))
    return api.router(Baskets(wiring.own))


SERVICE = Service("baskets", TABLES, build)
