"""The bank's balances read model, fed by the projection runner and by the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

import streamsource as ss
from examples.bank.app import Bank
from examples.bank.read_model import AccountBalances, BalanceRow, balances
from streamsource.cli import cli
from streamsource.eventstore.projections import ProjectionRunner


def test_the_balances_table_matches_the_aggregates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bank.db"
    with ss.open_store(url) as store:
        bank = Bank(store)
        bank.open_account("1", owner="Ada")
        bank.open_account("2", owner="Bo")
        bank.deposit("1", 100)
        bank.withdraw("1", 30)
        bank.deposit("2", 5)
        with ProjectionRunner(store, [AccountBalances()]) as runner:
            runner.run_until_caught_up()
            bank.transfer("1", "2", 20, transfer_id="t-1")
            runner.run_until_caught_up()
            assert runner.status()[0].lag_events == 0
        with sqlite3.connect(tmp_path / "bank.db") as db:
            rows = balances(db)
        assert rows == [BalanceRow("1", "Ada", 50, 3), BalanceRow("2", "Bo", 25, 2)]
        assert [bank.balance("1"), bank.balance("2")] == [50, 25]


def test_the_cli_runs_reports_and_rebuilds_the_read_model(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bank.db"
    with ss.open_store(url) as store:
        bank = Bank(store)
        bank.open_account("9", owner="Cy")
        bank.deposit("9", 40, reason="salary")
    app = ["projections", "--store", url, "--app", "examples.bank.read_model:projections"]
    runner = CliRunner()
    waiting = runner.invoke(cli, [*app, "status", "--json"])
    assert waiting.exit_code == 0, waiting.output
    assert '"lag_events": 2' in waiting.output
    ran = runner.invoke(cli, [*app, "run", "--until-caught-up"])
    assert ran.exit_code == 0, ran.output
    assert "account_balances" in ran.output
    rebuilt = runner.invoke(cli, [*app, "rebuild", "account_balances"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "generation 2 is now served" in rebuilt.output
    with sqlite3.connect(tmp_path / "bank.db") as db:
        assert balances(db) == [BalanceRow("9", "Cy", 40, 1)]
    unknown = runner.invoke(cli, [*app, "rebuild", "nope"])
    assert unknown.exit_code == 1 and "no projection named 'nope'" in unknown.output
    bad_app = runner.invoke(cli, ["projections", "--store", url, "--app", "nowhere", "status"])
    assert bad_app.exit_code == 2 and "module:attribute" in bad_app.output
