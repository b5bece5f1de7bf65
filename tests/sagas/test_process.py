"""A process manager reacting to events of two services, in either order, exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamsource.eventstore.domain import EventRegistry
from streamsource.messaging import (
    Channels,
    Command,
    Context,
    IntegrationEvent,
    LocalTransport,
    Service,
)
from streamsource.sagas import Process, ProcessManager, ProcessRunner, reacts

from .mall import rows

registry = EventRegistry()
CHANNELS = Channels("mall")


@registry.event("OrderPlaced")
class OrderPlaced(IntegrationEvent, frozen=True):
    order: str
    address: str


@registry.event("OrderCancelled")
class OrderCancelled(IntegrationEvent, frozen=True):
    order: str


@registry.event("PaymentReceived")
class PaymentReceived(IntegrationEvent, frozen=True):
    order: str
    amount: int


@registry.event("ShipOrder")
class ShipOrder(Command, frozen=True):
    order: str
    address: str


class Shipping(ProcessManager):
    name = "Shipping"

    @reacts(OrderPlaced, source="ordering", key=lambda e: e.order, starts=True)
    def placed(self, process: Process, event: OrderPlaced) -> None:
        process.data["address"] = event.address
        self.ship_when_ready(process)

    @reacts(PaymentReceived, source="payments", key=lambda e: e.order, starts=True)
    def paid(self, process: Process, event: PaymentReceived) -> None:
        process.data["paid"] = event.amount
        self.ship_when_ready(process)

    @reacts(OrderCancelled, source="ordering", key=lambda e: e.order)
    def cancelled(self, process: Process, event: OrderCancelled) -> None:
        process.data["cancelled"] = True
        process.finish()

    def ship_when_ready(self, process: Process) -> None:
        if "paid" in process.data and "address" in process.data:
            process.send("warehouse", ShipOrder(process.key, process.data["address"]))
            process.finish()


def services(open_store: Callable[..., Any]) -> tuple[Service, Service, Service, ProcessRunner]:
    ordering = Service("ordering", open_store(), registry=registry, channels=CHANNELS)
    payments = Service("payments", open_store(), registry=registry, channels=CHANNELS)
    shipping = Service("shipping", open_store(), registry=registry, channels=CHANNELS)
    warehouse = Service("warehouse", open_store(), registry=registry, channels=CHANNELS)
    with warehouse.store.transaction() as tx:
        tx.execute("CREATE TABLE shipments (item TEXT PRIMARY KEY, state TEXT)")

    def ship(ctx: Context, command: ShipOrder) -> None:
        d = ctx.tx.dialect
        insert = f"INSERT INTO shipments VALUES ({d.marks(2)})"
        ctx.write(lambda tx: tx.execute(insert, (command.order, command.address)))

    warehouse.handle(ShipOrder, ship)
    runner = ProcessRunner(shipping, [Shipping()])
    return ordering, payments, warehouse, runner


@pytest.mark.parametrize("payment_first", [False, True])
def test_the_process_acts_once_both_events_are_in(
    open_store: Callable[..., Any], payment_first: bool
) -> None:
    ordering, payments, warehouse, runner = services(open_store)
    everyone = [ordering, payments, runner.service, warehouse]
    place = lambda: ordering.publish(OrderPlaced("o-1", "1 Main St"))  # noqa: E731
    pay = lambda: payments.publish(PaymentReceived("o-1", 50))  # noqa: E731
    first, second = (pay, place) if payment_first else (place, pay)
    first()
    LocalTransport(everyone).drain()
    state = runner.load(Shipping(), "o-1")
    assert state is not None and state.status == "running"
    assert rows(warehouse.store, "shipments") == {}
    second()
    LocalTransport(everyone).drain()
    state = runner.load(Shipping(), "o-1")
    assert state is not None and state.status == "completed"
    assert state.data == {"address": "1 Main St", "paid": 50}
    assert [h.event for h in state.history] == [
        "reacted to PaymentReceived" if payment_first else "reacted to OrderPlaced",
        "reacted to OrderPlaced" if payment_first else "reacted to PaymentReceived",
        "completed",
    ]
    assert rows(warehouse.store, "shipments") == {"o-1": "1 Main St"}

    # everything delivered again (a new transport from the start): the inboxes skip it all
    LocalTransport(everyone, name="replay").drain()
    assert rows(warehouse.store, "shipments") == {"o-1": "1 Main St"}
    assert runner.load(Shipping(), "o-1") == state


def test_events_without_a_process_or_after_its_end_are_ignored(
    open_store: Callable[..., Any],
) -> None:
    ordering, payments, warehouse, runner = services(open_store)
    transport = LocalTransport([ordering, payments, runner.service, warehouse])
    ordering.publish(OrderCancelled("o-9"))  # does not start a process
    ordering.publish(OrderPlaced("o-1", "1 Main St"))
    ordering.publish(OrderCancelled("o-1"))
    payments.publish(PaymentReceived("o-1", 50))  # after the end
    transport.drain()
    assert runner.load(Shipping(), "o-9") is None
    state = runner.load(Shipping(), "o-1")
    assert state is not None and state.status == "completed" and state.data["cancelled"]
    assert "paid" not in state.data
    assert rows(warehouse.store, "shipments") == {}
