"""The stores service: stores, participation, products and prices, with mall and catalogue
read models."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api
from .application import TABLES, Stores


def build(wiring: Wiring) -> APIRouter:
    return api.router(Stores(wiring.own))


SERVICE = Service("stores", TABLES, build)
