"""Sagas through real services: each service its own store (SQLite file or PostgreSQL
schema), messages through the in-process transport (the stores' outboxes and inboxes),
deadlines against a clock the test moves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from streamsource.messaging import Context, LocalTransport, Refused, Service
from streamsource.sagas import (
    InvalidSagaInput,
    SagaAlreadyStarted,
    SagaDataNotSerializable,
    SagaEngine,
    SagaState,
)

from .conftest import Clock
from .mall import (
    CHANNELS,
    OrderSubmitted,
    PlaceOrder,
    ReleaseStock,
    orders_service,
    payments_service,
    registry,
    rows,
    stock_service,
)


@dataclass
class Mall:
    orders: Service
    stock: Service
    payments: Service
    engine: SagaEngine
    transport: LocalTransport

    def state(self, saga_id: str) -> SagaState:
        return self.engine.load(saga_id)


def mall(open_store: Callable[..., Any], clock: Clock, **stock_options: Any) -> Mall:
    orders = orders_service(open_store())
    engine = SagaEngine(orders, [PlaceOrder], clock=clock)
    stock = stock_service(open_store(), **stock_options)
    payments = payments_service(open_store())
    return Mall(orders, stock, payments, engine, LocalTransport([orders, stock, payments]))


def order(amount: int = 50, quantity: int = 2) -> dict[str, Any]:
    return {"order": "o-1", "amount": amount, "quantity": quantity}


def test_a_saga_completes_every_step(open_store: Callable[..., Any], clock: Clock) -> None:
    m = mall(open_store, clock)
    saga_id = m.engine.start(PlaceOrder, "o-1", order())
    m.transport.drain()
    state = m.state(saga_id)
    assert state.status == "completed"
    assert state.data["payment"] == "pay-o-1"
    assert rows(m.stock.store, "stock") == {"o-1": "reserved"}
    assert rows(m.payments.store, "payments") == {"o-1": "charged"}
    assert rows(m.orders.store, "orders") == {"o-1": "confirmed"}
    assert m.engine.next_due() is None  # every timeout was cancelled by its reply


def test_a_refusal_compensates_what_was_done(open_store: Callable[..., Any], clock: Clock) -> None:
    m = mall(open_store, clock)
    saga_id = m.engine.start(PlaceOrder, "o-1", order(amount=500))
    m.transport.drain()
    state = m.state(saga_id)
    assert state.status == "compensated"
    assert state.reason == "step 'charge' refused: card limit is 100, 500 asked"
    assert rows(m.stock.store, "stock") == {"o-1": "released"}
    assert rows(m.payments.store, "payments") == {}
    assert rows(m.orders.store, "orders") == {}
    events = [h.event for h in state.history]
    assert events[-3:] == ["compensation sent", "compensation done", "compensated"]


def test_one_key_cannot_start_two_sagas(open_store: Callable[..., Any], clock: Clock) -> None:
    m = mall(open_store, clock)
    first = m.engine.start(PlaceOrder, "o-1", order())
    with pytest.raises(SagaAlreadyStarted, match="'o-1' already exists") as raised:
        m.engine.start(PlaceOrder, "o-1", order())
    assert raised.value.saga_id == first
    m.transport.drain()
    assert rows(m.payments.store, "payments") == {"o-1": "charged"}  # charged once


def test_a_step_without_a_reply_times_out_and_is_compensated(
    open_store: Callable[..., Any], clock: Clock
) -> None:
    m = mall(open_store, clock)
    saga_id = m.engine.start(PlaceOrder, "o-1", order())
    # stock is down: nothing answers the reservation
    LocalTransport([m.orders, m.payments], name="stock-down").drain()
    assert m.engine.fire_due() == 0
    clock.advance(9.9)
    assert m.engine.fire_due() == 0
    clock.advance(0.2)
    assert m.engine.fire_due() == 1
    state = m.state(saga_id)
    assert state.status == "compensating"
    assert state.reason == "step 'reserve' got no reply within 10s (1 attempts)"
    # stock comes back: the late reservation, then its release; the late reply is ignored
    m.transport.drain()
    state = m.state(saga_id)
    assert state.status == "compensated"
    assert rows(m.stock.store, "stock") == {"o-1": "released"}
    assert rows(m.payments.store, "payments") == {}


def test_deadlines_survive_a_restart(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any], clock: Clock
) -> None:
    url = store_url_factory()
    before = open_store(url)
    saga_id = SagaEngine(orders_service(before), [PlaceOrder], clock=clock).start(
        PlaceOrder, "o-1", order()
    )
    before.close()
    clock.advance(60)
    engine = SagaEngine(orders_service(open_store(url)), [PlaceOrder], clock=clock)
    assert engine.fire_due() == 1
    assert engine.load(saga_id).status == "compensating"


def test_a_deadline_fires_once_among_several_processes(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any], clock: Clock
) -> None:
    url = store_url_factory()
    engines = [SagaEngine(orders_service(open_store(url)), [PlaceOrder], clock=clock) for _ in "ab"]
    saga_id = engines[0].start(PlaceOrder, "o-1", order())
    clock.advance(60)
    fired: list[int] = []
    threads = [threading.Thread(target=lambda e=e: fired.append(e.fire_due())) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(fired) == [0, 1]
    state = engines[1].load(saga_id)
    assert [h.event for h in state.history].count("timed out") == 1
    assert state.attempt == 1  # the release was sent once


def test_a_failing_compensation_parks_the_saga_as_stuck_until_resumed(
    open_store: Callable[..., Any], clock: Clock
) -> None:
    broken = threading.Event()
    broken.set()

    def warehouse_api(ctx: Context, command: Any) -> None:
        if broken.is_set():
            raise Refused("warehouse API down")  # any answer but success fails it

    m = mall(open_store, clock, on_release=warehouse_api)
    saga_id = m.engine.start(PlaceOrder, "o-1", order(amount=500))
    m.transport.drain()
    for _ in range(PlaceOrder.compensation_attempts - 1):
        assert m.state(saga_id).status == "compensating"
        clock.advance(60)
        assert m.engine.fire_due() == 1  # the retry after the backoff
        m.transport.drain()
    state = m.state(saga_id)
    assert state.status == "stuck"
    assert state.reason is not None and "warehouse API down" in state.reason
    assert "compensation of step 'reserve' failed 3 times" in state.reason
    assert m.engine.next_due() is None  # a stuck saga waits for an operator

    broken.clear()
    m.engine.resume(saga_id)
    m.transport.drain()
    assert m.state(saga_id).status == "compensated"
    assert rows(m.stock.store, "stock") == {"o-1": "released"}


def test_bad_saga_input_is_refused_with_what_was_wrong_and_nothing_written(
    open_store: Callable[..., Any], clock: Clock
) -> None:
    m = mall(open_store, clock)
    with pytest.raises(SagaDataNotSerializable, match="its data is not JSON"):
        m.engine.start(PlaceOrder, "o-1", {"order": "o-1", "when": object()})
    with pytest.raises(SagaDataNotSerializable, match="more than 1048576"):
        m.engine.start(PlaceOrder, "o-1", {"order": "o-1", "blob": "x" * 2_000_000})
    with pytest.raises(InvalidSagaInput, match="a saga key is a string of 1-200 characters"):
        m.engine.start(PlaceOrder, "", order())
    assert m.engine.find(PlaceOrder, "o-1") is None
    m.transport.drain()
    assert rows(m.stock.store, "stock") == {}  # no command went out either
    saga_id = m.engine.start(PlaceOrder, "o-1", order())  # the key is still free
    m.transport.drain()
    assert m.state(saga_id).status == "completed"


def test_a_reply_naming_an_unknown_saga_is_parked_not_applied(
    open_store: Callable[..., Any], clock: Clock
) -> None:
    m = mall(open_store, clock)
    with m.orders.transaction() as ctx:  # a command of a saga that never was: its reply
        ctx.send(ReleaseStock("o-x"), to="stock", reply_label="PlaceOrder", saga_id="nope")
    m.transport.drain()
    dead = [
        e.metadata["dead_letter"]
        for e in m.orders.store.read_category("messages.orders")
        if "dead_letter" in e.metadata
    ]
    assert [(d["error_type"], d["error"]) for d in dead] == [
        ("SagaNotFound", "no saga with id 'nope'")
    ]


def test_an_event_starts_a_saga_once_in_its_handlers_transaction(
    open_store: Callable[..., Any], clock: Clock
) -> None:
    m = mall(open_store, clock)
    storefront = Service("storefront", open_store(), registry=registry, channels=CHANNELS)

    def submitted(ctx: Context, event: OrderSubmitted) -> None:
        data = {"order": event.order, "amount": event.amount, "quantity": 1}
        m.engine.start(PlaceOrder, event.order, data, ctx=ctx)

    m.orders.handle(OrderSubmitted, submitted, source="storefront")
    published = storefront.publish(OrderSubmitted("o-1", 20))
    everyone = [storefront, m.orders, m.stock, m.payments]
    LocalTransport(everyone).drain()
    LocalTransport(everyone, name="again").drain()  # every message once more: inboxes skip
    state = m.engine.find(PlaceOrder, "o-1")
    assert state is not None and state.status == "completed"
    assert state.correlation_id == published.correlation_id
    commands = [
        e
        for e in m.orders.store.read_category("messages.orders")
        if e.metadata["kind"] == "command"
    ]
    assert len(commands) == 3  # reserve, charge, confirm: each sent once
    assert {e.correlation_id for e in commands} == {published.correlation_id}
    assert rows(m.payments.store, "payments") == {"o-1": "charged"}
