"""How long the console takes to serve one page of a big stream and a big topic.

    .venv/bin/python benchmarks/console.py             # 1,000,000 events, 10,000,000 messages
    .venv/bin/python benchmarks/console.py --quick     # 100,000 events, 500,000 messages

A real console process (``streamsource console``) over a SQLite store holding one stream of
``--events`` events and a broker process holding one topic partition of ``--messages``
messages; each row fetches one page of 50 (the JSON API, over HTTP, as a script or the
page's own request would) from the newest end, the middle and the oldest end, ``--repeat``
times, and prints the median and 95th percentile. The baseline rows read the same page
without the console, in this process: the store's ``read_stream``/``read_all`` and an
assigned confluent-kafka consumer; for the topic pages, the metadata, watermarks and
DescribeLogDirs (kafka-python) they ask for. The ratio is what the console adds (HTTP,
JSON, rendering values) on top of the reads themselves. Issue 13 sets under 200 ms per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

import streamsource as ss
from kafka import KafkaAdminClient
from streamsource.kafka.broker.process import BrokerProcess

PAGE = 50
TOPIC = "bench.orders"
STREAM = "bench-1"
TARGET_MS = 200.0


def fill_store(url: str, events: int) -> None:
    batch = 10_000
    with ss.open_store(url) as store:
        for start in range(0, events, batch):
            store.append(
                STREAM,
                [
                    ss.NewEvent("Counted", {"n": n, "note": "a typical small event"})
                    for n in range(start, min(start + batch, events))
                ],
            )
        store.append("other-1", [ss.NewEvent("Other", {})])


def fill_topic(bootstrap: str, messages: int) -> int:
    """Produce ``messages`` to one partition; the timestamp of the middle message."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
        future.result(60)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.num.messages": 1000,  # batches of a busy producer, not one per MiB
            "queue.buffering.max.messages": 1_000_000,
            "compression.type": "lz4",
        }
    )
    base = int(time.time() * 1000) - messages  # one millisecond apart, in the past
    for n in range(messages):
        while True:
            try:
                producer.produce(
                    TOPIC,
                    key=f"order-{n}".encode(),
                    value=b'{"order": %d, "sku": "sku-%d", "total": 1999}' % (n, n % 977),
                    partition=0,
                    timestamp=base + n,
                )
                break
            except BufferError:
                producer.poll(0.1)
        if n % 100_000 == 0:
            producer.poll(0)
    if producer.flush(600) != 0:
        raise SystemExit("the broker did not acknowledge every message")
    return base + messages // 2


@contextmanager
def console_process(store: str, bootstrap: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "streamsource", "console", "--port", "0", "--store", store,
         "--bootstrap", bootstrap],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("console at "):
            raise SystemExit(f"the console did not start: {line!r}")
        yield line.split()[-1].rstrip("/")
    finally:
        process.terminate()
        process.wait(30)


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds (after one warm-up call)."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def get(client: httpx.Client, path: str, **params: object) -> Callable[[], object]:
    def call() -> object:
        response = client.get(path, params=params)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="100,000 events, 500,000 messages")
    args = parser.parse_args()
    if args.quick:
        args.events, args.messages, args.repeat = 100_000, 500_000, 10
    with tempfile.TemporaryDirectory(prefix="console-bench-") as directory:
        run(Path(directory), args.events, args.messages, args.repeat)


def run(directory: Path, events: int, messages: int, repeat: int) -> None:
    url = f"sqlite:///{directory / 'store.db'}"
    started = time.perf_counter()
    fill_store(url, events)
    print(f"filled the store: {events:,} events in {time.perf_counter() - started:.0f}s")
    broker = BrokerProcess(directory / "broker", directory / "broker.log").start()
    try:
        started = time.perf_counter()
        middle_ms = fill_topic(broker.bootstrap, messages)
        print(f"filled {TOPIC}: {messages:,} messages in {time.perf_counter() - started:.0f}s")
        rows = measure(url, broker.bootstrap, events, messages, middle_ms, repeat)
    finally:
        broker.terminate()
    print()
    print(f"one page of {PAGE}, median and p95 of {repeat} requests; target < {TARGET_MS:.0f} ms")
    header = f"{'page':<48} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11}"
    print(header)
    print("-" * len(header))
    for name, (median, p95), baseline in rows:
        ratio = "" if baseline is None else f"{median / baseline:.1f}x"
        print(f"{name:<48} {median:>10.1f} {p95:>8.1f} {ratio:>11}")


def measure(
    url: str, bootstrap: str, events: int, messages: int, middle_ms: int, repeat: int
) -> list[tuple[str, tuple[float, float], float | None]]:
    rows: list[tuple[str, tuple[float, float], float | None]] = []
    middle_version = events // 2
    with ss.open_store(url) as store:
        middle_position = next(store.read_stream(STREAM, from_version=middle_version)).position
        base_stream = timed(
            lambda: list(
                store.read_stream(
                    STREAM, from_version=middle_version, backwards=True, limit=PAGE + 1
                )
            ),
            repeat,
        )
        base_log = timed(
            lambda: list(store.read_all(before=middle_position, backwards=True, limit=PAGE + 1)),
            repeat,
        )
    rows.append((f"baseline: read_stream, middle of {events:,}", base_stream, None))
    rows.append(("baseline: read_all, middle of the log", base_log, None))

    lock = threading.Lock()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-baseline",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
            "max.partition.fetch.bytes": 256 * 1024,
            "queued.min.messages": 1000,
            "fetch.queue.backoff.ms": 1,  # the console's settings: see kafka_views.py
        }
    )

    def direct_page(offset: int) -> Callable[[], object]:
        def call() -> object:
            with lock:
                consumer.assign([TopicPartition(TOPIC, 0, offset)])
                got: list[object] = []
                while len(got) < PAGE:
                    got += [m for m in consumer.consume(PAGE - len(got), 0.1) if not m.error()]
                consumer.unassign()
                return got

        return call

    base_kafka = timed(direct_page(messages // 2), repeat)
    rows.append((f"baseline: consumer page, middle of {messages:,}", base_kafka, None))
    consumer.close()

    # the topic pages' own reads: metadata, watermarks (one partition), DescribeLogDirs
    admin = AdminClient({"bootstrap.servers": bootstrap})
    sizes = KafkaAdminClient(bootstrap_servers=bootstrap)
    watermarks = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-baseline"})

    def direct_topic() -> object:
        admin.list_topics(timeout=10)
        watermarks.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10, cached=False)
        return sizes.describe_log_dirs({TOPIC: [0]})

    base_topic = timed(direct_topic, repeat)
    rows.append(("baseline: metadata, watermarks, DescribeLogDirs", base_topic, None))
    sizes.close()
    watermarks.close()

    with (
        console_process(url, bootstrap) as console,
        httpx.Client(base_url=console, timeout=60) as client,
    ):
        stream_rows = [
            ("stream page: newest", get(client, "/api/stream", name=STREAM, limit=PAGE)),
            (
                "stream page: middle (from_version)",
                get(client, "/api/stream", name=STREAM, limit=PAGE, from_version=middle_version),
            ),
            (
                "stream page: oldest (forwards)",
                get(client, "/api/stream", name=STREAM, limit=PAGE, direction="forwards"),
            ),
            (
                "time travel: as of the middle version",
                get(client, "/api/time-travel", name=STREAM, limit=PAGE, version=middle_version),
            ),
        ]
        for name, call in stream_rows:
            rows.append((name, timed(call, repeat), base_stream[0]))
        log_rows = [
            ("global log page: newest", get(client, "/api/log", limit=PAGE)),
            (
                "global log page: middle (before)",
                get(client, "/api/log", limit=PAGE, before=middle_position),
            ),
        ]
        for name, call in log_rows:
            rows.append((name, timed(call, repeat), base_log[0]))
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle_ms / 1000))
        when += f".{middle_ms % 1000:03d}Z"
        topic_rows = [
            ("topic page: newest", get(client, "/api/kafka/messages", topic=TOPIC, limit=PAGE)),
            (
                "topic page: middle (offset)",
                get(client, "/api/kafka/messages", topic=TOPIC, limit=PAGE, offset=messages // 2),
            ),
            (
                "topic page: oldest (offset 0)",
                get(client, "/api/kafka/messages", topic=TOPIC, limit=PAGE, offset=0),
            ),
            (
                "topic page: from the middle time",
                get(client, "/api/kafka/messages", topic=TOPIC, limit=PAGE, time=when),
            ),
            (
                "topic search: key, 10,000 messages scanned",
                get(
                    client,
                    "/api/kafka/messages",
                    topic=TOPIC,
                    offset=messages - 10_000,
                    key="no-such-key",
                ),
            ),
        ]
        for name, call in topic_rows:
            rows.append((name, timed(call, repeat), base_kafka[0]))
        size_rows = [
            ("topics list (messages and bytes)", get(client, "/api/kafka/topics")),
            (
                "topic detail (partitions, configs, bytes)",
                get(client, "/api/kafka/topic", name=TOPIC),
            ),
        ]
        for name, call in size_rows:
            rows.append((name, timed(call, repeat), base_topic[0]))
    return rows


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
