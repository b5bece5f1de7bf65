"""Many writers on one SQLite store: threads and separate processes, racing and sharing commits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from streamsource.errors import WrongExpectedVersion
from streamsource.eventstore.backends.sqlite import SqliteRecorder, open_recorder
from streamsource.eventstore.events import NO_STREAM, ExpectedVersion
from streamsource.eventstore.recorder import EventRecord


def record(**data: object) -> EventRecord:
    return EventRecord(uuid.uuid4(), "Happened", json.dumps(data).encode(), b"{}")


def expected_for(version: int | None) -> ExpectedVersion:
    return NO_STREAM if version is None else version


def check_stream_is_whole(recorder: SqliteRecorder, stream: str, count: int) -> None:
    stored = list(recorder.read_stream(stream))
    assert [s.version for s in stored] == list(range(count))
    positions = [s.position for s in stored]
    assert positions == sorted(set(positions))


def test_threads_racing_on_one_stream_get_one_winner_per_version(tmp_path: Path) -> None:
    recorder = open_recorder(f"sqlite:///{tmp_path}/store.db")
    start = threading.Barrier(8)
    wins: list[int] = []
    losses: list[tuple[ExpectedVersion, int | None]] = []
    lock = threading.Lock()

    def writer() -> None:
        start.wait()
        for _ in range(25):
            current = recorder.stream_info("race-1").version
            try:
                result = recorder.append("race-1", [record()], expected_for(current))
            except WrongExpectedVersion as lost:
                with lock:
                    losses.append((lost.expected, lost.actual))
            else:
                with lock:
                    wins.append(result.version)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == list(range(len(wins)))
    check_stream_is_whole(recorder, "race-1", len(wins))
    for expected, actual in losses:
        # The loser saw a stale version; the error names one that really exists, and newer.
        assert actual is not None
        assert expected is NO_STREAM or (isinstance(expected, int) and actual > expected)
    recorder.close()


def test_concurrent_writers_share_commits(tmp_path: Path) -> None:
    recorder = open_recorder(f"sqlite:///{tmp_path}/store.db")
    start = threading.Barrier(8)
    results: dict[int, list[int]] = {}

    def writer(n: int) -> None:
        start.wait()
        positions = []
        for i in range(40):
            result = recorder.append(
                f"writer-{n}", [record(i=i)], expected_for(i - 1 if i else None)
            )
            positions.append(result.position)
        results[n] = positions

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = recorder.stats()
    assert stats["writes"] == 320
    assert int(stats["commits"]) < int(stats["writes"])  # group commit: shared transactions
    assert int(stats["largest_batch"]) > 1
    for n in range(8):
        check_stream_is_whole(recorder, f"writer-{n}", 40)
        assert results[n] == sorted(results[n])
    assert [s.position for s in recorder.read_all()] == list(range(1, 321))
    recorder.close()


def test_one_failing_append_in_a_shared_commit_does_not_affect_the_others(
    tmp_path: Path,
) -> None:
    recorder = open_recorder(f"sqlite:///{tmp_path}/store.db")
    start = threading.Barrier(8)
    outcomes: dict[int, list[str]] = {n: [] for n in range(8)}

    def writer(n: int) -> None:
        start.wait()
        version: int | None = None
        for i in range(30):
            # Odd writers get every third expected version wrong on purpose.
            wrong = n % 2 == 1 and i % 3 == 0
            expected = 999 if wrong else expected_for(version)
            try:
                version = recorder.append(f"w-{n}", [record(i=i)], expected).version
                outcomes[n].append("ok")
            except WrongExpectedVersion:
                outcomes[n].append("lost")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(8):
        assert outcomes[n].count("lost") == (10 if n % 2 else 0)
        check_stream_is_whole(recorder, f"w-{n}", outcomes[n].count("ok"))
    recorder.close()


async def test_asyncio_tasks_race_and_share_commits(tmp_path: Path) -> None:
    store = await ss.open_async_store(f"sqlite:///{tmp_path}/store.db")
    wins: list[int] = []
    losses: list[int | None] = []

    async def racer(n: int) -> None:
        for i in range(15):
            current = await store.stream_version("race-1")
            expected = ss.NO_STREAM if current is None else current
            try:
                result = await store.append("race-1", [ss.NewEvent("Raced", {"n": n})], expected)
                wins.append(result.version)
            except ss.WrongExpectedVersion as lost:
                losses.append(lost.actual)
            await store.append(
                f"own-{n}", [ss.NewEvent("Mine", {"i": i})], i - 1 if i else ss.NO_STREAM
            )

    await asyncio.gather(*(racer(n) for n in range(8)))
    assert sorted(wins) == list(range(len(wins)))
    assert all(actual is not None for actual in losses)
    assert len(wins) + len(losses) == 8 * 15
    for n in range(8):
        assert [e.version async for e in store.read_stream(f"own-{n}")] == list(range(15))
    stats = await store.stats()
    assert int(stats["commits"]) < int(stats["writes"])  # tasks' appends shared commits
    await store.close()


CHILD = r"""
import json, sys, uuid
import streamsource as ss
from streamsource.errors import WrongExpectedVersion
from streamsource.eventstore.backends.sqlite import open_recorder
from streamsource.eventstore.events import NO_STREAM
from streamsource.eventstore.recorder import EventRecord

url, me, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recorder = open_recorder(url, timeout=30)
sys.stdin.readline()  # start together
own = None
for i in range(rounds):
    for stream in ("race-1", f"own-{me}"):
        current = recorder.stream_info(stream).version
        event = EventRecord(uuid.uuid4(), "Raced", json.dumps({"by": me, "i": i}).encode(), b"{}")
        try:
            result = recorder.append(stream, [event], NO_STREAM if current is None else current)
            print(json.dumps({"stream": stream, "version": result.version,
                              "position": result.position, "id": str(event.id)}), flush=True)
        except WrongExpectedVersion as lost:
            print(json.dumps({"stream": stream, "expected": current, "actual": lost.actual}),
                  flush=True)
recorder.close()
"""


@pytest.mark.slow
def test_processes_racing_on_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"  # created by whichever child opens it first
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(n), "25"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    lines: list[dict[str, Any]] = []  # JSON lines from the writer processes
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        acked = [json.loads(line) for line in out.splitlines()]
        positions = [line["position"] for line in acked if "position" in line]
        assert positions == sorted(positions)  # each process sees its commits in order
        lines.extend(acked)

    recorder = open_recorder(url)
    wins = [line for line in lines if "version" in line]
    losses = [line for line in lines if "actual" in line]
    race = sorted(line["version"] for line in wins if line["stream"] == "race-1")
    assert race == list(range(len(race)))  # one winner per version, no gaps
    assert len(losses) + len(race) == 4 * 25
    check_stream_is_whole(recorder, "race-1", len(race))
    stored = {str(s.id): s for s in recorder.read_all()}
    for win in wins:
        event = stored[str(win["id"])]
        assert (event.stream, event.version, event.position) == (
            win["stream"],
            win["version"],
            win["position"],
        )
    for loss in losses:
        assert loss["stream"] == "race-1"
        actual, expected = loss["actual"], loss["expected"]
        assert isinstance(actual, int) and (expected is None or actual > expected)
    for n in range(4):
        check_stream_is_whole(recorder, f"own-{n}", 25)  # no one else writes it: all won
    assert len(stored) == len(wins)
    recorder.close()
