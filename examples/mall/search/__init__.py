"""The search service: orders, searchable."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Search


def build(wiring: Wiring) -> APIRouter:
    handlers.register(wiring.own.messages, wiring.own)
    return api.router(Search(wiring.own))


SERVICE = Service("search", TABLES, build)
