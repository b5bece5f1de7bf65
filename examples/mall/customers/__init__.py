"""The customers service: RegisterCustomer, ChangeSmsNumber, Enable/Disable, AuthorizeCustomer."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Customers


def build(wiring: Wiring) -> APIRouter:
    customers = Customers(wiring.own)
    wiring.follow("cosec", partial(handlers.handle_commands, customers))
    return api.router(customers)


SERVICE = Service("customers", (), build)
