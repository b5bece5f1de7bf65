"""Checkpoints that older versions kept in ``PATH-relay`` beside a SQLite store are imported
into the store's own table on start, and the old file goes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import streamsource as ss
from streamsource.bridge import checkpoints_for
from streamsource.bridge.checkpoints import TABLE


def _legacy_file(path: Path, rows: list[tuple[str, int]]) -> None:
    """The file as the older SqliteCheckpoints left it (same table, WAL mode)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        f"CREATE TABLE {TABLE} (name TEXT PRIMARY KEY, position INTEGER NOT NULL,"
        " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))) WITHOUT ROWID"
    )
    conn.executemany(f"INSERT INTO {TABLE} (name, position) VALUES (?, ?)", rows)
    conn.close()


def test_old_relay_checkpoints_are_imported_and_the_file_removed(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with ss.open_store(f"sqlite:///{path}") as store:
        for i in range(30):
            store.append(f"order-{i}", [ss.NewEvent("Placed", {"i": i})])
        checkpoints_for(store).save("ahead", 25)  # moved on since the upgrade
    legacy = tmp_path / "shop.db-relay"
    _legacy_file(legacy, [("default", 17), ("ahead", 12), ("other", 3)])

    with ss.open_store(f"sqlite:///{path}") as store:
        checkpoints = checkpoints_for(store)
        assert checkpoints.load("default") == 17
        assert checkpoints.load("ahead") == 25  # a checkpoint only moves forward
        assert checkpoints.load("other") == 3
        assert not legacy.exists()
        assert not Path(f"{legacy}-wal").exists() and not Path(f"{legacy}-shm").exists()
        checkpoints.save("default", 20)
    with ss.open_store(f"sqlite:///{path}") as store:  # imported once, nothing to do now
        assert checkpoints_for(store).load("default") == 20


def test_an_unreadable_old_file_stops_the_start_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    legacy = tmp_path / "shop.db-relay"
    legacy.write_bytes(b"not a database, just some bytes" * 100)
    with ss.open_store(f"sqlite:///{path}") as store:
        with pytest.raises(ss.OperationalError) as raised:
            checkpoints_for(store)
        message = str(raised.value)
        assert str(legacy) in message
        assert TABLE in message and "delete the file" in message
        assert legacy.exists()  # nothing lost
        legacy.unlink()
        assert checkpoints_for(store).load("default") == 0
