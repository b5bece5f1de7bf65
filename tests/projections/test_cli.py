"""``streamsource projections run`` as a real process: follows appends, stops on SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import streamsource as ss

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_run_follows_new_events_and_stops_cleanly_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # the examples package lives at the root
    url = f"sqlite:///{tmp_path}/bank.db"
    with ss.open_store(url) as store:
        from examples.bank.app import Bank

        bank = Bank(store)
        bank.open_account("1", owner="Ada")
        runner = subprocess.Popen(
            [sys.executable, "-c", "from streamsource.cli import main; main()", "projections", "--store", url,
             "--app", "examples.bank.read_model:projections", "run"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            bank.deposit("1", 70)
            deadline = time.monotonic() + 60
            balance = None
            while balance != 70:
                assert time.monotonic() < deadline and runner.poll() is None, runner.stderr
                time.sleep(0.05)
                try:
                    with sqlite3.connect(tmp_path / "bank.db") as db:
                        row = db.execute("SELECT balance FROM account_balances").fetchone()
                    balance = None if row is None else row[0]
                except sqlite3.OperationalError:  # the view is not created yet
                    pass
        finally:
            runner.send_signal(signal.SIGTERM)
            out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert "running projections account_balances" in err
    assert "account_balances" in out and "lag" in out
