"""The depot service: shopping lists for orders, and the bots that shop them."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Depot


def build(wiring: Wiring) -> APIRouter:
    handlers.register(wiring.own.messages)
    return api.router(Depot(wiring.own))


SERVICE = Service("depot", (), build)
