"""A three-service test domain for sagas: ``orders`` runs the PlaceOrder saga, asking
``stock`` to reserve (compensation: release) and ``payments`` to charge (compensation:
refund), then confirming the order with itself.

Participants keep what they did in their own tables (written in the handler's transaction),
so a test checks the net effect a user would: a completed order has stock reserved and
money taken, a compensated one has neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamsource.eventstore.domain import EventRegistry
from streamsource.eventstore.store import EventStore
from streamsource.messaging import (
    Channels,
    Command,
    Context,
    IntegrationEvent,
    Refused,
    Reply,
    Service,
)
from streamsource.sagas import Saga, SagaCommand, Step

registry = EventRegistry()
CHANNELS = Channels("mall")


@registry.event("ReserveStock")
class ReserveStock(Command, frozen=True):
    order: str
    quantity: int


@registry.event("ReleaseStock")
class ReleaseStock(Command, frozen=True):
    order: str


@registry.event("ChargeCustomer")
class ChargeCustomer(Command, frozen=True):
    order: str
    amount: int


@registry.event("RefundCustomer")
class RefundCustomer(Command, frozen=True):
    order: str


@registry.event("CustomerCharged")
class CustomerCharged(Reply, frozen=True):
    payment_id: str


@registry.event("ConfirmOrder")
class ConfirmOrder(Command, frozen=True):
    order: str


class PlaceOrder(Saga):
    name = "PlaceOrder"
    steps = (
        Step(
            "reserve",
            lambda d: SagaCommand("stock", ReserveStock(d["order"], d["quantity"])),
            lambda d: SagaCommand("stock", ReleaseStock(d["order"])),
            timeout=10.0,
        ),
        Step(
            "charge",
            lambda d: SagaCommand("payments", ChargeCustomer(d["order"], d["amount"])),
            lambda d: SagaCommand("payments", RefundCustomer(d["order"])),
            on_reply=lambda d, reply: {**d, "payment": reply["payment_id"]},
            timeout=10.0,
        ),
        Step("confirm", lambda d: SagaCommand("orders", ConfirmOrder(d["order"]))),
    )
    compensation_attempts = 3


def _table(store: EventStore, name: str) -> None:
    with store.transaction() as tx:
        tx.execute(f"CREATE TABLE IF NOT EXISTS {name} (item TEXT PRIMARY KEY, state TEXT)")


def _set(ctx: Context, table: str, item: str, state: str) -> None:
    d = ctx.tx.dialect
    ctx.write(lambda tx: tx.execute(d.upsert(table, ("item", "state"), ("item",)), (item, state)))


def rows(store: EventStore, table: str) -> dict[str, str]:
    with store.transaction() as tx:
        return {str(k): str(v) for k, v in tx.execute(f"SELECT item, state FROM {table}")}


Hook = Callable[[Context, Any], None]


def stock_service(store: EventStore, on_release: Hook | None = None) -> Service:
    """Stock: reserves up to 10 items per order; ``on_release`` runs first in Release."""
    service = Service("stock", store, registry=registry, channels=CHANNELS)
    _table(store, "stock")

    def reserve(ctx: Context, command: ReserveStock) -> None:
        if command.quantity > 10:
            raise Refused(f"only 10 in stock, {command.quantity} asked")
        _set(ctx, "stock", command.order, "reserved")

    service.handle(ReserveStock, reserve)

    def release(ctx: Context, command: ReleaseStock) -> None:
        if on_release is not None:
            on_release(ctx, command)
        _set(ctx, "stock", command.order, "released")

    service.handle(ReleaseStock, release)

    return service


def payments_service(store: EventStore) -> Service:
    """Payments: charges up to 100 per order."""
    service = Service("payments", store, registry=registry, channels=CHANNELS)
    _table(store, "payments")

    def charge(ctx: Context, command: ChargeCustomer) -> CustomerCharged:
        if command.amount > 100:
            raise Refused(f"card limit is 100, {command.amount} asked")
        _set(ctx, "payments", command.order, "charged")
        return CustomerCharged(f"pay-{command.order}")

    service.handle(ChargeCustomer, charge)

    def refund(ctx: Context, command: RefundCustomer) -> None:
        _set(ctx, "payments", command.order, "refunded")

    service.handle(RefundCustomer, refund)

    return service


def orders_service(store: EventStore) -> Service:
    service = Service("orders", store, registry=registry, channels=CHANNELS)
    _table(store, "orders")

    def confirm(ctx: Context, command: ConfirmOrder) -> None:
        _set(ctx, "orders", command.order, "confirmed")

    service.handle(ConfirmOrder, confirm)

    return service


@registry.event("OrderSubmitted")
class OrderSubmitted(IntegrationEvent, frozen=True):
    order: str
    amount: int
