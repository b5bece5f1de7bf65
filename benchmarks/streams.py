"""Stream processing: streamsource.streams against Quix Streams, on the same broker, in one run.

    .venv/bin/python benchmarks/streams.py [--records N] [--rounds R] [--quick] [--rate R] [--no-quix]

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

Every (job, engine) cell runs ``--rounds`` times (default 3), the rounds interleaved so
that load from elsewhere on the machine, which comes and goes, falls on every cell; a
cell's figure is the median of its runs. Each worker counts the records it has processed
in an ``update`` at the head of the job (the same call in both engines) and reports the
wall time and its process CPU time (every thread: the client's included) from its first
record until the app returned after the N-th (last outputs delivered, last checkpoint
made). Rows give records/s and CPU seconds per million records; ratios are ours / Quix's.

Latency: each job again on fresh topics while a producer sends ``--rate`` records/s for
``--latency-seconds`` (1,000 keys), and a consumer of the output (``read_committed``, as a
reader of exactly-once output must) notes when each output arrives; p50/p99 over outputs.

* (a): from a record's send to its output's arrival (the send time travels in the record).
* (b), (c): from the send of the record that closes a window to the arrival of the window's
  count. Windows close on the partition's stream time (both engines: Quix with
  ``closing_strategy="partition"``, its faster strategy, instead of its default "key", which
  closes a key's window only at that key's next record), so the closing record is the first
  one sent to the key's partition stamped at or after the window's end. Event time is the
  send time running ``EVENT_SPEED`` (1.1) times as fast as wall time from the first measured
  record: windows close in real time, and their ends fall at every phase of the engines'
  1 s checkpoint timer, where with event time = wall time every window of a run would close
  at one arbitrary phase. (c)'s output is visible once the checkpoint's transaction
  commits, so its latency spreads over the checkpoint interval.

Targets (issue 12): >= 1.5x Quix's records/s on (a) and (b), >= 1.2x on (c); exactly-once
costs under 25% of at-least-once throughput ((c)/(b) > 0.75). Asserts nothing; a busy
machine moves the figures, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import bisect
import faulthandler
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
# In the latency runs event time runs this much faster than wall time, so that window ends
# fall at every phase of an engine's checkpoint timer (see the module docstring).
EVENT_SPEED = 1.1


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
    import logging

    from streamsource.streams import App, Tumbling

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

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
        # closed by the partition's stream time, as ours are (Quix's default closes a key's
        # window at that key's next record only; "partition" is also its faster strategy)
        sdf = sdf.tumbling_window(duration_ms=1000).count().final(closing_strategy="partition")
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
        line, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack into the log
        proc.wait(30)
        log = (work / f"{engine}-{job}.log").read_text(errors="replace")
        raise SystemExit(
            f"{engine} ({job}) did not finish in 300 s; its log ends:\n{log[-8000:]}"
        ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(line.strip().splitlines()[-1])
    return {"rate": records / result["seconds"], "cpu": result["cpu"] / records * 1e6}


def latency(
    engine: str, job: str, bootstrap: str, rate: int, seconds: float, work: Path
) -> list[float]:
    """Seconds from the send of the record that made each output to the output's arrival
    at a consumer of the output topic (see the module docstring)."""
    from confluent_kafka import Consumer, Producer

    topic, out = f"lat-{engine}-{uuid.uuid4().hex[:6]}", f"lat-out-{engine}-{uuid.uuid4().hex[:6]}"
    _create(bootstrap, topic, out)
    proc = _worker(engine, job, bootstrap, topic, out, 10**12, work)
    # read_committed (librdkafka's default): what a reader of (c)'s output sees
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 5})  # fmt: skip
    consumer.subscribe([out])
    arrivals: list[tuple[float, str, dict[str, Any]]] = []  # (arrival, key, value)
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            # consume(n, timeout) would wait the whole timeout for n messages (at this rate,
            # most of it): wait for one message, take what came with it
            first = consumer.poll(0.1)
            if first is None:
                continue
            for m in [first, *consumer.consume(10_000, 0)]:
                if m.error() is None:
                    value = json.loads(m.value() or b"{}")
                    arrivals.append((time.time(), (m.key() or b"").decode(), value))

    reader = threading.Thread(target=read)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    sent: list[tuple[str, int, float]] = []  # measured records: (key, timestamp ms, send time)
    partition_of: dict[str, int] = {}

    def delivered(error: Any, m: Any) -> None:
        if error is None:
            partition_of[m.key().decode()] = m.partition()

    origin = float("inf")  # from the first measured record, event time runs EVENT_SPEED x

    def send(key: str, amount: int) -> tuple[float, int]:
        now = time.time()
        stamp = int(1000 * (now + (EVENT_SPEED - 1) * max(0.0, now - origin)))
        value = json.dumps({"account": key, "amount": amount, "sent": now}).encode()
        producer.produce(topic, value, key.encode(), timestamp=stamp, on_delivery=delivered)
        return now, stamp

    try:
        deadline = time.monotonic() + 120  # warm up: the worker joined and emits outputs
        while not arrivals and time.monotonic() < deadline:
            send("warm", 0)
            producer.flush(5)
            time.sleep(0.2)
        if not arrivals:
            raise SystemExit(f"{engine} ({job}) made no output within 120 s")
        start, origin = time.perf_counter(), time.time()
        while (elapsed := time.perf_counter() - start) < seconds:
            while len(sent) < int(elapsed * rate):
                key = f"acct-{len(sent) % KEYS}"
                now, stamp = send(key, 2 * len(sent))
                sent.append((key, stamp, now))
            producer.poll(0)
            time.sleep(0.001)
        producer.flush(30)
        expected = _expected(job, sent, partition_of)
        deadline = time.monotonic() + 30
        while sum(k != "warm" for _a, k, _v in arrivals) < expected and time.monotonic() < deadline:
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
    delays = _delays(job, arrivals, sent, partition_of)
    if len(delays) != expected:
        print(f"{engine} ({job}): {len(delays)} outputs measured, {expected} expected")
    return delays


def _closing(sent: list[tuple[str, int, float]], partition_of: dict[str, int]
             ) -> dict[int, tuple[list[int], list[float]]]:  # fmt: skip
    """Per input partition, the timestamps and send times of its measured records: a
    window ending at E closes with the partition's first record stamped E or later."""
    by_partition: dict[int, tuple[list[int], list[float]]] = {}
    for key, ts, at in sent:
        stamps, times = by_partition.setdefault(partition_of[key], ([], []))
        stamps.append(ts)
        times.append(at)
    return by_partition


def _expected(job: str, sent: list[tuple[str, int, float]], partition_of: dict[str, int]) -> int:
    """(a): one output per record. (b), (c): one per key and window that a measured record
    closed (it ends at or before the last timestamp sent to the key's partition)."""
    if job == "a":
        return len(sent)
    last = {p: stamps[-1] for p, (stamps, _t) in _closing(sent, partition_of).items()}
    return len({(k, ts - ts % 1000) for k, ts, _at in sent
                if ts - ts % 1000 + 1000 <= last[partition_of[k]]})  # fmt: skip


def _delays(job: str, arrivals: list[tuple[float, str, dict[str, Any]]],
            sent: list[tuple[str, int, float]], partition_of: dict[str, int]) -> list[float]:  # fmt: skip
    if job == "a":
        return [at - v["sent"] for at, key, v in arrivals if key != "warm"]
    closing = _closing(sent, partition_of)
    delays = []
    for at, key, v in arrivals:
        if key == "warm" or key not in partition_of:
            continue
        stamps, times = closing[partition_of[key]]
        i = bisect.bisect_left(stamps, v["end"])
        if i < len(stamps):
            delays.append(at - times[i])
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per cell")
    parser.add_argument(
        "--quick", action="store_true", help="50,000 records, 1 round, 3 s of latency"
    )
    parser.add_argument("--rate", type=int, default=2_000, help="records/s for the latency row")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--no-quix", action="store_true")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        faulthandler.enable()  # a stuck worker shows where (the driver sends SIGABRT)
        engine, job, bootstrap, topic, out, target, state = args.worker
        (quix_worker if engine == "quix" else ours_worker)(
            job, bootstrap, topic, out, int(target), state
        )
        return
    if args.quick:
        args.records, args.rounds, args.latency_seconds = 50_000, 1, 3.0
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
            runs: dict[tuple[str, str], list[dict[str, float]]] = {}
            for _round in range(args.rounds):  # interleaved: load that comes and goes hits all
                for job in ("a", "b", "c", "d"):
                    for engine in engines if job != "d" else ["ours"]:
                        runs.setdefault((job, engine), []).append(
                            throughput(engine, job, bootstrap, "input", args.records, work)
                        )
            rows = {
                cell: {m: statistics.median(r[m] for r in results) for m in ("rate", "cpu")}
                for cell, results in runs.items()
            }
            latencies = {
                (job, engine): latency(
                    engine, job, bootstrap, args.rate, args.latency_seconds, work
                )
                for job in ("a", "b", "c")
                for engine in engines
            }
        finally:
            broker.terminate()
    _print(rows, latencies, engines, args)


def _print(rows: dict[tuple[str, str], dict[str, float]],
           latencies: dict[tuple[str, str], list[float]], engines: list[str], args: Any) -> None:  # fmt: skip
    names = {
        "a": "(a) filter+map",
        "b": "(b) tumbling count",
        "c": "(c) (b) exactly-once",
        "d": "(b) RocksDB state",
    }
    print(
        f"\n{args.records:,} records, 1,000 keys, 2 partitions; each cell the median of"
        f" {args.rounds} interleaved run(s); ratios are ours / Quix Streams'"
    )
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
    print(f"\nend-to-end latency at {args.rate:,} records/s for {args.latency_seconds:g} s, in ms")
    head = f"{'job':<22}" + "".join(
        f"{e + ' p50':>12}{e + ' p99':>12}{'outputs':>9}" for e in engines
    )
    print(head)
    print("-" * len(head))
    for job in ("a", "b", "c"):
        line = f"{names[job]:<22}"
        for engine in engines:
            p50, p99 = _percentiles(latencies[(job, engine)])
            line += f"{p50:>12.1f}{p99:>12.1f}{len(latencies[(job, engine)]):>9,}"
        print(line)
    print(
        "(a): a record's send -> its output read. (b), (c): the send of the record that closes\n"
        "a window (the partition's first stamped at or after its end; event time = send time\n"
        f"running {EVENT_SPEED}x) -> the window's count read; read_committed, so (c) waits for\n"
        "the checkpoint's commit (1 s interval). Both engines close windows per partition."
    )


def _percentiles(delays: list[float]) -> tuple[float, float]:
    if not delays:
        return float("nan"), float("nan")
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


if __name__ == "__main__":
    main()
