"""The bank example on a real SQLite file: balance from events, overdraft refused, trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import streamsource as ss
from examples.bank.app import Account, AccountAlreadyOpen, Bank, InsufficientFunds, InvalidAmount


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ss.EventStore]:
    with ss.open_store(f"sqlite:///{tmp_path}/bank.db") as opened:
        yield opened


def test_the_seeds_scenario_rebuilds_the_balance_from_events(store: ss.EventStore) -> None:
    bank = Bank(store)
    bank.open_account("123", owner="Ada")
    assert bank.deposit("123", 100, reason="salary") == 100
    assert bank.withdraw("123", 50) == 50
    assert bank.deposit("123", 25) == 75
    assert bank.balance("123") == 75
    assert [e.type for e in store.read_stream("account-123")] == [
        "AccountOpened",
        "Deposited",
        "Withdrawn",
        "Deposited",
    ]


def test_an_overdraft_is_refused_with_a_clear_error_and_records_nothing(
    store: ss.EventStore,
) -> None:
    bank = Bank(store)
    bank.open_account("123", owner="Ada")
    bank.deposit("123", 30)
    with pytest.raises(InsufficientFunds) as refused:
        bank.withdraw("123", 45)
    assert isinstance(refused.value, ss.DomainError)
    assert str(refused.value) == "account 123: cannot withdraw 45, the balance is only 30"
    assert (refused.value.balance, refused.value.amount) == (30, 45)
    assert store.stream_version("account-123") == 1
    assert bank.balance("123") == 30


def test_bad_amounts_and_double_opening_are_refused(store: ss.EventStore) -> None:
    bank = Bank(store)
    bank.open_account("1", owner="Bo")
    for amount in (0, -5, True):
        with pytest.raises(InvalidAmount):
            bank.deposit("1", amount)
    with pytest.raises(ss.WrongExpectedVersion):
        bank.open_account("1", owner="Someone else")  # the id is taken: NO_STREAM fails
    account = Bank(store).accounts.load("1")
    with pytest.raises(AccountAlreadyOpen):
        account.open("again")
    with pytest.raises(ss.AggregateNotFound):
        bank.deposit("404", 10)


def test_the_trail_shows_every_movement_with_the_running_balance(store: ss.EventStore) -> None:
    bank = Bank(store)
    bank.open_account("9", owner="Cy")
    bank.deposit("9", 100, reason="salary")
    bank.withdraw("9", 40, reason="groceries")
    trail = list(bank.trail("9"))
    assert [(t.version, t.type, t.amount, t.balance, t.reason) for t in trail] == [
        (0, "AccountOpened", None, 0, None),
        (1, "Deposited", 100, 100, "salary"),
        (2, "Withdrawn", 40, 60, "groceries"),
    ]
    assert bank.balance("9", as_of_version=1) == 100


def test_the_balance_survives_reopening_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bank.db"
    with ss.open_store(url) as store:
        bank = Bank(store)
        bank.open_account("7", owner="Di")
        for _ in range(60):  # crosses the account's snapshot interval
            bank.deposit("7", 2)
        bank.withdraw("7", 20)
    with ss.open_store(url) as store:
        assert Bank(store).balance("7") == 100
        assert store.load_snapshot(Account.stream_name("7")) is not None


def test_a_transfer_links_the_deposit_to_the_withdrawal_that_caused_it(
    store: ss.EventStore,
) -> None:
    bank = Bank(store)
    bank.open_account("a", owner="Ann")
    bank.open_account("b", owner="Ben")
    bank.deposit("a", 50)
    bank.transfer("a", "b", 20, transfer_id="t-1")
    assert (bank.balance("a"), bank.balance("b")) == (30, 20)
    withdrawal = list(store.read_stream("account-a"))[-1]
    deposit = list(store.read_stream("account-b"))[-1]
    assert withdrawal.type == "Withdrawn" and deposit.type == "Deposited"
    assert withdrawal.causation_id == "t-1" and withdrawal.correlation_id == "t-1"
    assert deposit.causation_id == str(withdrawal.id)
    assert deposit.correlation_id == "t-1"
    with pytest.raises(ss.AggregateNotFound):
        bank.transfer("a", "nobody", 5, transfer_id="t-2")
    assert bank.balance("a") == 30  # refused before any money moved
    with pytest.raises(InsufficientFunds):
        bank.transfer("a", "b", 500, transfer_id="t-3")
    assert bank.balance("b") == 20


def test_run_demo_prints_the_trail(store: ss.EventStore) -> None:
    from examples.bank.app import run_demo

    out = Recorder()
    run_demo(store, out, account_id="d1")
    assert any("cannot withdraw 500, the balance is only 75" in line for line in out.lines)
    assert out.tables[0][2][-1] == (3, "Deposited", 25, 75, "refund")
    assert "final balance, rebuilt from 4 events: 75" in out.lines


class Recorder:
    """Collects what a demo step prints."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.tables: list[tuple[str, list[str], list[tuple[object, ...]]]] = []

    def text(self, line: str) -> None:
        self.lines.append(line)

    def table(self, title: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
        self.tables.append((title, list(columns), [tuple(r) for r in rows]))
