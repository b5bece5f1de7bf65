"""Racing writers: exactly one wins per expected version, no gaps, no duplicates."""

from __future__ import annotations

import itertools
import threading
import time
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


def test_racing_soft_deletes_and_appends_never_unhide_a_deleted_event(store: Any) -> None:
    # Each deleter deletes "the stream as it is at version v". Once such a delete succeeds,
    # no event up to v may ever be visible again: a delete whose check was done against an
    # older version must not overwrite a newer delete's truncation.
    appends = 150
    deleters = 4
    wanted_deletes = 3
    store.append("doomed-1", [ss.NewEvent("Made", {"n": -1})])
    confirmed: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def appender() -> None:
        # Appending on until some deletes succeeded: on a loaded machine the appender can
        # otherwise finish before any deleter ran, and the race under test never happens.
        deadline = time.monotonic() + 60
        try:
            for n in itertools.count():
                store.append("doomed-1", [ss.NewEvent("Added", {"n": n})])
                with lock:
                    enough = n + 1 >= appends and len(confirmed) >= wanted_deletes
                if enough or time.monotonic() > deadline:
                    return
        finally:
            stop.set()

    def deleter() -> None:
        while not stop.is_set():
            version = store.stream_version("doomed-1")
            try:
                store.delete_stream("doomed-1", version)
            except ss.WrongExpectedVersion:
                continue
            with lock:
                confirmed.append(version)

    with ThreadPoolExecutor(deleters + 1) as pool:
        futures = [pool.submit(deleter) for _ in range(deleters)]
        futures.append(pool.submit(appender))
        for future in futures:
            future.result(timeout=120)

    assert len(confirmed) >= wanted_deletes, f"only {confirmed} deletes won in 60 s"
    truncated = store.get_stream_metadata("doomed-1").truncate_before
    assert truncated is not None and truncated >= max(confirmed) + 1
    visible = [e.version for e in store.read_stream("doomed-1")]
    assert all(v > max(confirmed) for v in visible)


def test_a_soft_delete_racing_a_metadata_change_keeps_both(store: Any) -> None:
    # The soft delete rewrites the stream's metadata: it must not write back a stale copy
    # over a concurrent change (a lost update), nor lose its own truncation.
    rounds = 60
    store.append("meta-1", [ss.NewEvent("Made", {})])
    barrier = threading.Barrier(2)

    def owner(round_: int) -> None:
        barrier.wait()
        current = store.get_stream_metadata("meta-1")
        store.set_stream_metadata(
            "meta-1",
            ss.StreamMetadata(truncate_before=current.truncate_before, custom={"r": round_}),
        )

    def deleter(round_: int) -> None:
        barrier.wait()
        store.delete_stream("meta-1")

    for round_ in range(rounds):
        store.set_stream_metadata("meta-1", ss.StreamMetadata(custom={"r": -1}))
        store.append("meta-1", [ss.NewEvent("Again", {})])
        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(owner, round_), pool.submit(deleter, round_)]
            for future in done:
                future.result(timeout=60)
        metadata = store.get_stream_metadata("meta-1")
        # either order is fine; what may not happen is the deleter's stale copy winning
        assert metadata.custom == {"r": round_}, f"round {round_}: {metadata}"
