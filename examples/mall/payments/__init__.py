"""The payments service: authorized payments, their confirmation, invoices."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Payments


def build(wiring: Wiring) -> APIRouter:
    payments = Payments(wiring.own)
    wiring.follow("cosec", partial(handlers.handle_commands, payments))
    wiring.follow("ordering", partial(handlers.handle_orders, payments))
    return api.router(payments)


SERVICE = Service("payments", (), build)
