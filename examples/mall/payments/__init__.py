"""The payments service: authorized payments, their confirmation, invoices."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Payments


def build(wiring: Wiring) -> APIRouter:
    handlers.register(wiring.own.messages)
    return api.router(Payments(wiring.own))


SERVICE = Service("payments", (), build)
