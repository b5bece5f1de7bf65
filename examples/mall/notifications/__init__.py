"""The notifications service: what customers are told about their orders."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import TABLES, Notifications


def build(wiring: Wiring) -> APIRouter:
    notifications = Notifications(wiring.own)
    handlers.register(wiring.own.messages, notifications)
    return api.router(notifications)


SERVICE = Service("notifications", TABLES, build)
