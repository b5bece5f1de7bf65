"""Depot's messages in: the saga's CreateShoppingList (reply: the list's id),
CancelShoppingList and InitiateShopping (which makes the list available: the original never
handled it); ordering's OrderCanceled. Out: ShoppingListCompleted readies the order."""

from __future__ import annotations

import streamsource as ss

from ..platform.messaging import command_of, reply_to
from ..platform.storage import Unit
from .application import Depot, shopping_id_of


def handle_commands(depot: Depot, event: ss.RecordedEvent) -> Unit | None:
    cmd = command_of(event, "depot")
    if cmd is None:
        return None
    try:
        if cmd.name == "CreateShoppingList":
            unit, id = depot.create(event)
            return reply_to(unit, cmd, data={"shoppingId": id})
        shopping_id = str(event.data.get("shoppingId") or shopping_id_of(event.data["orderId"]))
        if cmd.name == "CancelShoppingList":
            if not depot.repository.exists(shopping_id):  # never made: nothing to undo
                return reply_to(Unit(cause=event), cmd)
            unit = depot.change(shopping_id, lambda s: s.cancel(), event)
        elif cmd.name == "InitiateShopping":
            unit = depot.change(shopping_id, lambda s: s.initiate(), event)
        else:
            return None
    except ss.DomainError as refused:
        return reply_to(Unit(cause=event), cmd, failure=str(refused))
    return reply_to(unit, cmd)


def handle_orders(depot: Depot, event: ss.RecordedEvent) -> Unit | None:
    if event.type != "OrderCanceled":
        return None
    shopping_id = shopping_id_of(event.stream.partition("-")[2])
    if not depot.repository.exists(shopping_id):
        return None
    return depot.change(shopping_id, lambda s: s.cancel(), event)
