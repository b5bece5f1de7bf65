"""Notifications' messages in: ordering's order events, on its own inbox (so it sees every
one of them; the original shared a group with search and each saw half)."""

from __future__ import annotations

from streamsource.messaging import Service

from ..ordering import messages as m
from .application import Notifications


def register(service: Service, notifications: Notifications) -> None:
    for event in (
        m.OrderCreated,
        m.OrderReadied,
        m.OrderCanceled,
        m.OrderRejected,
        m.OrderCompleted,
    ):
        service.handle(event, notifications.notify, source="ordering")
