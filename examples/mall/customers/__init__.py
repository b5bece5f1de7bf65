"""The customers service: RegisterCustomer, ChangeSmsNumber, Enable/Disable, AuthorizeCustomer."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Customers
from .messages import AuthorizeCustomer


def build(wiring: Wiring) -> APIRouter:
    wiring.own.messages.handle(AuthorizeCustomer, handlers.authorize)
    return api.router(Customers(wiring.own))


SERVICE = Service("customers", (), build)
