"""Exactly once across ``kill -9``: a real projector process is killed mid-run, repeatedly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import streamsource as ss

from .ledger import deposit_many

TESTS = str(Path(__file__).resolve().parents[1])

CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import streamsource as ss
from projections.ledger import Ledger
from streamsource.eventstore.projections import ProjectionRunner
with ss.open_store(sys.argv[2]) as store:
    read_model = None if sys.argv[3] == "-" else sys.argv[3]
    runner = ProjectionRunner(store, [Ledger()], read_model=read_model, batch_size=int(sys.argv[4]))
    if sys.argv[5] == "forever":
        runner.run_forever()
    runner.run_until_caught_up()
"""


def checkpoint(read_model: Path) -> int:
    try:
        with sqlite3.connect(read_model, timeout=30) as db:
            row = db.execute("SELECT max(position) FROM ss_projection_checkpoints").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return 0 if row is None or row[0] is None else int(row[0])


def run_child(store_url: str, read_model_url: str, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, TESTS, store_url, read_model_url, "37", mode]
    )


@pytest.mark.slow
@pytest.mark.parametrize("same_file", [False, True], ids=["separate-file", "store-file"])
def test_every_event_takes_effect_once_across_kill_9(tmp_path: Path, same_file: bool) -> None:
    store_path = tmp_path / "store.db"
    read_path = store_path if same_file else tmp_path / "read.db"
    store_url, read_url = f"sqlite:///{store_path}", f"sqlite:///{read_path}"
    total = 6000
    with ss.open_store(store_url) as store:
        deposit_many(store, total)
    kills = 0
    for target in (700, 2100, 3900):
        child = run_child(store_url, read_url, "forever")
        deadline = time.monotonic() + 120
        while checkpoint(read_path) < target and child.poll() is None:
            assert time.monotonic() < deadline, "the projector made no progress"
            time.sleep(0.002)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        kills += 1  # "forever" never exits by itself: every kill lands mid-run
    finisher = run_child(store_url, read_url, "until-caught-up")
    assert finisher.wait(120) == 0
    with sqlite3.connect(read_path) as db:
        count, distinct, amount = db.execute(
            "SELECT count(*), count(DISTINCT event_id), sum(amount) FROM entries"
        ).fetchone()
        (totals,) = db.execute("SELECT sum(total) FROM totals").fetchone()
    assert kills == 3
    assert (count, distinct) == (total, total)
    assert amount == totals == total * (total + 1) // 2
