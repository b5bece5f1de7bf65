"""The bank's read model: every account's owner and balance in one table, kept by a projection.

The aggregate rebuilds one balance by replaying one stream; a list of *all* balances (say for
a back-office screen) would replay every account. The projection keeps that list as a table
instead, updated exactly once per event, and queried with plain SQL::

    streamsource projections --store sqlite:///bank.db --app examples.bank.read_model:projections run
    sqlite3 bank.db "SELECT * FROM account_balances ORDER BY balance DESC"
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import streamsource as ss
from streamsource.eventstore.projections import Projection, ProjectionContext

from .app import Account


class AccountBalances(Projection):
    """One row per account: owner, balance, and how many movements made it."""

    name = "account_balances"
    tables = ("account_balances",)
    category = Account.category
    types = ("AccountOpened", "Deposited", "Withdrawn")

    def create(self, db: ProjectionContext) -> None:
        db.execute(
            "CREATE TABLE {account_balances} ("
            " account_id TEXT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL,"
            " movements INTEGER NOT NULL, version INTEGER NOT NULL)"
        )

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        account_id = event.stream.split("-", 1)[1]
        if event.type == "AccountOpened":
            db.execute(
                "INSERT INTO {account_balances} VALUES (?, ?, 0, 0, ?)",
                (account_id, event.data["owner"], event.version),
            )
            return
        amount = event.data["amount"]
        change = amount if event.type == "Deposited" else -amount
        db.execute(
            "UPDATE {account_balances} SET balance = balance + ?, movements = movements + 1,"
            " version = ? WHERE account_id = ?",
            (change, event.version, account_id),
        )


projections = [AccountBalances()]
"""What ``streamsource projections --app examples.bank.read_model:projections`` runs."""


@dataclass(frozen=True)
class BalanceRow:
    """One account as the read model shows it."""

    account_id: str
    owner: str
    balance: int
    movements: int


def balances(db: sqlite3.Connection) -> list[BalanceRow]:
    """Every account, largest balance first (a query, not a replay)."""
    rows = db.execute(
        "SELECT account_id, owner, balance, movements FROM account_balances"
        " ORDER BY balance DESC, account_id"
    ).fetchall()
    return [BalanceRow(*row) for row in rows]
