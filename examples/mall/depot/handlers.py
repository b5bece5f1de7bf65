"""Depot's messages in: the saga's CreateShoppingList (reply: the list's id),
CancelShoppingList and InitiateShopping; ordering's OrderCanceled."""

from __future__ import annotations

from streamsource.messaging import Context, Service

from ..ordering.messages import OrderCanceled
from . import messages as m
from .application import change, exists, shopping_id_of
from .domain import ShoppingList


def create(ctx: Context, command: m.CreateShoppingList) -> m.ShoppingListCreated:
    id = shopping_id_of(command.order_id)
    if not exists(ctx, id):
        ctx.create(ShoppingList, id).create(command.order_id, command.items)
    return m.ShoppingListCreated(id)


def cancel(ctx: Context, command: m.CancelShoppingList) -> None:
    id = shopping_id_of(command.order_id)
    if exists(ctx, id):  # never made: nothing to undo
        change(ctx, id, lambda s: s.cancel())


def initiate(ctx: Context, command: m.InitiateShopping) -> None:
    change(ctx, command.shopping_id, lambda s: s.initiate())


def order_canceled(ctx: Context, event: OrderCanceled) -> None:
    id = shopping_id_of(event.order_id)
    if exists(ctx, id):
        change(ctx, id, lambda s: s.cancel())


def register(service: Service) -> None:
    service.handle(m.CreateShoppingList, create)
    service.handle(m.CancelShoppingList, cancel)
    service.handle(m.InitiateShopping, initiate)
    service.handle(OrderCanceled, order_canceled, source="ordering")
