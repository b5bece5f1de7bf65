"""The seed's bank account, event-sourced properly.

The seed's Go example silently ignores an overdraft and keeps the balance in a field next
to the log. Here the balance is *only* the result of applying the account's events in order,
an overdraft is refused with :class:`InsufficientFunds`, and the full trail (with the reason
given for each movement) can be printed at any time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

import streamsource as ss

bank_events = ss.EventRegistry()


@bank_events.event("AccountOpened")
class AccountOpened(msgspec.Struct, frozen=True):
    owner: str


@bank_events.event("Deposited")
class Deposited(msgspec.Struct, frozen=True):
    amount: int


@bank_events.event("Withdrawn")
class Withdrawn(msgspec.Struct, frozen=True):
    amount: int


class InvalidAmount(ss.DomainError):
    """An amount that is not a positive whole number."""

    def __init__(self, amount: object) -> None:
        self.amount = amount
        super().__init__(f"amount must be a positive whole number, not {amount!r}")


class InsufficientFunds(ss.DomainError):
    """A withdrawal larger than the balance (the seed silently ignored it)."""

    def __init__(self, account_id: str, balance: int, amount: int) -> None:
        self.account_id = account_id
        self.balance = balance
        self.amount = amount
        super().__init__(
            f"account {account_id}: cannot withdraw {amount}, the balance is only {balance}"
        )


class AccountAlreadyOpen(ss.DomainError):
    """Opening an account id that is already in use."""


class Account(ss.Aggregate):
    """A bank account: its balance is rebuilt from Deposited/Withdrawn events."""

    registry = bank_events
    category = "account"
    snapshot_every = 50

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.owner = ""
        self.balance = 0

    # -- commands: validate, then record ----------------------------------------------------

    def open(self, owner: str) -> None:
        if self.version is not None:
            raise AccountAlreadyOpen(f"account {self.id} is already open")
        self.record(AccountOpened(owner=owner))

    def deposit(self, amount: int) -> None:
        _check_amount(amount)
        self.record(Deposited(amount=amount))

    def withdraw(self, amount: int) -> None:
        _check_amount(amount)
        if amount > self.balance:
            raise InsufficientFunds(self.id, self.balance, amount)
        self.record(Withdrawn(amount=amount))

    # -- state changes: only here ---------------------------------------------------------

    @ss.applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner

    @ss.applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount

    @ss.applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount

    def snapshot_state(self) -> Any:
        return {"owner": self.owner, "balance": self.balance}

    def restore_snapshot(self, state: Any) -> None:
        self.owner = state["owner"]
        self.balance = state["balance"]


def _check_amount(amount: object) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(amount)


@dataclass(frozen=True)
class TrailLine:
    """One line of an account's trail: an event and the balance right after it."""

    version: int
    recorded_at: datetime
    type: str
    amount: int | None
    balance: int
    reason: str | None


class Bank:
    """The application service: every operation loads, runs one command and saves."""

    def __init__(self, store: ss.EventStore) -> None:
        self.accounts = ss.Repository(store, Account)

    def open_account(self, account_id: str, owner: str) -> Account:
        account = self.accounts.create(account_id)
        account.open(owner)
        self.accounts.save(account)  # expected version NO_STREAM: the id must be unused
        return account

    def deposit(self, account_id: str, amount: int, *, reason: str | None = None) -> int:
        return self._run(account_id, lambda account: account.deposit(amount), reason)

    def withdraw(self, account_id: str, amount: int, *, reason: str | None = None) -> int:
        return self._run(account_id, lambda account: account.withdraw(amount), reason)

    def balance(self, account_id: str, *, as_of_version: int | None = None) -> int:
        return self.accounts.load(account_id, as_of_version=as_of_version).balance

    def trail(self, account_id: str) -> Iterator[TrailLine]:
        """Every event of the account with the balance it led to (a replay, not a query)."""
        replica = Account(account_id)
        for stored in self.accounts.history(account_id):
            replica.apply(stored.event)
            amount = getattr(stored.event, "amount", None)
            reason = stored.metadata.get("reason")
            yield TrailLine(
                version=stored.version,
                recorded_at=stored.recorded_at,
                type=stored.type,
                amount=amount,
                balance=replica.balance,
                reason=None if reason is None else str(reason),
            )

    def transfer(self, source: str, target: str, amount: int, *, transfer_id: str) -> None:
        """Withdraw from ``source``, then deposit to ``target`` *because of* that withdrawal.

        The withdrawal is caused by the transfer command; the deposit is caused by the
        Withdrawn event, so both carry the same correlation_id (the transfer id) and the
        trail shows which led to which.
        """
        self.accounts.load(target)  # refuse an unknown target before any money moves
        with ss.caused_by(transfer_id):
            paid = self.accounts.update(
                source,
                lambda account: account.withdraw(amount),
                metadata={"reason": f"transfer to {target}"},
            )
        withdrawal = next(self.accounts.store.read_stream(paid.stream, from_version=paid.version))
        with ss.caused_by(withdrawal):
            self.deposit(target, amount, reason=f"transfer from {source}")

    def _run(self, account_id: str, command: Callable[[Account], None], reason: str | None) -> int:
        metadata = {} if reason is None else {"reason": reason}
        account = self.accounts.update(account_id, command, metadata=metadata)
        return account.balance


def run_demo(store: ss.EventStore, out: Any, account_id: str = "123") -> None:
    """The seed's scenario (deposit 100, withdraw 50, deposit 25), plus a refused overdraft."""
    bank = Bank(store)
    bank.open_account(account_id, owner="Ada")
    bank.deposit(account_id, 100, reason="salary")
    bank.withdraw(account_id, 50, reason="rent")
    bank.deposit(account_id, 25, reason="refund")
    try:
        bank.withdraw(account_id, 500, reason="new bike")
    except InsufficientFunds as refused:
        out.text(f"refused: {refused}  (nothing was recorded)")
    rows = [
        (
            line.version,
            line.type,
            "" if line.amount is None else line.amount,
            line.balance,
            line.reason or "",
        )
        for line in bank.trail(account_id)
    ]
    out.table(
        f"stream account-{account_id}",
        ["version", "event", "amount", "balance", "reason"],
        rows,
    )
    out.text(f"final balance, rebuilt from {len(rows)} events: {bank.balance(account_id)}")
    out.text(f"balance as of version 1 (time travel): {bank.balance(account_id, as_of_version=1)}")

    savings = f"{account_id}-savings"
    bank.open_account(savings, owner="Ada")
    bank.transfer(account_id, savings, 20, transfer_id=f"transfer-{account_id}")
    moved = [
        next(store.read_stream(Account.stream_name(acc), backwards=True, limit=1))
        for acc in (account_id, savings)
    ]
    out.table(
        "a transfer: one command causes an event, which causes another",
        ["stream", "version", "event", "event id", "causation_id", "correlation_id"],
        [
            (e.stream, e.version, e.type, _short(e.id), _short(e.causation_id), e.correlation_id)
            for e in moved
        ],
    )


def _short(value: object) -> str:
    text = str(value)
    return text[:8] + "…" if len(text) == 36 else text  # a UUID: its start is enough
