"""The ordering service: orders from checkout to completion."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Ordering


def build(wiring: Wiring) -> APIRouter:
    ordering = Ordering(wiring.own)
    wiring.follow("baskets", partial(handlers.handle_baskets, ordering))
    wiring.follow("cosec", partial(handlers.handle_commands, ordering))
    wiring.follow("depot", partial(handlers.handle_depot, ordering))
    wiring.follow("payments", partial(handlers.handle_payments, ordering))
    return api.router(ordering)


SERVICE = Service("ordering", (), build)
