"""The depot service: shopping lists for orders, and the bots that shop them."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Depot


def build(wiring: Wiring) -> APIRouter:
    depot = Depot(wiring.own)
    wiring.follow("cosec", partial(handlers.handle_commands, depot))
    wiring.follow("ordering", partial(handlers.handle_orders, depot))
    return api.router(depot)


SERVICE = Service("depot", (), build)
