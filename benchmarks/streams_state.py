"""State-store backends for streamsource.streams: SQLite (what a store partition uses) against
RocksDB through ``rocksdict`` (what Quix Streams uses), on the operations a store makes.

    .venv/bin/python benchmarks/streams_state.py [--entries N]

A store partition keeps its working set in memory between checkpoints (streams/state.py), so
the backend is touched only by a checkpoint (a batch of upserts, with the changelog offset),
by a read of a key not in the cache, and by a scan when windows are rebuilt after an
assignment. Each is timed on both, same keys and values (pre-encoded bytes), SQLite with the
store's settings (WAL, ``synchronous=NORMAL``) and RocksDB with a ``WriteBatch`` per
checkpoint. ``rocksdict`` runs from the Quix Streams environment (``.cache/envs/quix``, built
by ``scripts/test``), which ships it; it is not one of our dependencies.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIX_PYTHON = ROOT / ".cache" / "envs" / "quix" / "bin" / "python"


def _data(entries: int) -> tuple[list[bytes], list[bytes]]:
    keys = [b"acct-%08d|%013d" % (i % 1000, 1_700_000_000_000 + i) for i in range(entries)]
    return keys, [b'{"count":%d,"sum":%d}' % (i, i * 7) for i in range(entries)]


def sqlite_run(directory: Path, entries: int) -> dict[str, float]:
    keys, values = _data(entries)
    path = directory / "store.sqlite"

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER);"
        )
        return db

    def checkpoint(db: sqlite3.Connection, rows: list[tuple[bytes, bytes]], offset: int) -> None:
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", rows)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('changelog_offset', ?)", (offset,))
        db.execute("COMMIT")

    db = connect()
    return _measure(
        lambda rows, offset: checkpoint(db, rows, offset),
        lambda: _reopen_sqlite(db, connect),
        keys,
        values,
    )


def _reopen_sqlite(old: sqlite3.Connection, connect: object) -> tuple[object, object]:
    old.close()
    db = connect()  # type: ignore[operator]

    def get(key: bytes) -> object:
        return db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()

    def scan() -> int:
        return sum(1 for _ in db.execute("SELECT key, value FROM kv"))

    return get, scan


def rocks_run(directory: Path, entries: int) -> dict[str, float]:
    from rocksdict import Options, Rdict, WriteBatch

    keys, values = _data(entries)
    path = str(directory / "rocks")
    options = Options(raw_mode=True)
    db = Rdict(path, options)

    def checkpoint(rows: list[tuple[bytes, bytes]], offset: int) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in rows:
            batch.put(key, value)
        batch.put(b"$changelog_offset", str(offset).encode())
        db.write(batch)

    def reopen() -> tuple[object, object]:
        nonlocal db
        db.close()
        db = Rdict(path, options)

        def scan() -> int:
            return sum(1 for _ in db.items())

        return db.get, scan

    return _measure(checkpoint, reopen, keys, values)


def _measure(
    checkpoint: object, reopen: object, keys: list[bytes], values: list[bytes]
) -> dict[str, float]:
    rows = list(zip(keys, values, strict=True))
    out: dict[str, float] = {}
    start = time.perf_counter()
    for n, i in enumerate(range(0, len(rows), 10_000)):  # first checkpoints: every key new
        checkpoint(rows[i : i + 10_000], n)  # type: ignore[operator]
    out["checkpoint, new keys"] = len(rows) / (time.perf_counter() - start)
    rng = random.Random(1)
    updates = [(keys[rng.randrange(len(keys))], b'{"count":1,"sum":2}') for _ in range(len(rows))]
    start = time.perf_counter()
    for n, i in enumerate(range(0, len(updates), 10_000)):  # later ones: updates of old keys
        checkpoint(updates[i : i + 10_000], 1000 + n)  # type: ignore[operator]
    out["checkpoint, updates"] = len(updates) / (time.perf_counter() - start)
    get, scan = reopen()  # type: ignore[operator]
    probes = [keys[rng.randrange(len(keys))] for _ in range(min(50_000, len(keys)))]
    start = time.perf_counter()
    for key in probes:
        get(key)
    out["cold reads"] = len(probes) / (time.perf_counter() - start)
    start = time.perf_counter()
    scanned = scan()
    out["full scan"] = scanned / (time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "rocksdict"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend:
        with tempfile.TemporaryDirectory() as tmp:
            run = sqlite_run if args.backend == "sqlite" else rocks_run
            print(json.dumps(run(Path(tmp), args.entries)))
        return
    results = {"sqlite": json.loads(_child(sys.executable, "sqlite", args.entries))}
    if QUIX_PYTHON.exists():
        results["rocksdict"] = json.loads(_child(str(QUIX_PYTHON), "rocksdict", args.entries))
    print(f"\n{args.entries:,} entries, checkpoints of 10,000; operations/s")
    print(f"{'operation':<24}{'sqlite':>12}{'rocksdict':>12}{'sqlite/rocks':>14}")
    for name, rate in results["sqlite"].items():
        rocks = results.get("rocksdict", {}).get(name)
        tail = f"{rocks:>12,.0f}{rate / rocks:>13.2f}x" if rocks else f"{'-':>12}{'-':>14}"
        print(f"{name:<24}{rate:>12,.0f}{tail}")


def _child(python: str, backend: str, entries: int) -> str:
    result = subprocess.run(
        [python, __file__, "--backend", backend, "--entries", str(entries)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    main()
