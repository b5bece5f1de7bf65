"""A two-service test domain: ``payments`` keeps accounts, ``orders`` asks it to charge them.

Importable from a subprocess (the kill -9 test runs ``payments`` in one), so it holds no
test state beyond what the stores keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from streamsource.eventstore.domain import Aggregate, EventRegistry, applies
from streamsource.eventstore.store import EventStore
from streamsource.messaging import (
    Channels,
    Command,
    Context,
    Failure,
    IntegrationEvent,
    Refused,
    Reply,
    Service,
)

registry = EventRegistry()
CHANNELS = Channels("shop")


@registry.event("Charge", version=2)
class Charge(Command, frozen=True):
    account: str
    amount: int
    currency: str


@registry.upcaster("Charge", from_version=1)
def _charge_in_euros(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


@registry.event("Charged")
class Charged(Reply, frozen=True):
    account: str
    balance: int


@registry.event("AccountCharged")
class AccountCharged(IntegrationEvent, frozen=True):
    account: str
    amount: int


# the payments service's own domain events
@registry.event("Debited")
class Debited(msgspec.Struct, frozen=True):
    amount: int


class Account(Aggregate):
    registry = registry

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.balance = 100

    def debit(self, amount: int) -> None:
        if amount > self.balance:
            raise Refused(f"account {self.id}: balance {self.balance} is below {amount}")
        self.record(Debited(amount))

    @applies(Debited)
    def _debited(self, event: Debited) -> None:
        self.balance -= event.amount


ChargeHandler = Callable[[Context, Charge], Any]


def payments_service(
    store: EventStore,
    wrap: Callable[[ChargeHandler], ChargeHandler] | None = None,
    **options: Any,
) -> Service:
    """The payments service; ``wrap(charge)`` replaces its Charge handler (fault tests)."""
    service = Service("payments", store, registry=registry, channels=CHANNELS, **options)

    def charge(ctx: Context, command: Charge) -> Charged:
        account = _load_or_create(ctx, command.account)
        account.debit(command.amount)
        ctx.publish(AccountCharged(command.account, command.amount), key=command.account)
        return Charged(command.account, account.balance)

    service.handle(Charge, charge if wrap is None else wrap(charge))
    return service


def _load_or_create(ctx: Context, id: str) -> Account:
    from streamsource.eventstore.domain import AggregateNotFound

    try:
        return ctx.load(Account, id)
    except AggregateNotFound:
        return ctx.create(Account, id)


# the orders service records what came back, in its own table, through ctx.write
ANSWERS = "test_answers"


def orders_service(store: EventStore, **options: Any) -> Service:
    service = Service("orders", store, registry=registry, channels=CHANNELS, **options)
    d = store.recorder.database.dialect  # type: ignore[union-attr]
    with store.transaction() as tx:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {ANSWERS} (message_id TEXT PRIMARY KEY,"
            " causation_id TEXT, correlation_id TEXT, name TEXT, detail TEXT)"
        )
    insert = f"INSERT INTO {ANSWERS} VALUES ({d.marks(5)})"

    def record(ctx: Context, reply: Any) -> None:
        envelope = ctx.envelope
        assert envelope is not None
        detail = reply.reason if isinstance(reply, Failure) else str(msgspec.to_builtins(reply))
        if isinstance(reply, Failure):
            detail = f"{'refused' if reply.refused else 'fault'}: {reply.reason}"
        row = (
            envelope.message_id,
            envelope.causation_id,
            envelope.correlation_id,
            envelope.name,
            detail,
        )
        ctx.write(lambda tx: tx.execute(insert, row))

    service.handle(Charged, record)
    service.handle(Failure, record)
    return service


def answers(store: EventStore) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return tx.execute(
            f"SELECT message_id, causation_id, correlation_id, name, detail FROM {ANSWERS}"
        )
