"""The asyncio face of the saga engine: sagas started from coroutines, deadlines fired by
``async with``, on each backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from streamsource.messaging import LocalTransport
from streamsource.sagas import AsyncSagaEngine, SagaAlreadyStarted, SagaEngine

from .conftest import Clock
from .mall import PlaceOrder, orders_service, payments_service, rows, stock_service


async def until(check: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds}s for {what}")
        await asyncio.sleep(0.02)


async def test_sagas_started_from_coroutines_complete(
    open_store: Callable[..., Any], clock: Clock
) -> None:
    orders = orders_service(open_store())
    sagas = AsyncSagaEngine(SagaEngine(orders, [PlaceOrder], clock=clock))
    stock, payments = stock_service(open_store()), payments_service(open_store())
    ids = await asyncio.gather(
        *(
            sagas.start(PlaceOrder, f"o-{n}", {"order": f"o-{n}", "amount": 5, "quantity": 1})
            for n in range(8)
        )
    )
    with pytest.raises(SagaAlreadyStarted):
        await sagas.start(PlaceOrder, "o-3", {"order": "o-3", "amount": 5, "quantity": 1})
    transport = LocalTransport([orders, stock, payments])
    task = asyncio.ensure_future(transport.run_async())
    try:

        async def all_completed() -> bool:
            states = [await sagas.load(saga_id) for saga_id in ids]
            return all(s.status == "completed" for s in states)

        await until(all_completed, 60, "eight completed sagas")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert rows(payments.store, "payments") == {f"o-{n}": "charged" for n in range(8)}
    state = await sagas.find(PlaceOrder, "o-0")
    assert state is not None and state.data["payment"] == "pay-o-0"


async def test_async_with_fires_deadlines(open_store: Callable[..., Any], clock: Clock) -> None:
    orders = orders_service(open_store())
    sagas = AsyncSagaEngine(SagaEngine(orders, [PlaceOrder], clock=clock, poll_interval=0.02))
    saga_id = await sagas.start(PlaceOrder, "o-1", {"order": "o-1", "amount": 5, "quantity": 1})
    async with sagas:
        clock.advance(11)  # past the reservation's 10 s timeout; nobody answered

        async def compensating() -> bool:
            return (await sagas.load(saga_id)).status == "compensating"

        await until(compensating, 30, "the timeout to fire")
    assert (await sagas.load(saga_id)).reason == (
        "step 'reserve' got no reply within 10s (1 attempts)"
    )
