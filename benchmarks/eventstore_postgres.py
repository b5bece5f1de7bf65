"""Event-store throughput on PostgreSQL against a raw psycopg floor, measured in the same run.

    .venv/bin/python benchmarks/eventstore_postgres.py [--quick] [--pg-url URL]

Without ``--pg-url`` it starts its own server the way the tests do (``tests/pg_server.py``:
a fresh cluster on 127.0.0.1, default durability: ``fsync=on``, ``synchronous_commit=on``).
The floor is a psycopg loop of single-row INSERT + COMMIT into a two-column table on the same
server: what one durable commit costs there. Every figure is events per second through the
public API (``streamsource.open_store``) with its ratio to the floor, the floor being run
in slices taken in turn with that figure's slices (the machine's speed drifts; pairs don't).

The 16 concurrent writers run three times: as threads of this process and as asyncio tasks
of one loop (the store's group commit sends the appends that meet as one call and one
commit: the row shows how many each commit carried), and as 16 separate processes of one
writer each (16 application instances: nothing to share within a process, so this row shows
how the server alone shares commits). Each is followed by its ceiling: the
floor itself on as many connections, threads or processes. On a machine with few cores
that ceiling, not the target, bounds what any store can reach.

``benchmarks/eventstore.py`` prints this table too, after its SQLite one (it calls
:func:`run_from_environment`).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

import streamsource as ss
from streamsource.eventstore.backends.postgres.queries import expected_code

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_server import PgServer, ServerUnavailable

ANY_CODE = expected_code(ss.ANY)


@dataclass(frozen=True)
class Sizes:
    floor_commits: int
    single_appends: int
    batch_appends: int  # calls of 10 events
    writers: int
    appends_per_writer: int
    replay_events: int
    read_all_events: int


FULL = Sizes(2000, 2000, 500, 16, 250, 10_000, 100_000)
QUICK = Sizes(300, 300, 100, 16, 40, 2_000, 20_000)


@dataclass(frozen=True)
class Row:
    name: str
    events_per_second: float
    floor: float  # the floor's commits/s, measured in turn with this row
    target: str = ""


def event(i: int) -> ss.NewEvent:
    return ss.NewEvent("Deposited", {"amount": i, "currency": "EUR"}, metadata={"reason": "bench"})


class Floor:
    """Single-row INSERT + COMMIT per iteration on a plain table of the same server."""

    def __init__(self, server_url: str) -> None:
        self.url = server_url
        self.conn = psycopg.connect(server_url)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, data bytea)"
        )
        self.conn.commit()

    def commits(self, count: int) -> int:
        payload = b'{"amount":1,"currency":"EUR"}'
        for _ in range(count):
            self.conn.execute("INSERT INTO bench_floor (data) VALUES (%s)", (payload,))
            self.conn.commit()
        return count

    def close(self) -> None:
        self.conn.close()


class FunctionFloor(Floor):
    """The store's own ``append_event`` SQL function called in a loop on a plain connection.

    No pool, no Python store layer: what the server's side of an append costs. Beside the
    floor's INSERT it shows how much of the gap to the ceiling is the append function (global
    order lock, stream check, four indexes) rather than the client.
    """

    def __init__(self, server_url: str, schema: str, stream: str) -> None:
        self.url = server_url
        self.conn = psycopg.connect(server_url, autocommit=True, options=f"-c search_path={schema}")
        self.stream = stream

    def commits(self, count: int) -> int:
        payload = b'{"amount":1,"currency":"EUR"}'
        for _ in range(count):
            self.conn.execute(
                "SELECT last_version, last_position FROM append_event(%s, %s, %s, %s, %s, %s)",
                (self.stream, ANY_CODE, uuid.uuid4(), "Deposited", payload, b"{}"),
                prepare=True,
            )
        return count


def _process_writer(
    url: str, kind: str, number: int, per_round: int, rounds: int, barrier: Any
) -> None:
    """One writer process: per round, wait for the start, do its appends, report the end."""
    if kind == "store":
        store = ss.open_store(url, pool_size=1)
        stream = f"process-writer-{number}"

        def slice_(round_: int) -> None:
            for i in range(per_round):
                store.append(stream, [event(round_ * per_round + i)])

        close: Callable[[], None] = store.close
    else:
        floor = Floor(url)

        def slice_(round_: int) -> None:
            floor.commits(per_round)

        close = floor.close
    try:
        barrier.wait()  # started, imported and connected: the parent's floor runs alone
        for round_ in range(rounds):
            barrier.wait()
            slice_(round_)
            barrier.wait()
    finally:
        close()


class ProcessWriters:
    """Writers in separate processes, started once, run slice by slice (``run_slice``).

    Threads of one process share the GIL: 16 of them cannot overlap their Python work, so
    they measure the client as much as the server. Processes are what 16 application
    instances would be, and show how far the server shares its commits.
    """

    def __init__(self, url: str, kind: str, writers: int, per_round: int, rounds: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self.barrier = context.Barrier(writers + 1)
        self.count = writers * per_round
        self.processes = [
            context.Process(
                target=_process_writer,
                args=(url, kind, number, per_round, rounds, self.barrier),
                daemon=True,
            )
            for number in range(writers)
        ]
        for process in self.processes:
            process.start()
        self.barrier.wait(timeout=300)  # every writer is ready

    def run_slice(self, _: int) -> float:
        """Let every writer do one slice; the seconds it took all of them."""
        self.barrier.wait(timeout=120)
        start = time.perf_counter()
        self.barrier.wait(timeout=600)
        return time.perf_counter() - start

    def join(self) -> None:
        for process in self.processes:
            process.join(timeout=60)


def paired_processes(floor: Floor, floor_commits: int, writers: ProcessWriters, rounds: int) -> Row:
    """:func:`paired` for writers in other processes (only their own slices are timed)."""
    floor_time = work_time = 0.0
    floor_items = work_items = 0
    for round_ in range(rounds):
        start = time.perf_counter()
        floor_items += floor.commits(max(1, floor_commits // rounds))
        floor_time += time.perf_counter() - start
        work_time += writers.run_slice(round_)
        work_items += writers.count
    writers.join()
    return Row("", work_items / work_time, floor_items / floor_time)


def paired(floor: Floor, floor_commits: int, work: Callable[[int], int], rounds: int) -> Row:
    """Alternate ``rounds`` slices of the floor and of ``work(round)``, same conditions for both.

    On a shared machine the disk and CPU change speed from one second to the next; slices
    taken in turn make the ratio fair even when the absolute figures move.
    """
    floor_time = work_time = 0.0
    floor_items = work_items = 0
    for round_ in range(rounds):
        start = time.perf_counter()
        floor_items += floor.commits(max(1, floor_commits // rounds))
        middle = time.perf_counter()
        work_items += work(round_)
        floor_time += middle - start
        work_time += time.perf_counter() - middle
    return Row("", work_items / work_time, floor_items / floor_time)


def store_rows(url: str, schema: str, floor: Floor, sizes: Sizes) -> list[Row]:
    """The store's figures through the public API, each paired with its own floor slices."""
    rows: list[Row] = []
    rounds = 10
    with ss.open_store(url, pool_size=sizes.writers + 4) as store:
        version: int | None = None

        def single(_: int) -> int:
            nonlocal version
            for i in range(sizes.single_appends // rounds):
                expected = ss.NO_STREAM if version is None else version
                version = store.append("single-1", [event(i)], expected).version
            return sizes.single_appends // rounds

        row = paired(floor, sizes.floor_commits, single, rounds)
        rows.append(replace(row, name="append, 1 event per call", target=">= 0.8x floor"))

        def batches(_: int) -> int:
            calls = sizes.batch_appends // rounds
            for i in range(calls):
                store.append("batch-1", [event(i * 10 + j) for j in range(10)])
            return calls * 10

        row = paired(floor, sizes.floor_commits, batches, rounds)
        rows.append(replace(row, name="append, 10 events per call"))

        def concurrent(round_: int) -> int:
            per_writer = sizes.appends_per_writer // rounds
            barrier = threading.Barrier(sizes.writers)

            def writer(n: int) -> None:
                barrier.wait()
                for i in range(per_writer):
                    store.append(f"writer-{n}", [event(i)])

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(sizes.writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sizes.writers * per_writer

        before = store.stats()
        row = paired(floor, sizes.floor_commits, concurrent, rounds)
        rows.append(
            replace(
                row,
                name=f"append, {sizes.writers} concurrent writers (threads){sharing(before, store.stats())}",
                target=">= 0.9x ceiling",
            )
        )
        rows.append(async_writers(url, floor, sizes, rounds))

        # What the machine allows at best: the floor itself on that many connections at once.
        # Where this is far below writers x floor, commits are CPU-bound, not fsync-bound.
        parallel = [Floor(floor.url) for _ in range(sizes.writers)]

        def parallel_floor(_: int) -> int:
            per_connection = sizes.appends_per_writer // rounds
            threads = [threading.Thread(target=f.commits, args=(per_connection,)) for f in parallel]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sizes.writers * per_connection

        row = paired(floor, sizes.floor_commits, parallel_floor, rounds)
        for connection in parallel:
            connection.close()
        rows.append(
            replace(row, name=f"(ceiling: the floor on {sizes.writers} connections at once)")
        )

        functions = [
            FunctionFloor(floor.url, schema, f"function-{n}") for n in range(sizes.writers)
        ]

        def parallel_function(_: int) -> int:
            per_connection = sizes.appends_per_writer // rounds
            threads = [
                threading.Thread(target=f.commits, args=(per_connection,)) for f in functions
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sizes.writers * per_connection

        row = paired(floor, sizes.floor_commits, parallel_function, rounds)
        for connection in functions:
            connection.close()
        rows.append(
            replace(
                row,
                name=f"(the store's append_event SQL on {sizes.writers} connections, no client)",
            )
        )

        per_round = sizes.appends_per_writer // rounds
        store_writers = ProcessWriters(url, "store", sizes.writers, per_round, rounds)
        row = paired_processes(floor, sizes.floor_commits, store_writers, rounds)
        rows.append(
            replace(
                row,
                name=f"append, {sizes.writers} concurrent writers (processes, 1 writer each)",
                target="(nothing to share within a process) vs ceiling",
            )
        )
        floor_writers = ProcessWriters(floor.url, "floor", sizes.writers, per_round, rounds)
        row = paired_processes(floor, sizes.floor_commits, floor_writers, rounds)
        rows.append(replace(row, name=f"(ceiling: the floor in {sizes.writers} processes at once)"))

        for start in range(0, sizes.replay_events, 500):
            store.append("replay-1", [event(i) for i in range(start, start + 500)])
        row = paired(
            floor, sizes.floor_commits, lambda _: sum(1 for _ in store.read_stream("replay-1")), 3
        )
        rows.append(replace(row, name=f"replay one {sizes.replay_events:,}-event stream"))

        present = store.head_position()
        for start in range(present, sizes.read_all_events, 1000):
            count = min(1000, sizes.read_all_events - start)
            store.append(f"fill-{start}", [event(i) for i in range(count)])
        row = paired(
            floor,
            sizes.floor_commits,
            lambda _: sum(1 for _ in store.read_all(limit=sizes.read_all_events)),
            3,
        )
        rows.append(replace(row, name=f"read_all of {sizes.read_all_events:,} events, decoded"))
    return rows


def sharing(before: dict[str, Any], after: dict[str, Any]) -> str:
    """How many appends each call of the store's group commit carried in between."""
    commits = int(after.get("commits", 0)) - int(before.get("commits", 0))
    writes = int(after.get("writes", 0)) - int(before.get("writes", 0))
    return f", {writes / commits:.1f} appends/commit" if commits else ""


def async_writers(url: str, floor: Floor, sizes: Sizes, rounds: int) -> Row:
    """The concurrent writers again as asyncio tasks of one loop, on the asyncio store."""
    loop = asyncio.new_event_loop()
    try:
        store = loop.run_until_complete(ss.open_async_store(url, pool_size=sizes.writers + 4))
        per_writer = sizes.appends_per_writer // rounds

        async def writer(n: int) -> None:
            for i in range(per_writer):
                await store.append(f"task-{n}", [event(i)])

        async def all_writers() -> None:
            await asyncio.gather(*(writer(n) for n in range(sizes.writers)))

        def tasks(_: int) -> int:
            loop.run_until_complete(all_writers())
            return sizes.writers * per_writer

        before = loop.run_until_complete(store.stats())
        row = paired(floor, sizes.floor_commits, tasks, rounds)
        shared = sharing(before, loop.run_until_complete(store.stats()))
        loop.run_until_complete(store.close())
    finally:
        loop.close()
    name = f"append, {sizes.writers} concurrent writers (asyncio tasks){shared}"
    return replace(row, name=name, target=">= 0.9x ceiling")


@contextmanager
def server_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    server = PgServer.start()  # default durability: fsync and synchronous_commit on
    try:
        yield server.url
    finally:
        server.destroy()


def postgres_rows(server: str, sizes: Sizes) -> list[Row]:
    """The store's rows, on a fresh schema of ``server``."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in server else "?"
    floor = Floor(server)
    try:
        return store_rows(f"{server}{separator}schema={schema}", schema, floor, sizes)
    finally:
        floor.close()


def with_ceiling_ratios(rows: list[Row]) -> list[Row]:
    """Each writer row's target followed by its ratio to the next ceiling row (events/s)."""
    out = list(rows)
    for i, row in enumerate(out):
        if row.target.endswith("ceiling"):  # the ratio to the next ceiling row
            ceiling = next(later for later in out[i + 1 :] if later.name.startswith("(ceiling"))
            ratio = row.events_per_second / ceiling.events_per_second
            out[i] = replace(row, target=f"{row.target}: {ratio:.2f}x")
    return out


def print_table(title: str, rows: list[Row]) -> None:
    rows = with_ceiling_ratios(rows)
    width = max(len(row.name) for row in rows) + 2
    print(title)
    print(f"  {'measure':<{width}}{'events/s':>12}{'floor/s':>10}{'x floor':>9}  target")
    for row in rows:
        ratio = row.events_per_second / row.floor
        print(
            f"  {row.name:<{width}}{row.events_per_second:>12,.0f}{row.floor:>10,.0f}"
            f"{ratio:>9.2f}  {row.target}"
        )
    print(
        "  floor/s: a psycopg loop of single-row INSERT + COMMIT on the same server, run in"
        " slices taken in turn with that row's slices"
    )
    print()


def run(quick: bool = False, pg_url: str | None = None) -> None:
    """Measure and print the PostgreSQL table (starting a server unless ``pg_url`` is given)."""
    sizes = QUICK if quick else FULL
    with server_url(pg_url) as url:
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings"
                    " WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method')"
                ).fetchall()
            )
        rows = postgres_rows(url, sizes)
    where = "given server" if pg_url else "local server started for this run"
    durability = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    title = (
        f"PostgreSQL {version[0] if version else '?'} ({where}, 127.0.0.1): {durability},"
        f" {os.cpu_count()} CPUs"
    )
    print_table(title, rows)


def run_from_environment(quick: bool) -> None:
    """The section ``benchmarks/eventstore.py`` prints after its SQLite table.

    ``STREAMSOURCE_BENCH_PG_URL`` names a server to use; ``STREAMSOURCE_BENCH_POSTGRES=0``
    skips the section. Without PostgreSQL installed it says so instead of failing.
    """
    if os.environ.get("STREAMSOURCE_BENCH_POSTGRES", "1") == "0":
        return
    try:
        run(quick, os.environ.get("STREAMSOURCE_BENCH_PG_URL") or None)
    except ServerUnavailable as exc:
        print(f"PostgreSQL: skipped ({str(exc).splitlines()[0]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a few seconds)")
    parser.add_argument("--pg-url", help="use this server instead of starting one")
    args = parser.parse_args()
    run(args.quick, args.pg_url)


if __name__ == "__main__":
    main()
