"""Exactly-once through Kafka transactions: a member killed with ``kill -9`` mid-run, a
member restarted without its local state, members joining and leaving: outputs read with
``read_committed`` equal the independent result exactly (no duplicate, no loss)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from streams_support import Reader, create_topic, produce, read_all

from deadline import Deadline
from streamsource.streams import App, ProcessingFailed, Tumbling

pytestmark = pytest.mark.slow

JOBS = Path(__file__).parent
PARTITIONS = 3
BASE = 1_700_000_000_000
FAR = BASE + 10**9


def _records(start: int, stop: int) -> list[tuple[str, int]]:
    """Event ``i``: key ``k<i % 30>`` at ``BASE + 10 i`` ms (100 per second)."""
    return [(f"k{i % 30}", BASE + 10 * i) for i in range(start, stop)]


def _send(bootstrap: str, topic: str, records: list[tuple[str, int]]) -> None:
    produce(bootstrap, topic, [(k, {"i": t}, t) for k, t in records])


def _close_all(bootstrap: str, topic: str) -> None:
    for p in range(PARTITIONS):
        produce(bootstrap, topic, [(f"end{p}", {"i": 0}, FAR)], partition=p)


def _expected(records: list[tuple[str, int]]) -> Counter[tuple[str, int]]:
    return Counter((k, t - t % 1000) for k, t in records)


def _results(bootstrap: str, topic: str) -> list[tuple[str, int, int]]:
    got = read_all(bootstrap, topic, committed=True)
    return [(str(k), v["start"], v["value"]) for k, v in got if not str(k).startswith("end")]


class Member:
    """``streamsource streams run count_job:make`` as a process of its own."""

    def __init__(self, tmp_path: Path, name: str, env: dict[str, str]) -> None:
        self.log = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115 (closed in kill/stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamsource",
                "streams",
                "run",
                "count_job:make",
                "--log-level",
                "INFO",
            ],
            cwd=JOBS,
            env={**os.environ, **env, "PYTHONPATH": str(JOBS)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(60) == 0
        self.log.close()


@pytest.fixture
def members(tmp_path: Path) -> Any:
    started: list[Member] = []

    def start(name: str, **env: str) -> Member:
        member = Member(tmp_path, name, env)
        started.append(member)
        return member

    yield start
    for member in started:
        if member.proc.poll() is None:
            member.kill()


@pytest.mark.parametrize("backend", ["sqlite", "rocksdict"])
def test_kill_9_mid_run_then_restart(
    broker: Any, tmp_path: Path, members: Any, backend: str
) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "events", PARTITIONS)
    env = {"BOOTSTRAP": bootstrap, "GROUP": "eos", "STATE": str(tmp_path / "state"),
           "TOPIC": "events", "OUT": "counts", "CHECKPOINT": "3", "BACKEND": backend}  # fmt: skip
    records = _records(0, 30_000)
    member = members("first", **env)
    feeding = threading.Thread(target=_send, args=(bootstrap, "events", records[:20_000]))
    feeding.start()
    # kill -9 while a transaction is open: outputs written but not committed yet. A
    # transaction stays open for the 3 s checkpoint interval and the loop sees its outputs
    # early in it, so the kill lands before its commit even on a loaded machine (with 0.5 s,
    # the commit sometimes came first: then no aborted output was left to check)
    uncommitted = Reader(bootstrap, "counts")
    committed = Reader(bootstrap, "counts", committed=True)
    deadline = Deadline(60, "outputs not committed yet")
    while True:
        deadline.check()
        uncommitted.until(lambda got: len(got) > 0, "outputs")
        committed._read(0.2)
        uncommitted._read(0.2)
        if len(uncommitted.records) > len(committed.records) + 10:
            break
    member.kill()
    feeding.join(60)
    written_before_kill = len(uncommitted.records)

    members("second", **env)  # the same state directory: the same transactional id
    _send(bootstrap, "events", records[20_000:])
    _close_all(bootstrap, "events")
    expected = _expected(records)
    committed.until(
        lambda got: len(got) >= len(expected) + 0, "every window committed", timeout=120
    )
    results = _results(bootstrap, "counts")
    assert len(results) == len(expected)  # no duplicate
    assert {(k, s): n for k, s, n in results} == dict(expected)  # no loss
    # the killed member's open transaction was aborted: its outputs are in the log, unread
    everything = read_all(bootstrap, "counts")
    assert len(everything) > len(results) >= 1 and written_before_kill >= 1


@pytest.mark.parametrize("backend", ["sqlite", "rocksdict"])
def test_restart_with_local_state_deleted(
    broker: Any, tmp_path: Path, members: Any, backend: str
) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "events", PARTITIONS)
    env = {"BOOTSTRAP": bootstrap, "GROUP": "fresh", "STATE": str(tmp_path / "state"),
           "TOPIC": "events", "OUT": "counts", "BACKEND": backend}  # fmt: skip
    records = _records(0, 4_000)
    # windows of 1 s hold 100 records; the first half ends inside a window, so that window's
    # count comes back only from the changelog
    _send(bootstrap, "events", records[:2_050])
    member = members("first", **env)
    Reader(bootstrap, "counts", committed=True).until(
        lambda got: len(got) >= 20 * 30 - 30, "first windows"
    )
    member.stop()
    shutil.rmtree(tmp_path / "state")
    members("second", **env)
    _send(bootstrap, "events", records[2_050:])
    _close_all(bootstrap, "events")
    expected = _expected(records)
    Reader(bootstrap, "counts", committed=True).until(
        lambda got: len(got) >= len(expected), "every window"
    )
    results = _results(bootstrap, "counts")
    assert sorted(results) == sorted((k, s, n) for (k, s), n in expected.items())


def test_rebalance_one_to_two_to_one_member(broker: Any, tmp_path: Path, run_app: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "events", PARTITIONS)

    def member(name: str) -> App:
        app = App(bootstrap, "scaling", state_dir=tmp_path / name, processing_guarantee="exactly-once",
                  checkpoint_interval=0.2, batch_size=500)  # fmt: skip
        app.stream(app.topic("events", value=dict)).window(Tumbling(1)).count().to(
            app.topic("counts", value=dict)
        )
        return app

    records = _records(0, 9_000)
    first = run_app(member("a"))
    _send(bootstrap, "events", records[:3_000])
    results = Reader(bootstrap, "counts", committed=True)
    results.until(lambda got: len(got) >= 29 * 30, "windows of the first third")
    second = run_app(member("b"))
    deadline = Deadline(60, "both members holding partitions")
    while not (first.app._partitions and second.app._partitions):
        deadline.check()
        second.thread.join(0.05)
    _send(bootstrap, "events", records[3_000:6_000])
    results.until(lambda got: len(got) >= 59 * 30, "windows of the second third")
    second.stop()  # leaves the group: its partitions and their state go back to the first
    _send(bootstrap, "events", records[6_000:])
    _close_all(bootstrap, "events")
    expected = _expected(records)
    results.until(lambda got: len(got) >= len(expected), "every window")
    first.stop()
    got = _results(bootstrap, "counts")
    assert len(got) == len(expected)
    assert {(k, s): n for k, s, n in got} == dict(expected)


def test_a_failing_function_aborts_the_transaction(
    broker: Any, tmp_path: Path, run_app: Any
) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "events", 1)
    _send(bootstrap, "events", _records(0, 100))

    def build(fail_at: int | None, checkpoint_interval: float) -> App:
        app = App(
            bootstrap,
            "failing",
            state_dir=tmp_path,
            processing_guarantee="exactly-once",
            checkpoint_interval=checkpoint_interval,
        )

        def check(value: dict[str, int]) -> dict[str, int]:
            if value["i"] == fail_at:
                raise ValueError("bad record")
            return value

        app.stream(app.topic("events", value=dict)).map(check).count().to(
            app.topic("counts", value=int)
        )
        return app

    running = run_app(build(fail_at=BASE + 10 * 99, checkpoint_interval=60))  # one transaction
    running.thread.join(60)
    with pytest.raises(ProcessingFailed, match=r"map raised ValueError\('bad record'\)"):
        running.stop()
    assert read_all(bootstrap, "counts", committed=True) == []  # the batch's outputs aborted
    running = run_app(build(fail_at=None, checkpoint_interval=0.2))
    Reader(bootstrap, "counts", committed=True).until(lambda got: len(got) >= 100, "every count")
    running.stop()
    counts = read_all(bootstrap, "counts", committed=True)
    assert len(counts) == 100  # from the start again, with state not counting the aborted batch
    assert {k: v for k, v in counts} == {f"k{n}": 4 for n in range(30)} | {
        f"k{n}": 3 for n in range(10, 30)
    }
