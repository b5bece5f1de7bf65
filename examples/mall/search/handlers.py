"""Search's messages in: ordering's order events, on its own inbox (it sees all of them)."""

from __future__ import annotations

from functools import partial

from streamsource.messaging import Service

from ..ordering import messages as m
from ..platform.storage import ServiceStore
from .application import index


def register(service: Service, own: ServiceStore) -> None:
    for event in (
        m.OrderCreated,
        m.OrderApproved,
        m.OrderReadied,
        m.OrderCompleted,
        m.OrderRejected,
        m.OrderCanceled,
    ):
        service.handle(event, partial(index, own), source="ordering")
