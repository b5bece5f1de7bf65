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


def test_rebuild_prints_progress_while_it_runs_and_a_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    url = f"sqlite:///{tmp_path}/bank.db"
    with ss.open_store(url) as store:
        from examples.bank.app import Bank

        bank = Bank(store)
        for n in range(6):
            bank.open_account(str(n), owner=f"owner {n}")
            bank.deposit(str(n), 10 + n)
        head = store.head_position()
    command = [sys.executable, "-c", "from streamsource.cli import main; main()", "projections",
               "--store", url, "--app", "examples.bank.read_model:projections", "--batch-size", "4"]  # fmt: skip
    subprocess.run([*command, "run", "--until-caught-up"], cwd=ROOT, check=True, timeout=120)

    rebuilt = subprocess.run(
        [*command, "rebuild", "account_balances", "--progress-interval", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert rebuilt.returncode == 0, rebuilt.stderr
    progress = [line for line in rebuilt.stderr.splitlines() if line.startswith("rebuilding ")]
    assert len(progress) == 3  # 12 events in batches of 4
    for line, events in zip(progress, (4, 8, 12), strict=True):
        assert line.startswith(f"rebuilding account_balances: {events} events, position ")
        assert f" of {head} (" in line and line.endswith(" events/s")
    assert f"position {head} of {head} (100%)" in progress[-1]
    assert rebuilt.stdout.startswith(
        "rebuilt account_balances: generation 2 is now served; 12 events in "
    )
    with sqlite3.connect(tmp_path / "bank.db") as db:
        rows = db.execute("SELECT count(*), sum(balance) FROM account_balances").fetchone()
    assert rows == (6, sum(10 + n for n in range(6)))
