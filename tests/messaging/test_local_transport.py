"""Commands, replies and integration events between two services through the in-process
transport, on real SQLite and PostgreSQL stores: each message takes effect once, refusals
answer, faults retry then park."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from messaging.shop import (
    CHANNELS,
    AccountCharged,
    Charge,
    Debited,
    answers,
    orders_service,
    payments_service,
    registry,
)
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import checkpoints_for
from streamsource.errors import InterfaceError, OperationalError, ProgrammingError
from streamsource.eventstore.events import NewEvent
from streamsource.messaging import (
    Context,
    HandlerConflict,
    IntegrationEvent,
    LocalTransport,
    Service,
    TransientFault,
    outbox_stream,
)

FAST = Backoff(base=0.001, cap=0.002)


def _pair(
    open_store: Callable[[], Any], wrap: Any = None, **options: Any
) -> tuple[Service, Service]:
    return orders_service(open_store()), payments_service(open_store(), wrap, **options)


def _account(service: Service, id: str) -> list[Any]:
    return list(service.store.read_stream(f"account-{id}"))


def test_a_command_is_handled_once_and_answered(open_store: Callable[[], Any]) -> None:
    orders, payments = _pair(open_store)
    seen: list[Any] = []
    audit = Service("audit", open_store(), registry=registry, channels=orders.channels)
    audit.handle(AccountCharged, lambda ctx, event: seen.append((ctx.envelope, event)),
                 source="payments")  # fmt: skip
    transport = LocalTransport([orders, payments, audit])

    sent = orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    transport.drain()
    transport.drain()  # nothing more: every message was delivered once

    account = list(payments.store.read_stream("account-acc-1"))
    assert [event.type for event in account] == ["Debited"]
    assert account[0].correlation_id == sent.correlation_id == sent.message_id
    assert account[0].causation_id == sent.message_id

    [(_, causation, correlation, name, detail)] = answers(orders.store)
    assert (causation, correlation, name) == (sent.message_id, sent.message_id, "Charged")
    assert detail == "{'account': 'acc-1', 'balance': 70}"

    [(envelope, event)] = seen
    assert event == AccountCharged("acc-1", 30)
    assert envelope.correlation_id == sent.message_id
    assert envelope.channel == "shop.payments.events"
    assert envelope.key == "acc-1"


def test_redelivered_messages_are_skipped(open_store: Callable[[], Any]) -> None:
    orders, payments = _pair(open_store)
    orders.send(Charge("acc-1", 10, "EUR"), to="payments")
    [command] = orders.store.read_stream(outbox_stream("orders", "shop.payments.commands"))
    assert payments.deliver(command) == "handled"
    assert payments.deliver(command) == "duplicate"
    LocalTransport([orders, payments]).drain()  # the transport delivers it once more
    assert [e.type for e in payments.store.read_stream("account-acc-1")] == ["Debited"]
    assert len(answers(orders.store)) == 1


def test_many_messages_are_delivered_in_order_and_once(open_store: Callable[[], Any]) -> None:
    orders, payments = _pair(open_store)
    for amount in range(1, 13):
        orders.send(Charge("acc-1", amount, "EUR"), to="payments")
    transport = LocalTransport([orders, payments])
    transport.drain()
    transport.drain()
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == list(range(1, 13))
    assert len(answers(orders.store)) == 12


def test_senders_names_the_outboxes_a_transport_reads(open_store: Callable[[], Any]) -> None:
    orders, payments = _pair(open_store)
    orders.send(Charge("acc-1", 10, "EUR"), to="payments")
    # payments' transport reads orders' outbox only: the command, not its own reply
    to_payments = LocalTransport([payments], senders=[orders], name="to.payments")
    to_payments.drain()
    assert [e.type for e in _account(payments, "acc-1")] == ["Debited"]
    assert answers(orders.store) == []  # orders receives nothing from this transport
    assert checkpoints_for(payments.store).load("messages.to.payments.payments") == 0
    assert checkpoints_for(orders.store).load("messages.to.payments.orders") > 0

    LocalTransport([orders], senders=[payments], name="to.orders").drain()
    assert len(answers(orders.store)) == 1
    assert to_payments.pump() == 0  # the reply is not the payments transport's to read
    with pytest.raises(InterfaceError, match="share a name"):
        LocalTransport([payments], senders=[orders, orders])


def test_a_running_transport_wakes_on_an_append_in_this_process(
    open_store: Callable[[], Any],
) -> None:
    # idle_wait far beyond the deadline: only the append signal can wake it in time
    orders, payments = _pair(open_store)
    with LocalTransport([orders, payments], idle_wait=600, checkpoint_every=600):
        for amount in (10, 20):
            orders.send(Charge("acc-1", amount, "EUR"), to="payments")
            deadline = time.monotonic() + 20
            while len(answers(orders.store)) < amount // 10:
                assert time.monotonic() < deadline, "the transport was not woken"
                time.sleep(0.01)
    # stopping saved the checkpoints: a new transport has nothing left to deliver
    again = LocalTransport([orders, payments])
    assert again.pump() == 0


def test_a_business_refusal_answers_with_a_failure_and_keeps_nothing(
    open_store: Callable[[], Any],
) -> None:
    attempts: list[int] = []

    def counting(charge: Any) -> Any:
        def handler(ctx: Context, command: Charge) -> Any:
            attempts.append(1)
            return charge(ctx, command)

        return handler

    orders, payments = _pair(open_store, counting)
    sent = orders.send(Charge("acc-1", 500, "EUR"), to="payments")
    LocalTransport([orders, payments]).drain()

    assert attempts == [1]  # never retried
    assert _account(payments, "acc-1") == []
    assert list(payments.store.read_stream(outbox_stream("payments", "shop.payments.events"))) == []
    [(_, causation, _, name, detail)] = answers(orders.store)
    assert (causation, name) == (sent.message_id, "streamsource.Failure")
    assert detail == "refused: account acc-1: balance 100 is below 500"


def test_a_transient_fault_is_retried_and_applied_once(open_store: Callable[[], Any]) -> None:
    failures: list[Exception] = [TransientFault("partner away"), _Busy("database is locked")]

    def flaky(charge: Any) -> Any:
        def handler(ctx: Context, command: Charge) -> Any:
            result = charge(ctx, command)  # effects recorded, then the fault: rolled back
            if failures:
                raise failures.pop(0)
            return result

        return handler

    orders, payments = _pair(open_store, flaky, backoff=FAST)
    orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    LocalTransport([orders, payments]).drain()
    assert [e.data for e in _account(payments, "acc-1")] == [{"amount": 30}]
    assert failures == []
    [(_, _, _, name, _)] = answers(orders.store)
    assert name == "Charged"


def test_a_fault_that_persists_parks_the_message_with_its_error(
    open_store: Callable[[], Any],
) -> None:
    calls: list[int] = []

    def broken(charge: Any) -> Any:
        def handler(ctx: Context, command: Charge) -> Any:
            calls.append(1)
            raise TransientFault("ledger unreachable")

        return handler

    orders, payments = _pair(open_store, broken, max_attempts=3, backoff=FAST)
    sent = orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    LocalTransport([orders, payments]).drain()

    assert len(calls) == 3
    [parked] = payments.store.read_stream(outbox_stream("payments", "shop.payments.dead-letters"))
    assert parked.type == "Charge"
    assert parked.data == {"account": "acc-1", "amount": 30, "currency": "EUR"}
    letter = parked.metadata["dead_letter"]
    assert letter["message_id"] == sent.message_id
    assert letter["error"] == "ledger unreachable"
    assert (letter["attempts"], letter["service"]) == (3, "payments")
    assert parked.metadata["channel"] == "shop.payments.commands"
    [(_, causation, _, name, detail)] = answers(orders.store)
    assert (causation, name, detail) == (sent.message_id, "streamsource.Failure",
                                         "fault: ledger unreachable")  # fmt: skip


def test_a_bug_is_parked_at_once(open_store: Callable[[], Any]) -> None:
    calls: list[int] = []

    def buggy(charge: Any) -> Any:
        def handler(ctx: Context, command: Charge) -> Any:
            calls.append(1)
            raise KeyError("oops")

        return handler

    orders, payments = _pair(open_store, buggy)
    orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    LocalTransport([orders, payments]).drain()
    assert calls == [1]
    [parked] = payments.store.read_stream(outbox_stream("payments", "shop.payments.dead-letters"))
    assert parked.metadata["dead_letter"]["error_type"] == "KeyError"


def test_an_old_schema_version_is_upcast(open_store: Callable[[], Any]) -> None:
    orders, payments = _pair(open_store)
    old = orders.send(Charge("acc-1", 30, "EUR"), to="payments")
    # a message written by an older version of the orders service: schema 1, no currency
    with orders.store.transaction() as tx:
        metadata = {**dict(next(iter(orders.store.read_all())).metadata), "schema_version": 1}
        tx.append(
            outbox_stream("orders", "shop.payments.commands"),
            NewEvent("Charge", {"account": "acc-2", "amount": 5}, metadata=metadata),
        )
    LocalTransport([orders, payments]).drain()
    assert [e.data for e in _account(payments, "acc-2")] == [{"amount": 5}]
    assert old.schema_version == 2
    assert len(answers(orders.store)) == 2


def test_events_of_an_unhandled_type_are_ignored_without_a_trace(
    open_store: Callable[[], Any],
) -> None:
    orders, payments = _pair(open_store)
    payments.publish(AccountCharged("acc-9", 1))
    other = Service("other", open_store(), registry=registry, channels=orders.channels)
    other.handle(Charge, lambda ctx, c: None)  # receives commands, not payments' events
    LocalTransport([orders, payments, other]).drain()
    [event] = payments.store.read_category("messages.payments")
    assert other.deliver(event) == "ignored"


def test_a_domain_event_class_is_not_a_message(open_store: Callable[[], Any]) -> None:
    _, payments = _pair(open_store)
    with pytest.raises(ProgrammingError, match="not a message class"):
        payments.handle(Debited, lambda ctx, event: None)
    with pytest.raises(HandlerConflict, match="already handles Charge"):
        payments.handle(Charge, lambda ctx, event: None)
    with pytest.raises(HandlerConflict, match="needs source="):
        payments.handle(AccountCharged, lambda ctx, event: None)


class _Busy(OperationalError):
    retriable = True


def test_the_same_message_delivered_at_once_by_several_members_applies_once(
    open_store: Callable[[], Any],
) -> None:
    orders, payments = _pair(open_store, backoff=FAST)
    orders.send(Charge("acc-1", 10, "EUR"), to="payments")
    [command] = orders.store.read_stream(outbox_stream("orders", "shop.payments.commands"))
    start = threading.Barrier(6)

    def member() -> str:
        start.wait(30)
        return payments.deliver(command)

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(lambda _: member(), range(6)))
    assert outcomes == ["duplicate"] * 5 + ["handled"]
    assert [e.data for e in _account(payments, "acc-1")] == [{"amount": 10}]
    replies = list(payments.store.read_stream(outbox_stream("payments", "shop.orders.replies")))
    assert len(replies) == 1


def _commits(service: Service) -> int | None:
    """The commits of the service's store so far (SQLite; None elsewhere)."""
    stats = service.store.stats()
    return int(stats["commits"]) if stats["backend"] == "sqlite" else None


def test_a_batch_is_applied_in_one_transaction_each_handler_seeing_the_ones_before(
    open_store: Callable[[], Any],
) -> None:
    orders, payments = _pair(open_store)
    for amount in (10, 20, 30):
        orders.send(Charge("acc-1", amount, "EUR"), to="payments")
    commands = list(orders.store.read_stream(outbox_stream("orders", "shop.payments.commands")))
    before = _commits(payments)
    outcomes = payments.deliver_batch([(command, None) for command in [*commands, commands[0]]])
    assert outcomes == ["handled"] * 3 + ["duplicate"]
    if before is not None:  # SQLite: the inbox row is claimed first, one commit for all
        assert _commits(payments) == before + 1
    # each charge loaded the account as the one before it left it
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == [10, 20, 30]
    LocalTransport([orders], senders=[payments]).drain()
    balances = sorted(detail for *_, detail in answers(orders.store))
    assert balances == [
        "{'account': 'acc-1', 'balance': 40}",
        "{'account': 'acc-1', 'balance': 70}",
        "{'account': 'acc-1', 'balance': 90}",
    ]


def test_a_refusal_in_a_batch_is_answered_and_the_others_applied_once(
    open_store: Callable[[], Any],
) -> None:
    orders, payments = _pair(open_store)
    for amount in (60, 500, 30):  # the second one is above the balance
        orders.send(Charge("acc-1", amount, "EUR"), to="payments")
    commands = list(orders.store.read_stream(outbox_stream("orders", "shop.payments.commands")))
    outcomes = payments.deliver_batch([(command, None) for command in commands])
    assert outcomes == ["handled", "refused", "handled"]
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == [60, 30]
    assert payments.deliver_batch([(command, None) for command in commands]) == ["duplicate"] * 3
    LocalTransport([orders], senders=[payments]).drain()
    details = sorted(detail for *_, detail in answers(orders.store))
    assert details == [
        "refused: account acc-1: balance 40 is below 500",
        "{'account': 'acc-1', 'balance': 10}",
        "{'account': 'acc-1', 'balance': 40}",
    ]


@registry.event("AccountClosed")
class AccountClosed(IntegrationEvent, frozen=True):
    account: str


def _commands(orders: Service) -> list[Any]:
    return list(orders.store.read_stream(outbox_stream("orders", "shop.payments.commands")))


def test_a_prepared_batch_is_seen_by_nobody_until_committed_on_another_thread(
    open_store: Callable[[], Any],
) -> None:
    orders, payments = _pair(open_store)
    for amount in (10, 20):
        orders.send(Charge("acc-1", amount, "EUR"), to="payments")
    commands = _commands(orders)
    prepared = payments.prepare_batch([(command, None) for command in commands])
    if _commits(payments) is not None:  # SQLite: the handlers ran, the commit is to come
        assert _account(payments, "acc-1") == []
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(prepared.commit).result(timeout=30) == ["handled", "handled"]
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == [10, 20]
    assert payments.deliver(commands[0]) == "duplicate"  # the store is free, the inbox has it


def test_an_abandoned_batch_leaves_nothing_behind(open_store: Callable[[], Any]) -> None:
    orders, payments = _pair(open_store)
    orders.send(Charge("acc-1", 10, "EUR"), to="payments")
    orders.send(Charge("acc-1", 20, "EUR"), to="payments")
    batch = [(command, None) for command in _commands(orders)]
    payments.prepare_batch(batch).abandon()
    if _commits(payments) is not None:
        assert _account(payments, "acc-1") == []
        assert payments.deliver_batch(batch) == ["handled", "handled"]  # nothing was claimed
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == [10, 20]


def test_an_event_its_receiver_has_no_handler_for_costs_it_no_transaction(
    open_store: Callable[[], Any],
) -> None:
    payments = payments_service(open_store())
    seen: list[str] = []
    audit = Service("audit", open_store(), registry=registry, channels=CHANNELS)
    audit.handle(AccountCharged, lambda ctx, event: seen.append(event.account), source="payments")
    payments.publish(AccountClosed("acc-1"))  # on the channel audit reads, but not for it
    transport = LocalTransport([audit], senders=[payments])
    before = _commits(audit)
    assert transport.pump() == 1
    assert transport.delivered == 0
    if before is not None:
        assert _commits(audit) == before
    payments.publish(AccountCharged("acc-2", 5))
    transport.drain()
    assert seen == ["acc-2"]


def test_a_round_moves_on_only_once_every_receiver_committed_its_share(
    store_url_factory: Callable[[], str], open_store: Callable[..., Any]
) -> None:
    # payments and audit both receive from orders' round; audit's store fails: the round
    # is read again, payments' inbox skips what it applied, audit gets everything once
    orders, payments = _pair(open_store)
    audit_url = store_url_factory()
    seen: list[str] = []

    def audit_service(store: Any) -> Service:
        audit = Service("audit", store, registry=registry, channels=CHANNELS)
        audit.handle(Charge, lambda ctx, command: seen.append(command.account))
        return audit

    orders.send(Charge("acc-1", 10, "EUR"), to="payments")
    orders.send(Charge("acc-2", 20, "EUR"), to="audit")
    broken = open_store(audit_url)
    audit = audit_service(broken)
    broken.close()
    with pytest.raises(InterfaceError, match="closed"):
        LocalTransport([payments, audit], senders=[orders], name="t").drain()
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == [10]
    assert seen == []
    audit = audit_service(open_store(audit_url))
    LocalTransport([payments, audit], senders=[orders], name="t").drain()
    assert seen == ["acc-2"]
    assert [e.data["amount"] for e in _account(payments, "acc-1")] == [10]  # skipped
