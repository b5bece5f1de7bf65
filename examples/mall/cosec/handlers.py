"""Cosec's messages in: OrderCreated starts the saga; replies from customers, depot, payments
and ordering move it. Out: the saga's commands (its own events, routed by metadata)."""

from __future__ import annotations

import streamsource as ss

from ..platform.messaging import reply_of
from ..platform.storage import Unit
from .application import Sagas


def handle_orders(sagas: Sagas, event: ss.RecordedEvent) -> Unit | None:
    unit = handle_replies(sagas, event)
    if unit is None and event.type == "OrderCreated":
        return sagas.start(event)
    return unit


def handle_replies(sagas: Sagas, event: ss.RecordedEvent) -> Unit | None:
    reply = reply_of(event, "cosec")
    if reply is None:
        return None
    return sagas.advance(str(reply["sagaId"]), lambda s: s.on_reply(reply), event)
