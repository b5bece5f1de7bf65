"""Event-store throughput against the raw SQLite floor, measured in the same run.

    .venv/bin/python benchmarks/eventstore.py [--quick] [--durability full|normal] [--dir DIR]

The floor is a plain sqlite3 loop of single-row INSERT + COMMIT on a file with the same
settings as the store (WAL, the same ``synchronous``): what one fsync'd commit costs on this
disk. Beside it, the no-fsync floor: the same loop with ``synchronous=NORMAL`` (commits not
fsync'd), what one writer does when durability costs nothing. Both floors are sampled between
slices of every write measurement, because a shared disk's speed drifts during a run. Every
figure is events per second through the public API (``streamsource.open_store``, and
``open_async_store`` for the asyncio row) with its ratio to each floor. Each backend is one function
returning its floor and rows; add PostgreSQL by writing ``postgres_rows`` and listing it in
``BACKENDS``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import streamsource as ss

ROUNDS = 10
"""Slices each write measurement is cut into, with a floor sample before each."""


@dataclass(frozen=True)
class Sizes:
    floor_commits: int  # per floor sample
    single_appends: int
    batch_appends: int  # calls of 10 events
    writers: int
    appends_per_writer: int
    replay_events: int
    read_all_events: int
    memory_events: int  # events a separate process streams through read_all


FULL = Sizes(150, 2000, 400, 8, 400, 10_000, 100_000, 1_000_000)
QUICK = Sizes(30, 300, 80, 8, 80, 2_000, 20_000, 100_000)


@dataclass(frozen=True)
class Row:
    name: str
    events_per_second: float
    target: str = ""


class Floor(Protocol):
    """A backend's raw floor: ``sample`` runs some single-row commits and keeps the time."""

    def sample(self) -> None: ...

    @property
    def rate(self) -> float: ...


class Floors:
    """Several floors sampled together, one after the other (``rate``: the last one's)."""

    def __init__(self, *floors: Floor) -> None:
        self.floors = floors

    def sample(self) -> None:
        for floor in self.floors:
            floor.sample()

    @property
    def rate(self) -> float:
        return self.floors[-1].rate


class SqliteFloor:
    """Single-row INSERT + COMMIT per iteration, same journal and sync settings as the store.

    With ``rows_per_commit`` > 1, that many single-row INSERTs per COMMIT: what as many
    writers could reach with a perfect group commit (no hand-off at all); ``rate`` counts rows.
    """

    def __init__(self, path: Path, durability: str, commits: int, rows_per_commit: int = 1) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {durability.upper()}")
        self._conn.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, data BLOB)")
        self._commits_per_sample = commits
        self._rows_per_commit = rows_per_commit
        self.commits = 0
        self.seconds = 0.0

    def sample(self) -> None:
        payload = b'{"amount":1,"currency":"EUR"}'
        start = time.perf_counter()
        for _ in range(self._commits_per_sample):
            self._conn.execute("BEGIN")
            for _ in range(self._rows_per_commit):
                self._conn.execute("INSERT INTO floor (data) VALUES (?)", (payload,))
            self._conn.execute("COMMIT")
        self.seconds += time.perf_counter() - start
        self.commits += self._commits_per_sample

    @property
    def rate(self) -> float:
        return self.commits * self._rows_per_commit / self.seconds

    def close(self) -> None:
        self._conn.close()


def event(i: int) -> ss.NewEvent:
    return ss.NewEvent("Deposited", {"amount": i, "currency": "EUR"}, metadata={"reason": "bench"})


def timed(work: Callable[[], int]) -> float:
    """Items per second of ``work`` (which returns how many items it handled)."""
    start = time.perf_counter()
    count = work()
    return count / (time.perf_counter() - start)


def interleaved(floor: Floor, slice_: Callable[[], int]) -> float:
    """Items per second over ROUNDS slices of work, sampling the floor before each."""
    items = 0
    seconds = 0.0
    for _ in range(ROUNDS):
        floor.sample()
        start = time.perf_counter()
        items += slice_()
        seconds += time.perf_counter() - start
    return items / seconds


def store_rows(url: str, async_url: str, sizes: Sizes, floor: Floor) -> list[Row]:
    """The store figures through the public API for one store URL (any backend).

    ``async_url`` is a second store for the asyncio writers, so that they start from the same
    (small) log as the threads did.
    """
    rows: list[Row] = []
    with ss.open_store(url) as store:
        versions: dict[str, int | None] = {}

        def append_one(stream: str, i: int) -> None:
            current = versions.get(stream)
            expected = ss.NO_STREAM if current is None else current
            versions[stream] = store.append(stream, [event(i)], expected).version

        def single() -> int:
            count = sizes.single_appends // ROUNDS
            for i in range(count):
                append_one("single-1", i)
            return count

        rows.append(Row("append, 1 event per call", interleaved(floor, single), ">= 0.9x floor"))

        def batches() -> int:
            count = sizes.batch_appends // ROUNDS
            for i in range(count):
                store.append("batch-1", [event(i * 10 + j) for j in range(10)])
            return count * 10

        rows.append(Row("append, 10 events per call", interleaved(floor, batches)))

        def concurrent() -> int:
            count = sizes.appends_per_writer // ROUNDS
            barrier = threading.Barrier(sizes.writers)

            def writer(n: int) -> None:
                barrier.wait()
                for i in range(count):
                    append_one(f"writer-{n}", i)

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(sizes.writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sizes.writers * count

        before = store.stats()
        rate = interleaved(floor, concurrent)
        after = store.stats()
        commits = int(after.get("commits", 0)) - int(before.get("commits", 0))
        writes = int(after.get("writes", 0)) - int(before.get("writes", 0))
        shared = f", {writes / commits:.1f} appends/commit" if commits else ""
        rows.append(
            Row(
                f"append, {sizes.writers} writers (threads){shared}",
                rate,
                ">= 0.8x no-fsync floor",
            )
        )

        rows.append(asyncio.run(async_writers(async_url, sizes, floor)))

        for start in range(0, sizes.replay_events, 500):
            store.append("replay-1", [event(i) for i in range(start, start + 500)])
        rows.append(
            Row(
                f"replay one {sizes.replay_events:,}-event stream",
                timed(lambda: sum(1 for _ in store.read_stream("replay-1"))),
                ">= 200,000/s",
            )
        )

        present = store.head_position()
        for start in range(present, sizes.read_all_events, 1000):
            count = min(1000, sizes.read_all_events - start)
            store.append(f"fill-{start}", [event(i) for i in range(count)])
        rows.append(
            Row(
                f"read_all of {sizes.read_all_events:,} events, decoded",
                timed(lambda: sum(1 for _ in store.read_all(limit=sizes.read_all_events))),
                ">= 300,000/s",
            )
        )
    return rows


async def async_writers(url: str, sizes: Sizes, floor: Floor) -> Row:
    """The concurrent-writers figure again, the writers being asyncio tasks on one loop."""
    async with await ss.open_async_store(url) as store:
        count = sizes.appends_per_writer // ROUNDS
        versions: dict[str, int | None] = {}

        async def writer(n: int) -> None:
            stream = f"task-{n}"
            for i in range(count):
                current = versions.get(stream)
                expected = ss.NO_STREAM if current is None else current
                versions[stream] = (await store.append(stream, [event(i)], expected)).version

        items = 0
        seconds = 0.0
        before = await store.stats()
        for _ in range(ROUNDS):
            floor.sample()  # blocks the loop, but nothing else runs between slices
            start = time.perf_counter()
            await asyncio.gather(*(writer(n) for n in range(sizes.writers)))
            seconds += time.perf_counter() - start
            items += sizes.writers * count
        after = await store.stats()
    commits = int(after.get("commits", 0)) - int(before.get("commits", 0))
    writes = int(after.get("writes", 0)) - int(before.get("writes", 0))
    shared = f", {writes / commits:.1f} appends/commit" if commits else ""
    return Row(
        f"append, {sizes.writers} writers (asyncio tasks){shared}",
        items / seconds,
        ">= 0.8x no-fsync floor",
    )


READER = """
import resource, sys, time, streamsource as ss
with ss.open_store(sys.argv[1]) as store:
    start = time.perf_counter()
    count = sum(1 for _ in store.read_all())
    elapsed = time.perf_counter() - start
print(count, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def reading_in_a_new_process(url: str, events: int) -> Row:
    """Fill a store with ``events`` events, then read them all in a fresh process.

    The row shows that process's read rate and peak RSS: a reader that streams stays flat
    however long the log is.
    """
    with ss.open_store(url) as store:
        for start in range(store.head_position(), events, 1000):
            count = min(1000, events - start)
            store.append(f"mem-{start}", [event(i) for i in range(count)])
    out = subprocess.run(
        [sys.executable, "-c", READER, url], capture_output=True, text=True, check=True
    ).stdout
    read, elapsed, peak_kb = out.split()
    assert int(read) == events, (read, events)
    peak_mb = int(peak_kb) / 1024
    return Row(
        f"read_all of {events:,} in a new process: peak RSS {peak_mb:.0f} MB",
        events / float(elapsed),
        "peak < 200 MB",
    )


def sqlite_rows(
    directory: Path, sizes: Sizes, durability: str
) -> tuple[float, float, list[Row], list[str]]:
    """The SQLite section: its two floors, the store's figures on files in ``directory``,
    and the notes to print under the table."""
    floor = SqliteFloor(directory / "floor.db", durability, sizes.floor_commits)
    no_fsync = SqliteFloor(directory / "floor-no-fsync.db", "normal", sizes.floor_commits)
    # One writer's acknowledged append waits for its fsync: 8 writers cannot exceed 8 appends
    # per fsync. This measures that bound on this disk (sampled like the floors).
    ceiling = SqliteFloor(
        directory / "floor-shared.db",
        durability,
        max(1, sizes.floor_commits // 4),
        rows_per_commit=sizes.writers,
    )
    rows = store_rows(
        f"sqlite:///{directory / 'store.db'}?durability={durability}",
        f"sqlite:///{directory / 'store-async.db'}?durability={durability}",
        sizes,
        # The raw floor last, right before each slice: the slice and the floor it is compared
        # with then both follow fsync'd commits (the no-fsync floor leaves dirty pages that
        # the next fsyncs on this disk may have to wait for).
        Floors(no_fsync, ceiling, floor),
    )
    first_writers = next(i for i, row in enumerate(rows) if " writers " in row.name)
    rows = [
        replace(row, target=f"{row.target}; {row.events_per_second / ceiling.rate:.2f}x ceiling")
        if " writers " in row.name
        else row
        for row in rows
    ]
    rows.insert(
        first_writers,
        Row(
            f"(ceiling: sqlite3, {sizes.writers} INSERTs per COMMIT, = {sizes.writers} writers'"
            " perfect group commit)",
            ceiling.rate,
        ),
    )
    best_writers = max(row.events_per_second for row in rows if " writers " in row.name)
    notes = ceiling_notes(sizes.writers, floor.rate, no_fsync.rate, ceiling.rate, durability)
    if durability == "full" and best_writers < ceiling.rate:
        notes.append(
            "  The writer rows' gap to the ceiling is Python's: each writer's own work between"
            " appends runs one at a time under the GIL, and each is woken after its commit."
        )
    for each in (floor, no_fsync, ceiling):
        each.close()
    # Filled with durability=normal: this row is about reading, not about the fill.
    url = f"sqlite:///{directory / 'big.db'}?durability=normal"
    rows.append(reading_in_a_new_process(url, sizes.memory_events))
    return floor.rate, no_fsync.rate, rows, notes


def ceiling_notes(
    writers: int, floor: float, no_fsync: float, ceiling: float, durability: str
) -> list[str]:
    """Why the writer rows are read against the ceiling: the argument, with this run's numbers."""
    if durability != "full":
        return []  # no fsync per commit: nothing bounds the writers but CPU
    notes = [
        f"ceiling: an append returns only after the fsync of its commit, so {writers} writers"
        f" put at most {writers} appends into one fsync, whatever the store does;",
        f"  the ceiling row is that bound measured ({writers} raw INSERTs per fsync'd COMMIT,"
        f" no Python): {ceiling:,.0f}/s = {ceiling / no_fsync:.2f}x the no-fsync floor.",
    ]
    if ceiling < 0.8 * no_fsync:
        # At the floor's fsync rate, the appends each fsync must carry to reach the target.
        needed = 0.8 * no_fsync / floor
        notes.append(
            f"  0.8x the no-fsync floor is {0.8 * no_fsync:,.0f}/s: at this disk's"
            f" {floor:,.0f} fsyncs/s that is {needed:.0f} appends per fsync, so it needs"
            f" {needed:.0f}+ concurrent writers; {writers} writers can reach the ceiling, not it."
        )
    return notes


BACKENDS: dict[str, Callable[[Path, Sizes, str], tuple[float, float, list[Row], list[str]]]] = {
    "SQLite": sqlite_rows,
}


def print_table(
    title: str, floor: float, no_fsync: float, rows: list[Row], notes: list[str]
) -> None:
    width = max(len(row.name) for row in rows) + 2
    print(title)
    print(f"  {'measure':<{width}}{'events/s':>12}{'x floor':>10}{'x no-fsync':>12}  target")
    for name, rate in [
        ("raw floor: sqlite3 INSERT+COMMIT loop", floor),
        ("no-fsync floor: the same, synchronous=NORMAL", no_fsync),
        *((row.name, row.events_per_second) for row in rows),
    ]:
        target = next((row.target for row in rows if row.name == name), "")
        print(
            f"  {name:<{width}}{rate:>12,.0f}{rate / floor:>10.2f}{rate / no_fsync:>12.2f}"
            f"  {target}"
        )
    for note in notes:
        print(f"  {note}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a few seconds)")
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--dir", type=Path, help="where to put the files (default: a temp dir)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="streamsource-bench-") as tmp:
        for name, run in BACKENDS.items():
            floor, no_fsync, rows, notes = run(Path(tmp), sizes, args.durability)
            sync = "FULL, fsync per commit" if args.durability == "full" else "NORMAL, no fsync"
            title = (
                f"{name}: file on disk ({tmp}), durability={args.durability}"
                f" (WAL, synchronous={sync}), {os.cpu_count()} CPUs"
            )
            print_table(title, floor, no_fsync, rows, notes)


if __name__ == "__main__":
    main()


# -- PostgreSQL: its own server, floor and table (benchmarks/eventstore_postgres.py) --------
if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # beside this file, when run
    from eventstore_postgres import run_from_environment  # type: ignore[import-not-found]

    run_from_environment(quick="--quick" in sys.argv[1:])
