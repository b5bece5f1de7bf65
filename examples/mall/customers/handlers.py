"""Customers' messages in: the AuthorizeCustomer command (a disabled customer is refused)."""

from __future__ import annotations

import streamsource as ss

from ..platform.http import NotFound
from ..platform.messaging import command_of, reply_to
from ..platform.storage import Unit
from .application import Customers


def handle_commands(customers: Customers, event: ss.RecordedEvent) -> Unit | None:
    cmd = command_of(event, "customers")
    if cmd is None or cmd.name != "AuthorizeCustomer":
        return None
    unit = Unit(cause=event)
    try:
        customer = customers.load(str(event.data["customerId"]))
        customer.authorize(str(event.data["orderId"]))
    except (NotFound, ss.DomainError) as refused:
        return reply_to(unit, cmd, failure=str(refused))
    unit.save(customer)
    return reply_to(unit, cmd)
