"""The asyncio API on real SQLite and PostgreSQL stores: coroutine handlers, one transaction
per message, refusals answered, faults retried then parked, redeliveries skipped; and sync
and asyncio services exchanging messages (the same outbox events)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import streamsource as ss
from messaging.shop import (
    CHANNELS,
    Account,
    AccountCharged,
    Charge,
    Charged,
    answers,
    orders_service,
    registry,
)
from streamsource.bridge.backoff import Backoff
from streamsource.eventstore.domain import AggregateNotFound
from streamsource.messaging import (
    AsyncContext,
    AsyncLocalTransport,
    AsyncService,
    Failure,
    TransientFault,
    outbox_stream,
)


@pytest.fixture
async def open_async(store_url_factory: Callable[[], str]) -> AsyncIterator[Any]:
    opened: list[ss.AsyncEventStore] = []

    async def make(url: str | None = None) -> ss.AsyncEventStore:
        store = await ss.open_async_store(url or store_url_factory())
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


def async_payments(store: ss.AsyncEventStore, faults: list[Exception], **options: Any) -> Any:
    service = AsyncService("payments", store, registry=registry, channels=CHANNELS, **options)

    @service.handle(Charge)
    async def charge(ctx: AsyncContext, command: Charge) -> Charged:
        try:
            account = await ctx.load(Account, command.account)
        except AggregateNotFound:
            account = ctx.create(Account, command.account)
        account.debit(command.amount)
        ctx.publish(AccountCharged(command.account, command.amount), key=command.account)
        if faults:
            raise faults.pop(0)
        return Charged(command.account, account.balance)

    return service


async def test_an_async_service_answers_a_sync_one(
    open_async: Any, open_store: Callable[[], Any]
) -> None:
    orders = orders_service(open_store())
    payments_store = await open_async()
    payments = async_payments(payments_store, [TransientFault("once")], backoff=Backoff(0.001))
    async_side = AsyncLocalTransport([payments])

    charge = orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    refused = orders.send(Charge("acc-2", 500, "EUR"), to="payments")
    [sent, sent_refused] = list(
        orders.store.read_stream(outbox_stream("orders", "shop.payments.commands"))
    )
    for event in (sent, sent_refused):
        assert await payments.deliver(event) in ("handled", "refused")
        assert await payments.deliver(event) == "duplicate"
    await async_side.drain()  # its outbox: the replies, delivered to nobody here

    debits = [e async for e in payments_store.read_stream("account-acc-1")]
    assert [e.data for e in debits] == [{"amount": 30}]  # retried once, applied once
    assert debits[0].causation_id == charge.message_id
    replies = [e async for e in payments_store.read_category("messages.payments")]
    by_cause = {e.causation_id: e for e in replies if e.stream.endswith("orders.replies")}
    assert by_cause[charge.message_id].type == "Charged"
    failure = by_cause[refused.message_id]
    assert failure.type == "streamsource.Failure"
    assert failure.data == {"reason": "account acc-2: balance 100 is below 500", "refused": True}
    for reply in (by_cause[charge.message_id], failure):  # the sync service reads them
        assert orders.deliver(reply) == "handled"
    assert sorted(row[3] for row in answers(orders.store)) == ["Charged", "streamsource.Failure"]


async def test_async_services_between_them_park_a_persistent_fault(open_async: Any) -> None:
    got: list[Any] = []
    orders = AsyncService("orders", await open_async(), registry=registry, channels=CHANNELS)
    orders.handle(Failure, lambda ctx, reply: got.append((ctx.envelope, reply)))
    orders.handle(Charged, lambda ctx, reply: got.append((ctx.envelope, reply)))
    faults: list[Exception] = [TransientFault("ledger unreachable")] * 3
    payments = async_payments(await open_async(), faults, max_attempts=3,
                              backoff=Backoff(0.001, 0.002))  # fmt: skip
    transport = AsyncLocalTransport([orders, payments])

    sent = await orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    ok = await orders.send(Charge("acc-2", 10, "EUR"), to="payments")
    await transport.drain()

    assert faults == []
    results = {envelope.causation_id: reply for envelope, reply in got}
    assert results[sent.message_id] == Failure("ledger unreachable", refused=False)
    assert results[ok.message_id] == Charged("acc-2", 90)
    parked = [
        e async for e in payments.store.read_stream(
            outbox_stream("payments", "shop.payments.dead-letters"))
    ]  # fmt: skip
    assert [p.metadata["dead_letter"]["message_id"] for p in parked] == [sent.message_id]
    assert [e async for e in payments.store.read_stream("account-acc-1")] == []
