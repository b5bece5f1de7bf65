"""The cosec service: the create-order saga (orchestration), with compensations and step
timeouts."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Sagas, Timeouts


def build(wiring: Wiring) -> APIRouter:
    sagas = Sagas(wiring.own, wiring.step_timeout)
    wiring.follow("ordering", partial(handlers.handle_orders, sagas))
    for participant in ("customers", "depot", "payments"):
        wiring.follow(participant, partial(handlers.handle_replies, sagas))
    wiring.background.append(Timeouts(sagas))
    return api.router(sagas)


SERVICE = Service("cosec", TABLES, build)
