"""Catch-up subscription and projection throughput against raw baselines of the same run.

    .venv/bin/python benchmarks/subscriptions.py [--quick] [--events N] [--pg-url URL]

Subscriptions are compared with a raw ``sqlite3`` read of the same rows (keyset pages of
1,000, data and metadata decoded with msgspec): what reading the log costs without the
store. Projections writing one row per event are compared with a raw ``sqlite3`` loop of
single-row INSERTs in one transaction: what writing the rows costs without reading events,
checkpoints or handlers. Figures are events per second; the ratio column is against the
baseline of the group above it. The store file is written with ``durability=normal`` (setup
only); read models use the projections' own setting (WAL, ``synchronous=NORMAL``).

The same rows are then measured on PostgreSQL (store and read model in one fresh schema),
against raw psycopg baselines: on ``--pg-url`` if given, else on a throwaway server started
with the tests' helper (``tests/pg_server.py``, default durability) when PostgreSQL is
installed; ``--no-pg`` skips them.

Writes beside the store on SQLite (issue 8, section 1): a component that keeps a table beside
the events (relay checkpoints, persistent-subscription acks, inboxes) writes through the
store's own write queue, in the store's file. Measured: 4 threads appending one event at a
time (``durability=full``, an fsync per commit) for 3 s, alone (the baseline), then with a
fifth thread saving a checkpoint once a millisecond (a relay saving every 50 ms does far
less; a persistent subscription acking 1,000 messages a second does as much), three ways: through the store's database
(the rule), in a file of its own beside the store (the old relay checkpoint), and on a
second connection to the store's file (what the rule avoids: SQLite's busy handler).

Targets (issue 4, section 4): catch-up subscription >= 100,000 events/s; a projection
writing one row per event >= 20,000 events/s.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

import streamsource as ss
from streamsource.eventstore.projections import Projection, ProjectionContext, ProjectionRunner


@dataclass(frozen=True)
class Row:
    name: str
    events_per_second: float
    baseline: float
    target: str = ""


class OneRowPerEvent(Projection):
    """The benchmark's projection: insert one row per event."""

    name = "bench_rows"
    tables = ("bench_rows",)
    category = "account"

    def create(self, db: ProjectionContext) -> None:
        db.execute("CREATE TABLE {bench_rows} (position BIGINT, stream TEXT, amount BIGINT)")

    def handle(self, event: ss.RecordedEvent, db: ProjectionContext) -> None:
        db.execute(
            "INSERT INTO {bench_rows} VALUES (?, ?, ?)",
            (event.position, event.stream, event.data["amount"]),
        )


ROUNDS = 3
"""Runs of each measurement; the best is shown (other helpers' load only slows a run down)."""


def timed(work: Callable[[int], int]) -> float:
    """Best events per second of ``work(round)`` (it returns how many events it handled)."""
    best = 0.0
    for round_ in range(ROUNDS):
        start = time.perf_counter()
        count = work(round_)
        best = max(best, count / (time.perf_counter() - start))
    return best


def fill(url: str, events: int) -> None:
    options = {"durability": "normal"} if url.startswith("sqlite") else {}
    with ss.open_store(url, **options) as store:
        for start in range(0, events, 1000):
            batch = [
                ss.NewEvent("Deposited", {"amount": i, "note": "benchmark"}, {"user": "bench"})
                for i in range(start, min(start + 1000, events))
            ]
            store.append(f"account-{start // 1000 % 50}", batch)


def raw_read(path: Path, events: int) -> int:
    decode = msgspec.json.Decoder().decode
    count = 0
    with sqlite3.connect(path) as db:
        cursor = 0
        while True:
            rows = db.execute(
                "SELECT id, stream, version, position, type, data, metadata, recorded_at"
                " FROM events WHERE position > ? ORDER BY position LIMIT 1000",
                (cursor,),
            ).fetchall()
            for row in rows:
                decode(row[5])
                decode(row[6])
            count += len(rows)
            if len(rows) < 1000:
                return count
            cursor = rows[-1][3]


def subscription_rows(url: str, path: Path, events: int) -> list[Row]:
    baseline = timed(lambda _: raw_read(path, events))
    rows = [Row("raw sqlite3 SELECT + msgspec decode (baseline)", baseline, baseline)]
    with ss.open_store(url) as store:

        def batches(_round: int, **target: Any) -> int:
            with ss.subscribe(store, **target) as sub:
                count = 0
                while not sub.caught_up or count == 0:
                    count += len(sub.next_batch(1000, timeout=0))
                return count

        def one_by_one(_round: int) -> int:
            with ss.subscribe(store) as sub:
                count = 0
                for _event in sub:
                    count += 1
                    if count == events:
                        return count
            return count

        rows.append(
            Row("catch-up $all, next_batch(1000)", timed(batches), baseline, ">= 100,000/s")
        )
        rows.append(Row("catch-up $all, for event in sub", timed(one_by_one), baseline))
        rows.append(
            Row("catch-up category", timed(lambda r: batches(r, category="account")), baseline)
        )
    return rows


def raw_insert_sqlite(path: Path, events: int) -> int:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("CREATE TABLE raw_rows (position BIGINT, stream TEXT, amount BIGINT)")
        db.execute("BEGIN")
        for i in range(events):
            db.execute("INSERT INTO raw_rows VALUES (?, ?, ?)", (i + 1, "account-1", i))
        db.execute("COMMIT")
    return events


def projection(store_url: str, read_model: str | None, events: int, batch_size: int) -> int:
    with (
        ss.open_store(store_url) as store,
        ProjectionRunner(
            store, [OneRowPerEvent()], read_model=read_model, batch_size=batch_size
        ) as runner,
    ):
        runner.run_until_caught_up()
        (status,) = runner.status()
        assert status.events == events, status
        return status.events


def projection_rows(url: str, directory: Path, events: int) -> list[Row]:
    baseline = timed(lambda r: raw_insert_sqlite(directory / f"raw-{r}.db", events))
    rows = [Row("raw sqlite3 INSERT loop, one transaction (baseline)", baseline, baseline)]
    for batch in (500, 2000):

        def own_file(round_: int, batch: int = batch) -> int:
            read_model = f"sqlite:///{directory}/read-{batch}-{round_}.db"
            return projection(url, read_model, events, batch)

        rate = timed(own_file)
        rows.append(Row(f"projection, own file, batches of {batch}", rate, baseline, ">= 20,000/s"))

    def store_file(round_: int) -> int:
        with sqlite3.connect(directory / "store.db") as db:  # a fresh read model each round
            for statement in (
                "DROP VIEW IF EXISTS bench_rows",
                "DROP TABLE IF EXISTS bench_rows__g1",
                "DROP TABLE IF EXISTS ss_projections",
                "DROP TABLE IF EXISTS ss_projection_checkpoints",
            ):
                db.execute(statement)
        return projection(url, url, events, 500)

    own = timed(store_file)
    rows.append(Row("projection, in the store's file, batches of 500", own, baseline))
    return rows


WRITERS = 4


def beside_the_store_rows(directory: Path, seconds: float) -> list[Row]:
    """Appends/s of WRITERS threads, for ``seconds``, while a component saves a checkpoint
    beside the store once a millisecond (as a persistent subscription acking 1,000
    messages a second would)."""
    import threading

    from streamsource.bridge import checkpoints_for

    def run(round_: int, saver: str) -> tuple[float, float, int]:
        path = directory / f"beside-{saver}-{round_}.db"
        with ss.open_store(f"sqlite:///{path}") as store:
            save: Callable[[int], object] | None = None
            if saver == "store":
                checkpoints = checkpoints_for(store)
                save = lambda n: checkpoints.save("bench", n)  # noqa: E731
            elif saver in ("sidecar", "second connection"):
                target = path if saver == "second connection" else Path(f"{path}-sidecar")
                db = sqlite3.connect(
                    target, timeout=30, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("CREATE TABLE IF NOT EXISTS cp (name TEXT PRIMARY KEY, position INT)")
                sql = "INSERT INTO cp VALUES ('bench', ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position"
                save = lambda n: db.execute(sql, (n,))  # noqa: E731
            done = threading.Event()
            saves = [0]
            failed = [0]  # appends that timed out on the lock (StoreLockedError)

            appended = [0] * WRITERS

            def saving() -> None:
                assert save is not None
                while not done.wait(0.001):
                    try:
                        save(saves[0] + 1)
                        saves[0] += 1
                    except (sqlite3.OperationalError, ss.OperationalError):
                        pass

            def writer(number: int) -> None:
                while not done.is_set():
                    try:
                        store.append(f"w-{number}", ss.NewEvent("Tick", {}))
                        appended[number] += 1
                    except ss.OperationalError:
                        failed[0] += 1

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
            helper = threading.Thread(target=saving) if save is not None else None
            start = time.perf_counter()
            if helper is not None:
                helper.start()
            for thread in threads:
                thread.start()
            done.wait(seconds)
            done.set()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            if helper is not None:
                helper.join()
            return sum(appended) / elapsed, saves[0] / elapsed, failed[0]

    def best(saver: str) -> tuple[float, float, int]:
        return max((run(r, saver) for r in range(ROUNDS)), key=lambda result: result[0])

    baseline, _, _ = best("none")
    rows = [Row(f"{WRITERS} threads appending, durability=full (baseline)", baseline, baseline)]
    for saver, label in (
        ("store", "+ saves through the store's database (the rule)"),
        ("sidecar", "+ saves in a file of its own (the old relay way)"),
        ("second connection", "+ saves on a 2nd connection to the store file"),
    ):
        rate, saves, failed = best(saver)
        lost = f", {failed} appends timed out" if failed else ""
        rows.append(Row(f"{label}, {saves:,.0f} saves/s{lost}", rate, baseline))
    return rows


def postgres_rows(server_url: str, events: int) -> list[Row]:
    """The same rows with the store *and* its read model in one PostgreSQL schema."""
    import psycopg

    from streamsource.eventstore.backends.postgres import parse

    url = f"{server_url}{'&' if '?' in server_url else '?'}schema=bench_{uuid.uuid4().hex[:12]}"
    fill(url, events)
    conninfo = parse(url, {}).conninfo
    decode = msgspec.json.Decoder().decode
    rows: list[Row] = []
    with psycopg.connect(conninfo, autocommit=True) as db:

        def raw_read(_round: int) -> int:
            count, cursor = 0, 0
            while True:
                page = db.execute(
                    "SELECT id, stream, version, position, type, data, metadata, recorded_at"
                    " FROM events WHERE position > %s ORDER BY position LIMIT 1000",
                    (cursor,),
                ).fetchall()
                for row in page:
                    decode(row[5])
                    decode(row[6])
                count += len(page)
                if len(page) < 1000:
                    return count
                cursor = page[-1][3]

        read_baseline = timed(raw_read)
        rows.append(Row("raw psycopg SELECT + msgspec decode (baseline)", read_baseline, 1.0))
        with ss.open_store(url) as store:

            def batches(_round: int) -> int:
                with ss.subscribe(store) as sub:
                    count = 0
                    while not sub.caught_up or count == 0:
                        count += len(sub.next_batch(1000, timeout=0))
                    return count

            rows.append(Row("catch-up $all, next_batch(1000)", timed(batches), 1.0, ">= 100,000/s"))

        def reset() -> None:
            for statement in (
                "DROP TABLE IF EXISTS raw_rows",
                "DROP VIEW IF EXISTS bench_rows",
                "DROP TABLE IF EXISTS bench_rows__g1, ss_projections, ss_projection_checkpoints",
                "CREATE TABLE raw_rows (position BIGINT, stream TEXT, amount BIGINT)",
            ):
                db.execute(statement.encode())

        def raw_insert(_round: int) -> int:
            reset()
            with db.transaction():
                for i in range(events):
                    db.execute("INSERT INTO raw_rows VALUES (%s, %s, %s)", (i + 1, "account-1", i))
            return events

        write_baseline = timed(raw_insert)

        def into_postgres(_round: int) -> int:
            reset()
            return projection(url, None, events, 500)

        rate = timed(into_postgres)
    rows.append(Row("raw psycopg INSERT loop, one transaction (baseline)", write_baseline, 1.0))
    rows.append(Row("projection into the store's schema, batches of 500", rate, 1.0, ">= 20,000/s"))
    # ratios: each figure against the baseline of its group (read rows, then write rows)
    return [
        Row(r.name, r.events_per_second, read_baseline if i < 2 else write_baseline, r.target)
        for i, r in enumerate(rows)
    ]


def start_postgres() -> tuple[str, Any] | None:
    """A throwaway server from the tests' helper (default durability), if PostgreSQL is here."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    try:
        from pg_server import PgServer, ServerUnavailable
    except ImportError:
        return None
    try:
        server = PgServer.start()
    except ServerUnavailable as exc:
        print(f"(no PostgreSQL rows: {exc})")
        return None
    return server.url, server


def print_table(title: str, rows: list[Row]) -> None:
    width = max(len(row.name) for row in rows) + 2
    print(f"\n{title}")
    print(f"  {'':<{width}}{'events/s':>12}{'ratio':>8}  target")
    for row in rows:
        ratio = row.events_per_second / row.baseline
        print(f"  {row.name:<{width}}{row.events_per_second:>12,.0f}{ratio:>8.2f}  {row.target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events instead of 100,000")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL server to use")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument(
        "--only-beside", action="store_true", help="only the rows of writes beside the store"
    )
    args = parser.parse_args()
    events = args.events or (20_000 if args.quick else 100_000)
    if args.only_beside:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            print_table(
                "appends while a component writes beside the store (SQLite)",
                beside_the_store_rows(Path(tmp), 3.0),
            )
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        path = directory / "store.db"
        url = f"sqlite:///{path}"
        fill(url, events)
        print(f"{events:,} events in a SQLite store ({path.stat().st_size / 1e6:.0f} MB)")
        print_table("catch-up subscriptions (SQLite)", subscription_rows(url, path, events))
        print_table(
            "projections writing one row per event", projection_rows(url, directory, events)
        )
        print_table(
            "appends while a component writes beside the store (SQLite)",
            beside_the_store_rows(directory, 3.0),
        )
    if args.no_pg:
        return
    server = None
    pg_url = args.pg_url
    if pg_url is None:
        started = start_postgres()
        if started is None:
            return
        pg_url, server = started
    try:
        print_table(
            "PostgreSQL (store and read model in one schema; default durability)",
            postgres_rows(pg_url, events),
        )
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    main()
