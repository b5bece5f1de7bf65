"""Racing writers: exactly one wins per expected version, no gaps, no duplicates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import streamsource as ss

WRITERS = 8


def test_racing_appends_with_the_same_expected_version(store: Any) -> None:
    rounds = 12
    barrier = threading.Barrier(WRITERS)
    outcomes: list[list[Any]] = [[] for _ in range(rounds)]
    lock = threading.Lock()

    def writer(number: int) -> None:
        for round_ in range(rounds):
            expected = ss.NO_STREAM if round_ == 0 else round_ - 1
            barrier.wait()
            try:
                result: Any = store.append(
                    "race-1", [ss.NewEvent("Won", {"writer": number, "round": round_})], expected
                )
            except ss.WrongExpectedVersion as lost:
                result = lost
            with lock:
                outcomes[round_].append(result)
            barrier.wait()  # everyone finishes the round before the next one starts

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))

    for round_, results in enumerate(outcomes):
        wins = [r for r in results if isinstance(r, ss.AppendResult)]
        losses = [r for r in results if isinstance(r, ss.WrongExpectedVersion)]
        assert len(wins) == 1, f"round {round_}: {results}"
        assert wins[0].version == round_
        assert len(losses) == WRITERS - 1
        assert all(loss.actual == round_ for loss in losses)  # the winner's version: the truth
    recorded = list(store.read_stream("race-1"))
    assert [e.version for e in recorded] == list(range(rounds))
    assert [e.data["round"] for e in recorded] == list(range(rounds))


def test_writers_that_retry_on_conflict_lose_nothing(store: Any) -> None:
    per_writer = 10

    def writer(number: int) -> int:
        conflicts = 0
        for n in range(per_writer):
            event = ss.NewEvent("Counted", {"writer": number, "n": n})
            while True:
                current = store.stream_version("counter-1")
                expected = ss.NO_STREAM if current is None else current
                try:
                    store.append("counter-1", [event], expected)
                    break
                except ss.WrongExpectedVersion:
                    conflicts += 1
        return conflicts

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))

    recorded = list(store.read_stream("counter-1"))
    assert [e.version for e in recorded] == list(range(WRITERS * per_writer))
    for number in range(WRITERS):  # each writer's events, all there, in its own order
        mine = [e.data["n"] for e in recorded if e.data["writer"] == number]
        assert mine == list(range(per_writer))


def test_writers_on_many_streams_get_unique_increasing_positions(store: Any) -> None:
    per_writer = 15

    def writer(number: int) -> list[int]:
        positions = []
        for n in range(per_writer):
            result = store.append(
                f"w-{number}", [ss.NewEvent("E", {"n": n})], n - 1 if n else ss.NO_STREAM
            )
            positions.append(result.position)
        return positions

    with ThreadPoolExecutor(WRITERS) as pool:
        returned = list(pool.map(writer, range(WRITERS)))

    log = list(store.read_all())
    assert len(log) == WRITERS * per_writer
    positions = [e.position for e in log]
    assert positions == sorted(set(positions))
    assert sorted(p for ps in returned for p in ps) == positions
    for number, mine in enumerate(returned):
        assert mine == sorted(mine)  # one writer's appends commit in its order
        assert [e.version for e in store.read_stream(f"w-{number}")] == list(range(per_writer))
