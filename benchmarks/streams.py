"""Stream processing: streamsource.streams against Quix Streams, on the same broker, in one run.

    .venv/bin/python benchmarks/streams.py [--records N] [--quick] [--rate R] [--no-quix]

Quix Streams runs in its own pinned environment (``.cache/envs/quix``, built by
``scripts/test``; it pins confluent-kafka below our lock's version). Both engines run as
child processes (one group member each, the way users run them) against one
``streamsource broker`` child process, with a 1 s checkpoint (Quix: commit) interval.

Jobs, over ``--records`` pre-produced JSON records ``{"account", "amount"}`` keyed by one
of 1,000 accounts on 2 partitions, 20 records per millisecond of event time:

* (a) stateless: filter (even amounts) and map to a new dict, to an output topic;
* (b) a per-key tumbling 1 s count (emitted when the window closes), to an output topic;
* (c) (b) with ``processing_guarantee="exactly-once"``;
* ours only: (b) with ``state_backend="rocksdict"`` (Quix keeps its state in RocksDB too).

Each worker counts the records it has processed in an ``update`` at the head of the job
(the same call in both engines) and reports the wall time and its process CPU time
(every thread: the client's included) from its first record until the app returned after
the N-th (last outputs delivered, last checkpoint made). Rows give
records/s and CPU seconds per million records; ratios are ours / Quix's. The latency row
runs (a) on a fresh topic while a producer sends ``--rate`` records/s for
``--latency-seconds``; each record carries its send time and a consumer of the output
notes the delay: p50/p99 end to end.

Targets (issue 12): >= 1.5x Quix's records/s on (a) and (b), >= 1.2x on (c); exactly-once
costs under 25% of at-least-once throughput ((c)/(b) > 0.75). Asserts nothing; a busy
machine moves the figures, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUIX_PYTHON = ROOT / ".cache" / "envs" / "quix" / "bin" / "python"
KEYS = 1_000
BASE = 1_700_000_000_000


# -- workers (run in a child process; the Quix one must not import streamsource) -----------


class _Meter:
    """Notes the first record; asks the app to stop at the N-th. The run ends when the app
    returned (its last outputs delivered, its last checkpoint made): ``report``."""

    def __init__(self, target: int, stop: Any) -> None:
        self.target, self.stop, self.count = target, stop, 0
        self.start = self.cpu = 0.0

    def __call__(self, _value: Any) -> None:
        if self.count == 0:
            self.start, self.cpu = time.perf_counter(), time.process_time()
        self.count += 1
        if self.count == self.target:
            self.stop()

    def report(self) -> None:
        seconds, cpu = time.perf_counter() - self.start, time.process_time() - self.cpu
        print(json.dumps({"seconds": seconds, "cpu": cpu}), flush=True)


def _cents(v: dict[str, Any]) -> dict[str, Any]:
    return {"account": v["account"], "cents": v["amount"] * 100, "sent": v.get("sent")}


def _even(v: dict[str, Any]) -> bool:
    return bool(v["amount"] % 2 == 0)


def ours_worker(job: str, bootstrap: str, topic: str, out: str, target: int, state: str) -> None:
    from streamsource.streams import App, Tumbling

    guarantee = "exactly-once" if job == "c" else "at-least-once"
    backend = "rocksdict" if job == "d" else "sqlite"
    app = App(
        bootstrap,
        f"ours-{uuid.uuid4().hex[:8]}",
        state_dir=state,
        processing_guarantee=guarantee,
        state_backend=backend,
    )
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    meter = _Meter(target, app.stop)
    stream = app.stream(app.topic(topic, value=dict)).update(meter)
    if job == "a":
        stream.filter(_even).map(_cents).to(app.topic(out, value=dict))
    else:
        stream.window(Tumbling(1)).count().to(app.topic(out, value=dict))
    app.run()
    meter.report()


def quix_worker(job: str, bootstrap: str, topic: str, out: str, target: int, state: str) -> None:
    import logging

    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        commit_interval=1.0,
        state_dir=state,
        loglevel=logging.WARNING,
        processing_guarantee="exactly-once" if job == "c" else "at-least-once",
    )
    source = app.topic(topic, value_deserializer="json", key_deserializer="str")
    sink = app.topic(out, value_serializer="json", key_serializer="str")
    meter = _Meter(target, app.stop)
    sdf = app.dataframe(source).update(meter)
    if job == "a":
        sdf = sdf.filter(_even).apply(_cents)
    else:
        sdf = sdf.tumbling_window(duration_ms=1000).count().final()
    sdf.to_topic(sink)
    app.run()
    meter.report()


# -- the driver -------------------------------------------------------------------------------


def _produce(bootstrap: str, topic: str, records: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    for i in range(records):
        account = f"acct-{i % KEYS}"
        value = b'{"account":"%s","amount":%d}' % (account.encode(), i % 100)
        while True:
            try:
                producer.produce(topic, value, account.encode(), timestamp=BASE + i // 20)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise SystemExit("could not pre-produce the input")


def _create(bootstrap: str, *topics: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=2, replication_factor=1) for t in topics]
    ).values():
        future.result(30)


def _worker(
    engine: str, job: str, bootstrap: str, topic: str, out: str, target: int, work: Path
) -> subprocess.Popen[str]:
    python = str(QUIX_PYTHON) if engine == "quix" else sys.executable
    state = tempfile.mkdtemp(dir=work)
    return subprocess.Popen(
        [python, __file__, "--worker", engine, job, bootstrap, topic, out, str(target), state],
        stdout=subprocess.PIPE,
        stderr=open(work / f"{engine}-{job}.log", "ab"),
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")} if engine == "ours" else None,
    )


def throughput(
    engine: str, job: str, bootstrap: str, topic: str, records: int, work: Path
) -> dict[str, float]:
    proc = _worker(
        engine, job, bootstrap, topic, f"out-{engine}-{job}-{uuid.uuid4().hex[:6]}", records, work
    )
    try:
        line, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(line.strip().splitlines()[-1])
    return {"rate": records / result["seconds"], "cpu": result["cpu"] / records * 1e6}


def latency(
    engine: str, bootstrap: str, rate: int, seconds: float, work: Path
) -> tuple[float, float]:
    from confluent_kafka import Consumer, Producer

    topic, out = f"lat-{engine}-{uuid.uuid4().hex[:6]}", f"lat-out-{engine}-{uuid.uuid4().hex[:6]}"
    _create(bootstrap, topic, out)
    proc = _worker(engine, "a", bootstrap, topic, out, 10**12, work)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 5})  # fmt: skip
    consumer.subscribe([out])
    delays: list[float] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for m in consumer.consume(1000, 0.1):
                if m.error() is None:
                    sent = json.loads(m.value() or b'{"sent": null}')["sent"]
                    if sent is not None:
                        delays.append(time.time() - sent)

    reader = threading.Thread(target=read)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    try:
        deadline = time.monotonic() + 120  # warm up: the worker joined and answers
        while not delays and time.monotonic() < deadline:
            producer.produce(
                topic,
                json.dumps({"account": "warm", "amount": 0, "sent": time.time()}).encode(),
                b"warm",
            )
            producer.flush(5)
            time.sleep(0.2)
        delays.clear()
        start, n = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * rate)
            while n < due:
                account = f"acct-{n % KEYS}"
                value = json.dumps({"account": account, "amount": 2 * n, "sent": time.time()})
                producer.produce(topic, value.encode(), account.encode())
                n += 1
            producer.poll(0)
            time.sleep(0.001)
        producer.flush(30)
        deadline = time.monotonic() + 30
        while len(delays) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        reader.join(30)
        consumer.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    return statistics.median(ordered) * 1000 if ordered else float("nan"), p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--quick", action="store_true", help="50,000 records, 3 s of latency")
    parser.add_argument("--rate", type=int, default=2_000, help="records/s for the latency row")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--no-quix", action="store_true")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, job, bootstrap, topic, out, target, state = args.worker
        (quix_worker if engine == "quix" else ours_worker)(
            job, bootstrap, topic, out, int(target), state
        )
        return
    if args.quick:
        args.records, args.latency_seconds = 50_000, 3.0
    engines = ["ours"] + ([] if args.no_quix or not QUIX_PYTHON.exists() else ["quix"])
    if "quix" not in engines:
        print(f"Quix Streams is not installed at {QUIX_PYTHON} (scripts/test builds it): ours only")

    sys.path.insert(0, str(ROOT / "src"))
    from streamsource.kafka.broker.process import BrokerProcess

    with tempfile.TemporaryDirectory(prefix="streams-bench-") as tmp:
        work = Path(tmp)
        broker = BrokerProcess(work / "broker", work / "broker.log", partitions=2)
        broker.start()
        try:
            bootstrap = broker.bootstrap
            _create(bootstrap, "input")
            _produce(bootstrap, "input", args.records)
            rows: dict[tuple[str, str], dict[str, float]] = {}
            for job in ("a", "b", "c", "d"):
                for engine in engines if job != "d" else ["ours"]:
                    rows[(job, engine)] = throughput(
                        engine, job, bootstrap, "input", args.records, work
                    )
            latencies = {
                engine: latency(engine, bootstrap, args.rate, args.latency_seconds, work)
                for engine in engines
            }
        finally:
            broker.terminate()
    _print(rows, latencies, engines, args)


def _print(rows: dict[tuple[str, str], dict[str, float]], latencies: dict[str, tuple[float, float]],
           engines: list[str], args: Any) -> None:  # fmt: skip
    names = {
        "a": "(a) filter+map",
        "b": "(b) tumbling count",
        "c": "(c) (b) exactly-once",
        "d": "(b) RocksDB state",
    }
    print(f"\n{args.records:,} records, 1,000 keys, 2 partitions; ratios are ours / Quix Streams'")
    head = f"{'job':<22}{'ours rec/s':>12}{'quix rec/s':>12}{'ratio':>8}{'ours CPU s/M':>14}{'quix CPU s/M':>14}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for job in ("a", "b", "c", "d"):
        ours = rows[(job, "ours")]
        quix = rows.get((job, "quix"))
        line = f"{names[job]:<22}{ours['rate']:>12,.0f}"
        if quix:
            line += f"{quix['rate']:>12,.0f}{ours['rate'] / quix['rate']:>7.2f}x"
            line += f"{ours['cpu']:>14.1f}{quix['cpu']:>14.1f}{ours['cpu'] / quix['cpu']:>7.2f}x"
        else:
            line += f"{'-':>12}{'-':>8}{ours['cpu']:>14.1f}{'-':>14}{'-':>8}"
        print(line)
    cost = rows[("c", "ours")]["rate"] / rows[("b", "ours")]["rate"]
    print(f"exactly-once / at-least-once throughput (ours): {cost:.2f}")
    if ("c", "quix") in rows:
        print(
            f"exactly-once / at-least-once throughput (quix): {rows[('c', 'quix')]['rate'] / rows[('b', 'quix')]['rate']:.2f}"
        )
    print(f"\nend-to-end latency of (a) at {args.rate:,} records/s for {args.latency_seconds:g} s")
    for engine in engines:
        p50, p99 = latencies[engine]
        print(f"  {engine:<6} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")


if __name__ == "__main__":
    main()
