"""Cosec's messages in: OrderCreated starts the saga; the engine takes the replies (on
``mall.cosec.replies.CreateOrderSaga``) and sends the commands."""

from __future__ import annotations

from streamsource.messaging import Service

from ..ordering.messages import OrderCreated
from .application import Sagas


def register(service: Service, sagas: Sagas) -> None:
    service.handle(OrderCreated, sagas.start, source="ordering")
