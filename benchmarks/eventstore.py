"""Event-store throughput against the raw SQLite floors, measured in the same run.

    .venv/bin/python benchmarks/eventstore.py [--quick] [--durability full|normal] [--dir DIR]

The floor is a plain sqlite3 loop of single-row INSERT + COMMIT on a file with the same
settings as the store (WAL, the same ``synchronous``): what one fsync'd commit costs on this
disk. Beside it, the no-fsync floor: the same loop with ``synchronous=NORMAL`` (commits not
fsync'd), what one writer does when durability costs nothing. And the event floor: the same
loop inserting an event row into the store's own tables (its page size and four indexes),
what SQLite alone charges for the store's write; the one-event append row prints its ratio
to it, which is the store's own overhead.

Fair comparisons: every file (floors and stores) is first warmed up past its first WAL
checkpoint, until its WAL is overwritten in place rather than grown (a growing WAL's fsyncs
cost more, and a fresh file's first commits would flatter or penalise whoever runs first).
Then each measurement runs in ROUNDS slices, and before each slice every floor takes a
sample: a row's figure is the median of its slices, and its ratios are to the medians of
the floor samples taken just before its slices (the disk's speed drifts during a run; the
rounds keep each row and its floors in the same stretch of it). Every figure is events per second through the public API
(``streamsource.open_store``, and ``open_async_store`` for the asyncio row).

Under the table, the bound for concurrent durable writers, measured in the same run: an
append returns only after the fsync of its commit, so a writer makes at most 1/(fsync
latency) appends a second, and N writers at most N times that.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import streamsource as ss
from streamsource.eventstore.backends.sqlite import schema as sqlite_schema

ROUNDS = 10
"""Slices each write measurement is cut into, with a sample of every floor before each."""

WARM_STEADY = 200
"""Commits the WAL file must keep its size for before a warm-up ends (it is being reused)."""
WARM_MAX = 20_000


@dataclass(frozen=True)
class Sizes:
    floor_commits: int  # per floor sample
    single_appends: int
    batch_appends: int  # calls of 10 events
    writers: int
    appends_per_writer: int
    transactions: int
    replay_events: int
    read_all_events: int
    memory_events: int  # events a separate process streams through read_all


FULL = Sizes(150, 2000, 400, 8, 400, 2000, 10_000, 100_000, 1_000_000)
QUICK = Sizes(40, 1000, 200, 8, 400, 1000, 2_000, 20_000, 100_000)


@dataclass(frozen=True)
class Row:
    name: str
    events_per_second: float
    x_floor: float
    x_no_fsync: float
    target: str = ""


class Sampler(Protocol):
    """Something sampled before each slice: ``samples`` holds each sample's rate."""

    samples: list[float]

    def sample(self) -> None: ...


class Floors:
    """The floors sampled together before each slice; ``floor`` last, right before the slice
    (the slice and the floor it is compared with then both follow fsync'd commits)."""

    def __init__(self, floor: Sampler, no_fsync: Sampler, *others: Sampler) -> None:
        self.floor = floor
        self.no_fsync = no_fsync
        self.order = (no_fsync, *others, floor)

    def sample(self) -> tuple[float, float]:
        """Sample every floor; the floor's and the no-fsync floor's rates of this round."""
        for each in self.order:
            each.sample()
        return self.floor.samples[-1], self.no_fsync.samples[-1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def wal_size(database: Path) -> int:
    wal = Path(f"{database}-wal")
    return wal.stat().st_size if wal.exists() else 0


def warm_up(database: Path, commit: Callable[[], None]) -> None:
    """Commit until ``database``'s WAL has kept its size for WARM_STEADY commits: past its
    first checkpoint, the WAL is overwritten in place from then on."""
    steady, size = 0, -1
    for _ in range(WARM_MAX):
        commit()
        now = wal_size(database)
        steady, size = (steady + 1 if now == size else 0), now
        if steady >= WARM_STEADY:
            return
    raise RuntimeError(f"{database}: the WAL kept growing for {WARM_MAX} commits")


PAYLOAD = b'{"amount":1,"currency":"EUR"}'
METADATA = b'{"reason":"bench"}'


class SqliteFloor:
    """Single-row INSERT + COMMIT per iteration, same journal and sync settings as the store.

    With ``rows_per_commit`` > 1, that many INSERTs per COMMIT, run as one script (no Python
    between the statements): what as many writers could reach with a perfect group commit;
    the rate counts rows. With ``beside``, each commit also upserts a row of another table:
    the raw equivalent of a store transaction with one append and one row beside it. With
    ``schema``, the row is an event inserted into the store's own tables (its page size, its
    four indexes) with no check and no Python around it: what SQLite alone charges for the
    store's write, so the store's own overhead is the append row's ratio to it.
    """

    def __init__(
        self,
        path: Path,
        durability: str,
        commits: int,
        rows_per_commit: int = 1,
        beside: bool = False,
        schema: bool = False,
    ) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None)
        if schema:
            self._conn.execute(f"PRAGMA page_size = {sqlite_schema.PAGE_SIZE_BYTES}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {durability.upper()}")
        self._conn.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, data BLOB)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS beside (k TEXT PRIMARY KEY, v INTEGER)")
        if schema:
            self._conn.executescript(sqlite_schema.MIGRATIONS[0])
        self._schema = schema
        self._events = 0
        self._commits_per_sample = commits
        self._rows_per_commit = rows_per_commit
        self._beside = beside
        self._script = (
            "BEGIN;"
            + f"INSERT INTO floor (data) VALUES (x'{PAYLOAD.hex()}');" * rows_per_commit
            + "COMMIT;"
        )
        self.samples: list[float] = []
        warm_up(path, self._commit)

    def _commit(self) -> None:
        conn = self._conn
        if self._rows_per_commit > 1:
            conn.executescript(self._script)
            return
        conn.execute("BEGIN IMMEDIATE" if self._beside else "BEGIN")
        if self._schema:
            # One stream, ids increasing as UUIDv7 ids do: what the single-append row writes.
            version = self._events
            self._events += 1
            conn.execute(
                "INSERT INTO events (stream, category, version, id, type, data, metadata,"
                " recorded_at) VALUES ('floor-1', 'floor', ?, ?, 'Deposited', ?, ?, ?)",
                (version, version.to_bytes(16, "big"), PAYLOAD, METADATA, time.time_ns() // 1000),
            )
        else:
            conn.execute("INSERT INTO floor (data) VALUES (?)", (PAYLOAD,))
        if self._beside:
            conn.execute(
                "INSERT INTO beside VALUES ('k', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1"
            )
        conn.execute("COMMIT")

    def sample(self) -> None:
        start = time.perf_counter()
        for _ in range(self._commits_per_sample):
            self._commit()
        seconds = time.perf_counter() - start
        self.samples.append(self._commits_per_sample * self._rows_per_commit / seconds)

    @property
    def rate(self) -> float:
        return median(self.samples)

    def close(self) -> None:
        self._conn.close()


class FsyncProbe:
    """fdatasync of a WAL-like write (one append's frames, overwritten in place) by
    ``threads`` threads at once, each on its own region of one preallocated file.

    ``latencies``: every fdatasync's seconds (single thread); ``samples``: fdatasyncs/s.
    """

    WRITE = 6 * 1024  # about the frames a one-event append writes
    REGION = 64 * WRITE

    def __init__(self, path: Path, syncs: int, threads: int = 1) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self._fd, bytes(self.REGION * threads), 0)
        os.fsync(self._fd)
        self._syncs = syncs
        self._threads = threads
        self._block = os.urandom(self.WRITE)
        self.latencies: list[float] = []
        self.samples: list[float] = []

    def _run(self, region: int, count: int, latencies: list[float]) -> None:
        base = region * self.REGION
        for i in range(count):
            offset = base + (i % (self.REGION // self.WRITE)) * self.WRITE
            start = time.perf_counter()
            os.pwrite(self._fd, self._block, offset)
            os.fdatasync(self._fd)
            latencies.append(time.perf_counter() - start)

    def sample(self) -> None:
        count = max(1, self._syncs // self._threads)
        start = time.perf_counter()
        if self._threads == 1:
            self._run(0, count, self.latencies)
        else:
            workers = [
                threading.Thread(target=self._run, args=(n, count, []))
                for n in range(self._threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        self.samples.append(count * self._threads / (time.perf_counter() - start))

    def close(self) -> None:
        os.close(self._fd)


def event(i: int) -> ss.NewEvent:
    return ss.NewEvent("Deposited", {"amount": i, "currency": "EUR"}, metadata={"reason": "bench"})


def timed(work: Callable[[], int]) -> float:
    """Items per second of ``work`` (which returns how many items it handled)."""
    start = time.perf_counter()
    count = work()
    return count / (time.perf_counter() - start)


class Slices:
    """A measurement's slices, each with the floor samples taken just before it: a ratio is
    the median of the slices over the median of those samples (both from the same rounds)."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.floors: list[float] = []
        self.no_fsync: list[float] = []

    def add(self, rate: float, floors: tuple[float, float]) -> None:
        self.rates.append(rate)
        self.floors.append(floors[0])
        self.no_fsync.append(floors[1])

    def row(self, name: str, target: str = "") -> Row:
        rate = median(self.rates)
        return Row(name, rate, rate / median(self.floors), rate / median(self.no_fsync), target)


def interleaved(floors: Floors, slice_: Callable[[], int]) -> Slices:
    """ROUNDS slices of work, every floor sampled before each."""
    slices = Slices()
    for _ in range(ROUNDS):
        paired = floors.sample()
        start = time.perf_counter()
        items = slice_()
        slices.add(items / (time.perf_counter() - start), paired)
    return slices


def store_rows(
    url: str,
    async_url: str,
    sizes: Sizes,
    floors: Floors,
    raw_tx: SqliteFloor,
    raw_event: SqliteFloor,
) -> list[Row]:
    """The store figures through the public API for one SQLite store URL.

    ``async_url`` is a second store for the asyncio writers, so that they start from the same
    (small) log as the threads did. ``raw_tx`` is the raw transaction the store's
    ``transaction()`` row is compared with, ``raw_event`` the raw insert into the store's
    tables the one-event row is compared with (both sampled with the floors).
    """
    rows: list[Row] = []
    with ss.open_store(url) as store:
        versions: dict[str, int | None] = {}

        def append_one(stream: str, i: int) -> None:
            current = versions.get(stream)
            expected = ss.NO_STREAM if current is None else current
            versions[stream] = store.append(stream, [event(i)], expected).version

        warmed = iter(range(WARM_MAX))
        warm_up(
            Path(url.split("///", 1)[1].split("?")[0]), lambda: append_one("warm-1", next(warmed))
        )

        raw_event_rates: list[float] = []

        def single() -> int:
            raw_event_rates.append(raw_event.samples[-1])
            count = sizes.single_appends // ROUNDS
            for i in range(count):
                append_one("single-1", i)
            return count

        slices = interleaved(floors, single)
        rows.append(
            unpaired(
                "(raw: sqlite3 INSERT of an event into the store's tables + COMMIT)",
                raw_event.rate,
                floors,
            )
        )
        vs_raw_event = median(slices.rates) / median(raw_event_rates)
        rows.append(
            slices.row(
                "append, 1 event per call",
                f">= 0.9x floor; {vs_raw_event:.2f}x raw event insert",
            )
        )

        def batches() -> int:
            count = sizes.batch_appends // ROUNDS
            for i in range(count):
                store.append("batch-1", [event(i * 10 + j) for j in range(10)])
            return count * 10

        rows.append(interleaved(floors, batches).row("append, 10 events per call"))

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
        slices = interleaved(floors, concurrent)
        after = store.stats()
        rows.append(
            slices.row(
                f"append, {sizes.writers} writers (threads){shared(before, after)}",
                ">= 0.8x no-fsync floor",
            )
        )

        rows.append(asyncio.run(async_writers(async_url, sizes, floors)))

        with store.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS beside (k TEXT PRIMARY KEY, v INTEGER)")
        raw_tx_rates: list[float] = []

        def transactions() -> int:
            raw_tx_rates.append(raw_tx.samples[-1])
            count = sizes.transactions // ROUNDS
            for i in range(count):
                current = versions.get("tx-1")
                with store.transaction() as tx:
                    versions["tx-1"] = tx.append(
                        "tx-1",
                        event(i),
                        expected_version=ss.NO_STREAM if current is None else current,
                    ).version
                    tx.execute(
                        "INSERT INTO beside VALUES ('k', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1"
                    )
            return count

        slices = interleaved(floors, transactions)
        vs_raw = median(slices.rates) / median(raw_tx_rates)
        rows.append(unpaired("(raw: sqlite3 BEGIN, INSERT, upsert, COMMIT)", raw_tx.rate, floors))
        rows.append(
            slices.row("store.transaction(): append + upsert", f"{vs_raw:.2f}x raw transaction")
        )

        for start in range(0, sizes.replay_events, 500):
            store.append("replay-1", [event(i) for i in range(start, start + 500)])
        rate = timed(lambda: sum(1 for _ in store.read_stream("replay-1")))
        rows.append(
            unpaired(
                f"replay one {sizes.replay_events:,}-event stream", rate, floors, ">= 200,000/s"
            )
        )

        present = store.head_position()
        for start in range(present, sizes.read_all_events, 1000):
            count = min(1000, sizes.read_all_events - start)
            store.append(f"fill-{start}", [event(i) for i in range(count)])
        rate = timed(lambda: sum(1 for _ in store.read_all(limit=sizes.read_all_events)))
        rows.append(
            unpaired(
                f"read_all of {sizes.read_all_events:,} events, decoded",
                rate,
                floors,
                ">= 300,000/s",
            )
        )
    return rows


def cpu_row(url: str, sizes: Sizes, floors: Floors) -> Row:
    """One writer's one-event appends on a store without fsync: the CPU each append costs,
    which the GIL makes a bound for any number of threads of one process."""
    with ss.open_store(url) as store:
        version: int | None = None

        def append_one() -> None:
            nonlocal version
            expected = ss.NO_STREAM if version is None else version
            version = store.append("cpu-1", [event(0)], expected).version

        warm_up(Path(url.split("///", 1)[1].split("?")[0]), append_one)

        def single() -> int:
            count = sizes.single_appends // ROUNDS
            for _ in range(count):
                append_one()
            return count

        return interleaved(floors, single).row("append, 1 event per call, durability=normal")


def unpaired(name: str, rate: float, floors: Floors, target: str = "") -> Row:
    """A row not paired slice by slice (reads, the raw rows), against the floors' medians."""
    return Row(
        name,
        rate,
        rate / median(floors.floor.samples),
        rate / median(floors.no_fsync.samples),
        target,
    )


def shared(before: dict[str, int | str], after: dict[str, int | str]) -> str:
    """How many appends each commit carried between two ``stats()``, for the row's name."""
    commits = int(after.get("commits", 0)) - int(before.get("commits", 0))
    writes = int(after.get("writes", 0)) - int(before.get("writes", 0))
    return f", {writes / commits:.1f} appends/commit" if commits else ""


async def async_writers(url: str, sizes: Sizes, floors: Floors) -> Row:
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

        warmed = 0

        async def warm_one() -> None:
            nonlocal warmed
            await store.append("warm-1", [event(warmed)])
            warmed += 1

        path = Path(url.split("///", 1)[1].split("?")[0])
        steady, size = 0, -1
        while steady < WARM_STEADY:  # warm_up(), awaiting (see warm_up)
            if warmed >= WARM_MAX:
                raise RuntimeError(f"{path}: the WAL kept growing for {WARM_MAX} commits")
            await warm_one()
            now = wal_size(path)
            steady, size = (steady + 1 if now == size else 0), now

        slices = Slices()
        before = await store.stats()
        for _ in range(ROUNDS):
            paired = floors.sample()  # blocks the loop, but nothing else runs between slices
            start = time.perf_counter()
            await asyncio.gather(*(writer(n) for n in range(sizes.writers)))
            slices.add(sizes.writers * count / (time.perf_counter() - start), paired)
        after = await store.stats()
    return slices.row(
        f"append, {sizes.writers} writers (asyncio tasks){shared(before, after)}",
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


def reading_in_a_new_process(url: str, events: int, floors: Floors) -> Row:
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
    return unpaired(
        f"read_all of {events:,} in a new process: peak RSS {peak_mb:.0f} MB",
        events / float(elapsed),
        floors,
        "peak < 200 MB",
    )


def sqlite_rows(directory: Path, sizes: Sizes, durability: str) -> tuple[list[Row], list[str]]:
    """The SQLite section: its floors and the store's figures on files in ``directory``, and
    the notes to print under the table."""
    floor = SqliteFloor(directory / "floor.db", durability, sizes.floor_commits)
    no_fsync = SqliteFloor(directory / "floor-no-fsync.db", "normal", sizes.floor_commits)
    # What 8 writers reach with a perfect group commit on SQLite (sampled like the floors).
    ceiling = SqliteFloor(
        directory / "floor-shared.db",
        durability,
        max(1, sizes.floor_commits // 4),
        rows_per_commit=sizes.writers,
    )
    raw_tx = SqliteFloor(directory / "floor-tx.db", durability, sizes.floor_commits, beside=True)
    raw_event = SqliteFloor(
        directory / "floor-event.db", durability, sizes.floor_commits, schema=True
    )
    fsync = FsyncProbe(directory / "fsync-probe", sizes.floor_commits)
    fsyncs = FsyncProbe(directory / "fsync-probe-threads", sizes.floor_commits, sizes.writers)
    # The raw floor last, right before each slice: the slice and the floor it is compared
    # with then both follow fsync'd commits (the no-fsync floor leaves dirty pages that the
    # next fsyncs on this disk may have to wait for).
    floors = Floors(floor, no_fsync, fsyncs, fsync, ceiling, raw_tx, raw_event)
    store_figures = store_rows(
        f"sqlite:///{directory / 'store.db'}?durability={durability}",
        f"sqlite:///{directory / 'store-async.db'}?durability={durability}",
        sizes,
        floors,
        raw_tx,
        raw_event,
    )
    cpu = cpu_row(f"sqlite:///{directory / 'store-cpu.db'}?durability=normal", sizes, floors)
    x_no_fsync = floor.rate / no_fsync.rate
    ceiling_row = Row(
        f"(ceiling: sqlite3 script, {sizes.writers} INSERTs per COMMIT: perfect group commit)",
        ceiling.rate,
        ceiling.rate / floor.rate,
        ceiling.rate / no_fsync.rate,
    )
    rows = [
        Row("raw floor: sqlite3 INSERT+COMMIT loop", floor.rate, 1.0, x_no_fsync),
        Row("no-fsync floor: the same, synchronous=NORMAL", no_fsync.rate, 1 / x_no_fsync, 1.0),
    ]
    for row in store_figures:
        if " writers " in row.name:
            if ceiling_row not in rows:
                rows += [cpu, ceiling_row]
            row = Row(
                row.name,
                row.events_per_second,
                row.x_floor,
                row.x_no_fsync,
                f"{row.target}; {row.events_per_second / ceiling.rate:.2f}x ceiling",
            )
        rows.append(row)
    writers = [row for row in rows if " writers " in row.name]
    notes = bound_notes(
        sizes.writers,
        median(fsync.latencies),
        len(fsync.latencies),
        median(fsync.samples),
        median(fsyncs.samples),
        no_fsync.rate,
        ceiling.rate,
        cpu.events_per_second,
        durability,
    )
    single = next(row for row in rows if row.name == "append, 1 event per call")
    event_floor = next(row for row in rows if row.name.startswith("(raw: sqlite3 INSERT of an"))
    notes.append(one_event_note(event_floor.x_floor, single.x_floor))
    if durability == "full" and max(row.events_per_second for row in writers) < ceiling.rate:
        notes.append(
            "The writer rows' gap to the ceiling is Python's: each writer's own work between"
            " appends runs one at a time under the GIL, and each is woken after its commit."
        )
    for each in (floor, no_fsync, ceiling, raw_tx, raw_event, fsync, fsyncs):
        each.close()
    # Filled with durability=normal: this row is about reading, not about the fill.
    url = f"sqlite:///{directory / 'big.db'}?durability=normal"
    rows.append(reading_in_a_new_process(url, sizes.memory_events, floors))
    return rows, notes


def one_event_note(event_floor: float, append: float) -> str:
    """Where a one-event append's time goes, as ratios to the floor."""
    note = (
        "one event: SQLite alone, inserting the store's row into its tables (four indexes: about"
        f" 7 WAL frames a commit against the floor's 1), runs at {event_floor:.2f}x the floor; the store's"
        " own work (the checks in the same statement, encoding, ids, the committer) takes an"
        f" append to {append:.2f}x."
    )
    if round(event_floor, 2) < 0.9:
        note += (
            " 0.9x the floor is beyond the event floor itself: it needs fewer indexes (a schema"
            " decision), not only a faster store."
        )
    else:
        note += (
            " 0.9x the floor leaves the store no room: SQLite's insert of its row alone takes"
            " all of it, so it needs fewer indexes (a schema decision) or a store with no cost."
        )
    return note


def bound_notes(
    writers: int,
    latency: float,
    syncs: int,
    one_thread: float,
    threads: float,
    no_fsync: float,
    ceiling: float,
    cpu: float,
    durability: str,
) -> list[str]:
    """The bound on concurrent durable writers, argued with this run's numbers."""
    if durability != "full":
        return []  # no fsync per commit: nothing bounds the writers but CPU
    bound = writers / latency
    target = 0.8 * no_fsync
    within = "within" if target <= bound else "beyond"
    notes = [
        f"fsync: one fdatasync of a 6 KiB write overwritten in place takes {latency * 1e6:.0f} us"
        f" (median of {syncs:,}; one thread makes {one_thread:,.0f}/s); {writers} threads on one"
        f" file make {threads:,.0f}/s ({threads / one_thread:.1f}x): "
        + (
            "concurrent fsyncs overlap here, so an fsync rate bounds nothing by itself."
            if threads > 1.2 * one_thread
            else "concurrent fsyncs did not overlap in this run."
        ),
        "bound: an append returns only after the fsync of its commit, so one writer makes at"
        f" most 1/latency = {1 / latency:,.0f} appends/s and {writers} writers at most"
        f" {bound:,.0f}/s = {bound / no_fsync:.2f}x the no-fsync floor.",
        f"0.8x the no-fsync floor is {target:,.0f}/s: {within} that bound"
        + (
            "."
            if within == "within"
            else f": no store that acknowledges only durable appends reaches it here with"
            f" {writers} writers."
        ),
        "SQLite writes one commit at a time per file (the next commit's frames wait for this"
        " one's fsync), so a SQLite store is also bound by the ceiling row: "
        f"{ceiling:,.0f}/s = {ceiling / no_fsync:.2f}x the no-fsync floor; 0.8x is"
        f" {'within' if target <= ceiling else 'beyond'} it.",
        "GIL: a process's appends do their Python work one thread at a time; one writer with"
        " no fsync to wait for (the durability=normal row) makes"
        f" {cpu:,.0f}/s = {cpu / no_fsync:.2f}x the no-fsync floor, and sharing a commit saves"
        " only the BEGIN and COMMIT of that work, not the encoding, checks and insert of each"
        " append.",
    ]
    return notes


BACKENDS: dict[str, Callable[[Path, Sizes, str], tuple[list[Row], list[str]]]] = {
    "SQLite": sqlite_rows,
}


def print_table(title: str, rows: list[Row], notes: list[str]) -> None:
    width = max(len(row.name) for row in rows) + 2
    print(title)
    print(f"  {'measure':<{width}}{'events/s':>12}{'x floor':>10}{'x no-fsync':>12}  target")
    for row in rows:
        print(
            f"  {row.name:<{width}}{row.events_per_second:>12,.0f}{row.x_floor:>10.2f}"
            f"{row.x_no_fsync:>12.2f}  {row.target}"
        )
    print(
        "  (medians of interleaved slices; a row's ratios are to the medians of the floor"
        " samples taken just before its slices)"
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
            rows, notes = run(Path(tmp), sizes, args.durability)
            sync = "FULL, fsync per commit" if args.durability == "full" else "NORMAL, no fsync"
            title = (
                f"{name}: file on disk ({tmp}), durability={args.durability}"
                f" (WAL, synchronous={sync}), {os.cpu_count()} CPUs"
            )
            print_table(title, rows, notes)


if __name__ == "__main__":
    main()


# -- PostgreSQL: its own server, floor and table (benchmarks/eventstore_postgres.py) --------
if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # beside this file, when run
    from eventstore_postgres import run_from_environment  # type: ignore[import-not-found]

    run_from_environment(quick="--quick" in sys.argv[1:])
