"""Windowed aggregations on a real broker, checked against an independent computation.

Records go to explicit partitions (key ``k<n>`` to partition ``n % 3``) so that stream time,
which is per partition, is known; a last record far in the future on every partition closes
every window before it.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streams_support import Reader, create_topic, produce, read_all

from streamsource.streams import App, Hopping, Session, Sliding, Tumbling

PARTITIONS = 3
BASE = 1_700_000_000_000
FAR = BASE + 10**9


def _feed(bootstrap: str, topic: str, events: list[tuple[str, int, int]]) -> None:
    """``(key, timestamp, amount)`` events, each to its key's partition, then the closers."""
    create_topic(bootstrap, topic, PARTITIONS)
    for p in range(PARTITIONS):
        mine = [(k, {"amount": a}, t) for k, t, a in events if int(k[1:]) % PARTITIONS == p]
        produce(bootstrap, topic, [*mine, (f"end{p}", {"amount": 0}, FAR)], partition=p)


def _events(keys: int, count: int, seed: int, disorder: int = 0) -> list[tuple[str, int, int]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        t = BASE + i * 37 - rng.randrange(disorder + 1)
        out.append((f"k{rng.randrange(keys)}", t, rng.randrange(1, 100)))
    return out


def _run(
    broker: Any,
    tmp_path: Path,
    run_app: Any,
    build: Callable[[App], None],
    out: str,
    count: int,
    backend: str = "sqlite",
) -> list[Any]:
    app = App(
        broker.bootstrap,
        f"g-{out}",
        state_dir=tmp_path,
        checkpoint_interval=0.2,
        state_backend=backend,
    )
    build(app)
    running = run_app(app)
    Reader(broker.bootstrap, out).until(lambda got: len(got) >= count, f"{count} results on {out}")
    running.stop()
    return [(k, v) for k, v in read_all(broker.bootstrap, out) if not str(k).startswith("end")]


@pytest.mark.parametrize("backend", ["sqlite", "rocksdict"])
def test_tumbling_count_and_sum_equal_an_independent_computation(
    broker: Any, tmp_path: Path, run_app: Any, backend: str
) -> None:
    events = _events(keys=40, count=3000, seed=1, disorder=500)  # out of order within the grace
    _feed(broker.bootstrap, "payments", events)
    size = 5_000
    counts: Counter[tuple[str, int]] = Counter()
    sums: Counter[tuple[str, int]] = Counter()
    for k, t, a in events:
        counts[(k, t - t % size)] += 1
        sums[(k, t - t % size)] += a

    def build(app: App) -> None:
        stream = app.stream(app.topic("payments", value=dict))
        stream.window(Tumbling(5, grace=1)).count().to(app.topic("counts", value=dict))
        stream.window(Tumbling(5, grace=1)).sum(lambda v: v["amount"]).to(
            app.topic("sums", value=dict)
        )

    got = _run(broker, tmp_path, run_app, build, "counts", len(counts), backend)
    assert {(k, v["start"]): v["value"] for k, v in got} == dict(counts)
    assert len(got) == len(counts)  # each window emitted once, when it closed
    assert all(v["end"] - v["start"] == size for _k, v in got)
    summed = [(k, v) for k, v in read_all(broker.bootstrap, "sums") if not str(k).startswith("end")]
    assert {(k, v["start"]): v["value"] for k, v in summed} == dict(sums)


def test_hopping_mean_and_max(broker: Any, tmp_path: Path, run_app: Any) -> None:
    events = _events(keys=10, count=1000, seed=2)
    _feed(broker.bootstrap, "readings", events)
    size, step = 3_000, 1_000
    values: dict[tuple[str, int], list[int]] = defaultdict(list)
    for k, t, a in events:
        start = t - t % step - size + step
        while start <= t:
            values[(k, start)].append(a)
            start += step

    def build(app: App) -> None:
        stream = app.stream(app.topic("readings", value=dict))
        stream.window(Hopping(3, 1)).mean(lambda v: v["amount"]).to(app.topic("means", value=dict))
        stream.window(Hopping(3, 1)).max(lambda v: v["amount"]).to(app.topic("maxes", value=dict))

    got = _run(broker, tmp_path, run_app, build, "means", len(values))
    assert {(k, v["start"]): v["value"] for k, v in got} == {
        w: sum(a) / len(a) for w, a in values.items()
    }
    maxes = [(k, v) for k, v in read_all(broker.bootstrap, "maxes") if not str(k).startswith("end")]
    assert {(k, v["start"]): v["value"] for k, v in maxes} == {w: max(a) for w, a in values.items()}


def test_session_windows(broker: Any, tmp_path: Path, run_app: Any) -> None:
    rng = random.Random(3)
    events = []
    t = BASE
    for _ in range(600):
        t += rng.choice([100, 200, 300, 5_000])  # bursts separated by quiet periods
        events.append((f"k{rng.randrange(6)}", t, 1))
    _feed(broker.bootstrap, "clicks", events)
    gap = 2_000
    sessions: list[tuple[str, int, int, int]] = []
    by_key: dict[str, list[int]] = defaultdict(list)
    for k, t, _a in events:
        by_key[k].append(t)
    for k, times in by_key.items():
        start = last = times[0]
        n = 1
        for t in times[1:]:
            if t - last > gap:
                sessions.append((k, start, last, n))
                start, n = t, 0
            last = t
            n += 1
        sessions.append((k, start, last, n))

    def build(app: App) -> None:
        stream = app.stream(app.topic("clicks", value=dict))
        stream.window(Session(2)).count().to(app.topic("sessions", value=dict))

    got = _run(broker, tmp_path, run_app, build, "sessions", len(sessions))
    assert sorted((k, v["start"], v["end"], v["value"]) for k, v in got) == sorted(sessions)


def test_sliding_windows_emit_for_every_record(broker: Any, tmp_path: Path, run_app: Any) -> None:
    events = _events(keys=5, count=500, seed=4)
    events.sort(key=lambda e: e[1])
    _feed(broker.bootstrap, "temps", events)
    size = 1_000
    expected = []
    for i, (k, t, _a) in enumerate(events):
        n = sum(1 for k2, t2, _ in events[: i + 1] if k2 == k and t - size < t2 <= t)
        expected.append((k, t, n))

    def build(app: App) -> None:
        stream = app.stream(app.topic("temps", value=dict))
        stream.window(Sliding(1)).count().to(app.topic("sliding", value=dict))

    got = _run(broker, tmp_path, run_app, build, "sliding", len(expected))
    assert sorted((k, v["end"], v["value"]) for k, v in got) == sorted(expected)


def test_late_records_inside_and_outside_the_grace(
    broker: Any, tmp_path: Path, run_app: Any
) -> None:
    create_topic(broker.bootstrap, "late", 1)
    s = 1_000
    records: list[tuple[str | None, Any, int | None]] = [
        ("a", {"n": 1}, BASE + 1 * s),
        ("a", {"n": 2}, BASE + 12 * s),  # stream time 12 s: window [0, 10) closes at 10 + 3
        ("a", {"n": 3}, BASE + 9 * s),  # late but within the 3 s grace: counted in [0, 10)
        ("a", {"n": 4}, BASE + 14 * s),  # stream time 14 s: [0, 10) closes
        ("a", {"n": 5}, BASE + 8 * s),  # its window closed: late, to the callback only
        ("a", {"n": 6}, BASE + 13 * s),  # out of order, but its window [10, 20) is open
        ("a", {"n": 7}, BASE + 60 * s),  # closes [10, 20)
    ]
    produce(broker.bootstrap, "late", records)
    late: list[tuple[Any, Any, int]] = []
    updates: list[Any] = []

    def build(app: App) -> None:
        stream = app.stream(app.topic("late", value=dict))
        windows = stream.window(
            Tumbling(10, grace=3), on_late=lambda k, v, t: late.append((k, v, t))
        )
        windows.count().to(app.topic("late-counts", value=dict))
        stream.window(Tumbling(10, grace=3), emit="update").count().update(updates.append)

    got = _run(broker, tmp_path, run_app, build, "late-counts", 2)
    assert [(v["start"] - BASE, v["value"]) for _k, v in got] == [(0, 2), (10 * s, 3)]
    assert late == [("a", {"n": 5}, BASE + 8 * s)]
    # every update of every window, as it happened (the late record updates nothing)
    assert [(u.start - BASE, u.value) for u in updates] == [
        (0, 1), (10 * s, 1), (0, 2), (10 * s, 2), (10 * s, 3), (60 * s, 1)
    ]  # fmt: skip
