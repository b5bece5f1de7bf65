"""The reference mall under load: completed orders per second and checkout-to-approved time.

    flock /tmp/streamsource-bench.lock .venv/bin/python benchmarks/mall.py [--duration S] [--clients N] [--flat-clients N ...] [--rate R] [--postgres]

Starts ``streamsource mall serve`` (all services in one process) on fresh SQLite files (and,
with ``--postgres``, on a throwaway PostgreSQL server), once per transport: ``broker`` (the
default: streamsource's broker, which ``mall serve`` starts as its child process, its fsync
policy the default ``interval``) and ``local`` (``--transport local``: through the stores). The SQLite stores
keep their default ``durability=full`` (every commit fsync'd). For each it sets up customers,
stores and products, then measures, each for ``--duration`` seconds with ``--clients``
shoppers (:mod:`examples.mall.load`) unless a row says how many:

* ``HTTP round trip``: the baseline, in the same run against the same server: shoppers
  reading a customer (one request, one store read), requests per second and latency;
* ``flat out, N shoppers``: N shoppers ordering as fast as they can (each order: about 12
  requests, ``req/o``; a saga of five steps, 17 transactions across 9 stores); completed
  orders per second, once for each ``--flat-clients`` (8 and 64 by default: a shopper waits
  for each answer, so a few of them leave the mall idle between their requests, and the
  mall's throughput is what enough of them get);
* ``orders at R/s``: orders started on a fixed schedule; checkout-to-approved p50 and p99;
* the same two with the services split across two ``mall serve`` processes (``2 procs``:
  :data:`SPLIT`, the second one on the first one's broker, or on the same stores with
  ``local``), which can use both cores where one process is held to one by its GIL.

The issue's targets on a 2-core machine: 100 completed orders/s on SQLite, p99 under 500 ms
at 20 orders/s. ``vs baseline``: the row's p50 latency over the round trip's. ``CPU ms``: the
mall processes' CPU time (user and system, all threads, from ``/proc``) per request or order
during the row, the broker process a ``mall serve`` starts as its child included, and on
PostgreSQL the database server's processes too;
``shoppers``: this process's (the load generator's) per request or order;
``req/o``: HTTP requests per completed order, polls included.

After each transport's rows, the bound: 2 cores give each of 100 orders/s 20 ms of CPU, for
the mall and its shoppers together. The round trip row's CPU per request times an order's
requests is what HTTP alone takes of that, before any order's work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from examples.mall.client import AsyncHttp  # noqa: E402
from examples.mall.load import Catalogue, Http, Result, run_load, set_up  # noqa: E402

LISTENING = re.compile(r"^mall: .* on (http://\S+)$")
BROKER = re.compile(r"^mall: broker at (\S+)$")
# two processes: the shoppers' side (it starts the broker), and orders with the saga
SPLIT = ("stores,customers,baskets,payments", "ordering,cosec,notifications,search,depot")
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
TARGET = 100.0  # completed orders/s, the target


@dataclass
class Server:
    url: str
    pid: int
    broker: str | None  # the address of the broker it started, if it did


def cpu_seconds(servers: Sequence[Server], database: int | None = None) -> float:
    """User and system CPU time of the servers' processes so far (all their threads), and
    of their child processes (the broker a ``mall serve`` starts); with ``database``, a
    PostgreSQL postmaster's pid, also of that server (its backends are its children)."""
    stats: dict[int, list[str]] = {}  # pid -> fields after the command's ")"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    stats[int(entry)] = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
    pids = {server.pid for server in servers} | ({database} if database else set())
    pids |= {pid for pid, fields in stats.items() if int(fields[1]) in pids}
    return sum(int(stats[p][11]) + int(stats[p][12]) for p in pids if p in stats) / TICK


@contextmanager
def mall_server(
    data_dir: Path,
    store: str | None,
    transport: str,
    services: str | None = None,
    bootstrap: str | None = None,
) -> Iterator[Server]:
    args = [sys.executable, "-m", "streamsource", "mall", "serve", "--port", "0"]
    args += ["--data-dir", str(data_dir), "--transport", transport]
    args += ["--store", store] if store else []
    args += ["--services", services] if services else []
    args += ["--bootstrap", bootstrap] if bootstrap else []
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert process.stderr is not None
        url = broker = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                raise RuntimeError(f"the mall exited with {process.wait()}")
            if match := BROKER.match(line.strip()):
                broker = match.group(1)
            if match := LISTENING.match(line.strip()):
                url = match.group(1)
        if url is None:
            raise RuntimeError("the mall did not say where it listens within 60 s")
        threading.Thread(target=process.stderr.read, daemon=True).start()  # drain
        while time.monotonic() < deadline:
            try:
                if Http(url, timeout=2).call("GET", "/openapi.json")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield Server(url, process.pid, broker)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def round_trips(url: str, world: Catalogue, clients: int, duration: float) -> Result:
    """``clients`` shoppers on one event loop, as in the order rows (the same client,
    :class:`examples.mall.client.AsyncHttp`), each reading a customer over and over."""
    return uvloop.run(_round_trips(url, world, clients, duration))


async def _round_trips(url: str, world: Catalogue, clients: int, duration: float) -> Result:
    result = Result()
    until = time.monotonic() + duration

    async def client(index: int) -> None:
        http = AsyncHttp(url)
        customer = world.customers[index % len(world.customers)]
        path = f"/api/customers/{customer}"
        latencies = []
        try:
            while time.monotonic() < until:
                start = time.monotonic()
                status, body = await http.call("GET", path)
                if status != 200:
                    raise RuntimeError(f"GET {path}: {status} {body}")
                latencies.append(time.monotonic() - start)
        finally:
            http.close()
        result.completed += len(latencies)
        result.approved_latencies += latencies

    start = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    result.elapsed = time.monotonic() - start
    return result


def row(
    backend: str, name: str, r: Result, baseline_p50: float, unit: str, cpu: float, shoppers: float
) -> None:
    p50, p99 = r.percentile(50) * 1000, r.percentile(99) * 1000
    ratio = p50 / baseline_p50 if baseline_p50 else float("nan")
    cpu_ms = cpu * 1000 / r.completed if r.completed else float("nan")
    shopper_ms = shoppers * 1000 / r.completed if r.completed else float("nan")
    per_order = f"{r.requests / r.completed:>7.1f}" if r.requests and r.completed else f"{'':>7}"
    failed = f"  {r.failed} FAILED" if r.failed else ""
    print(
        f"{backend:<16}{name:<32}{r.completed_per_second:>10.1f} {unit:<9}"
        f"{p50:>9.0f}{p99:>9.0f}{ratio:>12.1f}{cpu_ms:>9.2f}{shopper_ms:>10.2f}{per_order}{failed}"
    )


@dataclass
class Cost:
    """CPU per HTTP round trip (the baseline row) and what an order took, for the bound."""

    p50: float  # the round trip's p50 latency, ms: the rows' baseline
    server_ms: float  # the mall's CPU per round trip
    shopper_ms: float  # the shoppers' CPU per round trip
    requests: float  # per completed order, polls included
    polls: float
    order_ms: float  # the mall's and the shoppers' CPU per order, flat out

    def explain(self, target: float) -> None:
        per_request = self.server_ms + self.shopper_ms
        http = self.requests * per_request
        budget = CORES * 1000 / target
        print(
            f"  per order: {self.requests:.1f} requests ({self.polls:.1f} of them polls), "
            f"{self.order_ms:.1f} ms of CPU (mall and shoppers); a bare round trip costs "
            f"{per_request:.2f} ms ({self.server_ms:.2f} mall, {self.shopper_ms:.2f} shoppers), "
            f"so the requests alone are {http:.1f} ms."
        )
        print(
            f"  bound: {CORES} cores give {target:g} orders/s {budget:.1f} ms of CPU each; the "
            f"HTTP round trips alone allow at most {CORES * 1000 / http:.0f} orders/s, this run's "
            f"orders at {self.order_ms:.1f} ms at most {CORES * 1000 / self.order_ms:.0f}/s "
            f"if both cores were busy; the rest of an order is {self.order_ms - http:.1f} ms "
            + (
                f"against the {budget - http:.1f} ms the target leaves."
                if budget > http
                else "and the requests alone already take more than the target leaves."
            )
        )


@contextmanager
def mall(tmp: str, store: str | None, transport: str, processes: int) -> Iterator[list[Server]]:
    """The mall in one process, or split across two (:data:`SPLIT`)."""
    data_dir = Path(tmp) / "mall"
    if processes == 1:
        with mall_server(data_dir, store, transport) as server:
            yield [server]
        return
    with ExitStack() as stack:
        first = stack.enter_context(mall_server(data_dir, store, transport, SPLIT[0]))
        second = stack.enter_context(
            mall_server(data_dir, store, transport, SPLIT[1], bootstrap=first.broker)
        )
        yield [first, second]


def measure(
    backend: str,
    store: str | None,
    transport: str,
    processes: int,
    args: argparse.Namespace,
    base: Cost | None,
    database: int | None = None,
) -> Cost | None:
    """Print the rows of the mall in ``processes`` processes; the round trip's cost, the
    baseline (measured with one process, else ``base``, the one process's)."""
    backend = f"{backend}/{transport}"
    suffix = f", {processes} procs" if processes > 1 else ""
    with tempfile.TemporaryDirectory() as tmp, mall(tmp, store, transport, processes) as servers:
        urls = [server.url for server in servers]
        world = set_up(urls)
        run_load(urls, 2, 1.0, world=world)  # warm up: caches, connections

        def timed(load: Callable[[], Result]) -> tuple[Result, float, float]:
            mall_cpu, shoppers_cpu = cpu_seconds(servers, database), time.process_time()
            result = load()
            used = cpu_seconds(servers, database) - mall_cpu
            return result, used, time.process_time() - shoppers_cpu

        if processes == 1:
            trips, used, shoppers = timed(
                lambda: round_trips(urls[0], world, args.clients, args.duration)
            )
            p50 = trips.percentile(50) * 1000
            row(backend, "HTTP round trip", trips, p50, "req/s", used, shoppers)
            per_trip = 1000 / trips.completed
            base = Cost(p50, used * per_trip, shoppers * per_trip, 0, 0, 0)
        base_p50 = base.p50 if base else float("nan")
        best = 0.0
        errors = []
        for clients in args.flat_clients:
            flat, used, shoppers = timed(
                partial(run_load, urls, clients, args.duration, world=world)
            )
            name = f"flat out, {clients} shoppers{suffix}"
            row(backend, name, flat, base_p50, "orders/s", used, shoppers)
            errors += flat.errors
            if processes == 1 and base is not None and flat.completed_per_second > best:
                best = flat.completed_per_second
                base.requests = flat.requests / flat.completed
                base.polls = flat.polls / flat.completed
                base.order_ms = (used + shoppers) * 1000 / flat.completed
        paced, used, shoppers = timed(
            lambda: run_load(urls, args.clients, args.duration, rate=args.rate, world=world)
        )
        name = f"orders at {args.rate:g}/s{suffix}"
        row(backend, name, paced, base_p50, "orders/s", used, shoppers)
        for error in (errors + paced.errors)[:3]:
            print(f"  error: {error}")
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--clients", type=int, default=8, help="shoppers of the round trip and fixed-rate rows"
    )
    parser.add_argument(
        "--flat-clients",
        type=int,
        action="append",
        help="shoppers of a flat-out row (repeatable; default: 8 and 64)",
    )
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument(
        "--transport",
        choices=["broker", "local"],
        action="append",
        help="only this transport (repeatable; default: both)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        choices=[1, 2],
        action="append",
        help="only the mall in this many processes (repeatable; default: 1 and 2)",
    )
    args = parser.parse_args()
    args.flat_clients = args.flat_clients or [8, 64]
    transports = args.transport or ["broker", "local"]
    counts = args.processes or [1, 2]
    print(f"\n{args.clients} shoppers, {args.duration:g} s per row; latency: checkout to approved")
    print(
        "SQLite stores with durability=full (the default); broker: the mall's child process, fsync=interval"
    )
    print(
        f"{'backend':<16}{'row':<32}{'rate':>10} {'':<9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'vs baseline':>12}{'CPU ms':>9}{'shoppers':>10}{'req/o':>7}"
    )
    for transport in transports:
        base = None
        for processes in sorted(counts):
            base = measure("sqlite", None, transport, processes, args, base)
        if base and base.order_ms:
            base.explain(TARGET)
    if args.postgres:
        from pg_server import PgServer, pg_store_url  # type: ignore[import-not-found]

        server = PgServer.start()
        postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        try:
            for transport in transports:
                base = None
                for processes in sorted(counts):
                    url = pg_store_url(server.url)
                    base = measure("postgres", url, transport, processes, args, base, postmaster)
                if base and base.order_ms:
                    base.explain(TARGET)
        finally:
            server.destroy()


if __name__ == "__main__":
    main()
