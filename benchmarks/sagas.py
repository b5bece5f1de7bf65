"""Five-step sagas per second and their latency, beside the bare messages they exchange.

Two services, each with its own store: ``orders`` runs the sagas, ``worker`` answers every
command; the in-process transport carries the messages (outbox streams, inbox rows: the
same durable path as in production, minus Kafka). Each run, for each backend:

* **baseline**: the same conversation without a saga: ``orders`` sends a command, its reply
  handler sends the next one, five round trips (ten messages) per conversation, each
  message through outbox and inbox exactly as in a saga.
* **sagas**: a five-step :class:`~streamsource.sagas.Saga` (a timeout on every step, so a
  deadline row is scheduled and cancelled per step), ten messages per saga.

Both run flat out (all started at once) and at a fixed rate (``--rate``, default 200/s),
alternately for ``--rounds`` rounds; the table prints the median round's completions per
second, p50/p99 latency over all rounds (start to completion) and the sagas' throughput as a
ratio of the baseline's. Targets (issue 10): ratio at least 0.5; p99 under
250 ms at 200 sagas/s on SQLite.

    .venv/bin/python benchmarks/sagas.py [--count 300] [--rate 200] [--seconds 2] [--no-pg]
        [--durability normal|full]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamsource as ss
from streamsource.eventstore.domain import EventRegistry
from streamsource.messaging import Command, Context, LocalTransport, Reply, Service
from streamsource.sagas import Saga, SagaCommand, SagaEngine, Step

registry = EventRegistry()
STEPS = 5


@registry.event("Work")
class Work(Command, frozen=True):
    conversation: str
    step: int


@registry.event("Worked")
class Worked(Reply, frozen=True):
    conversation: str
    step: int


def _work(step: int) -> Callable[[dict[str, Any]], SagaCommand]:
    return lambda data: SagaCommand("worker", Work(data["id"], step))


class FiveSteps(Saga):
    name = "FiveSteps"
    steps = tuple(Step(f"s{i}", _work(i), timeout=60.0) for i in range(STEPS))


def worker_service(store: ss.EventStore) -> Service:
    service = Service("worker", store, registry=registry)

    def work(ctx: Context, command: Work) -> Worked:
        return Worked(command.conversation, command.step)

    service.handle(Work, work)
    return service


@dataclass
class Result:
    count: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def median(results: list[Result]) -> Result:
    """The round of median throughput, with the latencies of every round pooled."""
    ordered = sorted(results, key=lambda r: r.per_second)
    middle = ordered[len(ordered) // 2]
    pooled = [latency for r in results for latency in r.latencies]
    return Result(middle.count, middle.seconds, pooled)


def start_all(count: int, rate: float | None, start: Callable[[str], None]) -> None:
    """Start ``count`` conversations, flat out or ``rate`` per second."""
    began = time.monotonic()
    for i in range(count):
        if rate is not None:
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        start(f"c{i}")


def wait_for(done: Callable[[], int], count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while done() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done()} of {count} finished in {timeout}s")
        time.sleep(0.02)


def run_baseline(make_store: Callable[[], ss.EventStore], count: int, rate: float | None) -> Result:
    orders_store, worker_store = make_store(), make_store()
    orders = Service("orders", orders_store, registry=registry)
    started: dict[str, float] = {}
    finished: dict[str, float] = {}

    def worked(ctx: Context, reply: Worked) -> None:
        if reply.step + 1 < STEPS:
            ctx.send(Work(reply.conversation, reply.step + 1), to="worker")
        else:
            finished[reply.conversation] = time.time()

    orders.handle(Worked, worked)

    def start(conversation: str) -> None:
        started[conversation] = time.time()
        orders.send(Work(conversation, 0), to="worker")

    transport = LocalTransport([orders, worker_service(worker_store)])
    with transport:
        first = time.time()
        start_all(count, rate, start)
        wait_for(lambda: len(finished), count)
    last = max(finished.values())
    latencies = [finished[c] - started[c] for c in started]
    orders_store.close()
    worker_store.close()
    return Result(count, last - first, latencies)


def run_sagas(make_store: Callable[[], ss.EventStore], count: int, rate: float | None) -> Result:
    orders_store, worker_store = make_store(), make_store()
    orders = Service("orders", orders_store, registry=registry)
    engine = SagaEngine(orders, [FiveSteps])
    ids: list[str] = []

    def start(conversation: str) -> None:
        ids.append(engine.start(FiveSteps, conversation, {"id": conversation}))

    database: Any = orders_store.recorder.database
    watcher = database.connect()  # a session of its own: counting takes no write turn

    def completed() -> int:
        rows = watcher.execute(
            "SELECT COUNT(*) FROM streamsource_sagas WHERE status = 'completed'"
        ).fetchall()
        return int(rows[0][0])

    transport = LocalTransport([orders, worker_service(worker_store)])
    with transport, engine:
        first = time.time()
        start_all(count, rate, start)
        wait_for(completed, count)
    watcher.close()
    states = [engine.load(saga_id) for saga_id in ids]
    latencies = [s.history[-1].at - s.history[0].at for s in states]
    last = max(s.history[-1].at for s in states)
    orders_store.close()
    worker_store.close()
    return Result(count, last - first, latencies)


def stores(
    backend: str, root: Path, pg_url: str | None, durability: str
) -> Callable[[], ss.EventStore]:
    counter = iter(range(1_000_000))

    def make() -> ss.EventStore:
        n = next(counter)
        if backend == "sqlite":
            return ss.open_store(f"sqlite:///{root}/{backend}-{n}.db?durability={durability}")
        from pg_server import pg_store_url

        assert pg_url is not None
        return ss.open_store(pg_store_url(pg_url))

    return make


def start_postgres(url: str | None) -> tuple[str | None, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    if url is not None:
        return url, None
    try:
        from pg_server import PgServer, ServerUnavailable
    except ImportError:
        return None, None
    try:
        server = PgServer.start()
    except ServerUnavailable as exc:
        print(f"(no PostgreSQL rows: {exc})")
        return None, None
    return server.url, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="sagas run flat out")
    parser.add_argument("--rate", type=float, default=200.0, help="sagas per second")
    parser.add_argument("--seconds", type=float, default=2.0, help="how long to run at --rate")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL server to use")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternated")
    parser.add_argument(
        "--pg-scale", type=float, default=0.34, help="PostgreSQL counts as a share of SQLite's"
    )
    parser.add_argument(
        "--durability",
        choices=("normal", "full"),
        default="normal",
        help="SQLite stores: normal (no fsync per commit, as benchmarks/messaging.py) or full",
    )
    args = parser.parse_args()
    backends = ["sqlite"]
    pg_url, server = (None, None) if args.no_pg else start_postgres(args.pg_url)
    if pg_url is not None:
        backends.append("postgresql")
    paced = int(args.rate * args.seconds)
    print(
        f"five-step sagas against {STEPS} round trips (10 messages) of bare messaging"
        f" (SQLite durability={args.durability}; PostgreSQL: the server's settings)"
    )
    print(
        f"{'backend':<11}{'load':<11}{'run':<10}{'count':>6}{'per s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}"
    )
    try:
        with tempfile.TemporaryDirectory() as root:
            for backend in backends:
                make = stores(backend, Path(root), pg_url, args.durability)
                run_baseline(make, 20, None)  # warm up (imports, connections, caches):
                run_sagas(make, 20, None)  # otherwise the first row pays for them
                scale = 1.0 if backend == "sqlite" else args.pg_scale
                for label, count, rate in (
                    ("flat out", int(args.count * scale), None),
                    (f"{args.rate:g}/s", int(paced * scale), args.rate),
                ):
                    # alternate the two, round after round: a shared machine's speed drifts,
                    # and each figure is the median of its rounds
                    bases, runs = [], []
                    for _ in range(args.rounds):
                        bases.append(run_baseline(make, count, rate))
                        runs.append(run_sagas(make, count, rate))
                    base, sagas = median(bases), median(runs)
                    for name, result in (("baseline", base), ("sagas", sagas)):
                        ratio = result.per_second / base.per_second
                        print(
                            f"{backend:<11}{label:<11}{name:<10}{result.count:>6}"
                            f"{result.per_second:>9.0f}{result.percentile(0.5):>9.1f}"
                            f"{result.percentile(0.99):>9.1f}{ratio:>8.2f}",
                            flush=True,
                        )
    finally:
        if server is not None:
            server.destroy()
    print("targets: sagas/baseline >= 0.5 flat out; p99 < 250 ms at 200/s on SQLite")


if __name__ == "__main__":
    main()
