"""Where the relay keeps its checkpoint: the last position the broker acknowledged.

The checkpoint is a row of the table ``streamsource_relay_checkpoints`` in the store's own
database (its SQLite file, or its PostgreSQL schema), written through the transactions the
store hands out (:mod:`streamsource.eventstore.database`), one row per relay name. On SQLite
that is the store's write queue, like every component writing beside the store: the save
shares the commit (and fsync) of the appends it meets there instead of competing with them
for the file's lock, and it is as durable as the store's own commits (``durability=full``:
survives a power loss, so the relay never skips an event it did not deliver).
``benchmarks/subscriptions.py --only-beside`` prints what such saves cost the application's
appends, beside a separate file and a second connection (see
:mod:`streamsource.eventstore.backends.sqlite.database`).

Older versions kept a SQLite store's checkpoints in a file of their own, ``PATH-relay``. The
first checkpoint store opened on such a store imports its rows (per relay, the higher of
the two positions: a checkpoint only moves forward), commits, then removes the file; a
crash in between imports the same rows again. A file it cannot read stops it with an error
naming the file and what to do, the file left in place.

A store without a SQL database (``memory://``) keeps checkpoints in memory (demos, tests).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from streamsource.errors import OperationalError
from streamsource.eventstore.database import Database, ensure_tables
from streamsource.eventstore.store import EventStore

TABLE = "streamsource_relay_checkpoints"


class CheckpointStore(Protocol):
    """Loads and saves the position of named relays."""

    def load(self, name: str) -> int:
        """The saved position of relay ``name``; 0 (before the first event) if none."""
        ...

    def save(self, name: str, position: int) -> None:
        """Durably record that every event up to ``position`` was delivered."""
        ...

    def close(self) -> None: ...


class MemoryCheckpoints:
    """Checkpoints kept in memory: for ``memory://`` stores, tests and demos."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> int:
        with self._lock:
            return self._positions.get(name, 0)

    def save(self, name: str, position: int) -> None:
        with self._lock:
            self._positions[name] = position

    def close(self) -> None:
        pass


class DatabaseCheckpoints:
    """Checkpoints in a table of the store's database (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        d = database.dialect
        ensure_tables(
            database,
            f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY,"
            f" position {d.bigint} NOT NULL, updated_at {d.timestamp} NOT NULL DEFAULT {d.now})",
        )
        self._load = f"SELECT position FROM {TABLE} WHERE name = {d.placeholder}"
        self._save = d.upsert(TABLE, ("name", "position"), ("name",)) + f", updated_at = {d.now}"
        if d.name == "sqlite":
            import_legacy_file(database)

    def load(self, name: str) -> int:
        with self._database.transaction() as tx:
            rows = tx.execute(self._load, (name,))
        return 0 if not rows else int(rows[0][0])

    def save(self, name: str, position: int) -> None:
        with self._database.transaction() as tx:
            tx.execute(self._save, (name, position))

    def close(self) -> None:
        pass  # the store owns the database


def checkpoints_for(store: EventStore) -> CheckpointStore:
    """The checkpoint store beside ``store``: in its database, or in memory if it has none."""
    database = store.recorder.database
    if database is None:
        return MemoryCheckpoints()
    return DatabaseCheckpoints(database)


LEGACY_SUFFIX = "-relay"
"""The file beside a SQLite store ``PATH`` where older versions kept its checkpoints."""

_IMPORT = (
    f"INSERT INTO {TABLE} (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
    " SET position = max(position, excluded.position)"
)


def import_legacy_file(database: Database) -> list[tuple[str, int]]:
    """Move the checkpoints of ``PATH-relay`` (older versions) into the SQLite store's table
    and remove the file; the rows imported (none if there was no file)."""
    legacy = Path(database.where + LEGACY_SUFFIX)
    if not legacy.is_file():
        return []
    try:
        conn = sqlite3.connect(legacy, isolation_level=None)
        try:
            rows = [
                (str(name), int(position))
                for name, position in conn.execute(f"SELECT name, position FROM {TABLE}")
            ]
        finally:
            conn.close()
    except (sqlite3.Error, ValueError, TypeError) as exc:
        raise OperationalError(
            f"{legacy}: relay checkpoints kept by an older streamsource cannot be read ({exc});"
            f" checkpoints now live in the store's table {TABLE}: copy each relay's position"
            " there (or let the relays start from 0, their consumers skipping the repeats),"
            " then delete the file"
        ) from exc
    with database.transaction() as tx:
        tx.executemany(_IMPORT, rows)
    for path in (legacy, Path(f"{legacy}-wal"), Path(f"{legacy}-shm")):
        path.unlink(missing_ok=True)
    return rows
