"""The ordering service: orders from checkout to completion."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Ordering


def build(wiring: Wiring) -> APIRouter:
    handlers.register(wiring.own.messages)
    return api.router(Ordering(wiring.own))


SERVICE = Service("ordering", (), build)
