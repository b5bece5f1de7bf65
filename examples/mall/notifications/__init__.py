"""The notifications service: what customers are told about their orders."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Notifications


def build(wiring: Wiring) -> APIRouter:
    wiring.follow("ordering", handlers.handle_orders)
    return api.router(Notifications(wiring.own))


SERVICE = Service("notifications", TABLES, build)
