"""Where the relay keeps its checkpoint: the last position the broker acknowledged.

For a SQLite store ``PATH`` the checkpoint is a row of the table
``streamsource_relay_checkpoints`` in the SQLite file ``PATH-relay`` beside it (created on
first use). It is not in the store's own file on purpose: SQLite has one writer lock per
file, and a relay saving its checkpoint 20 times a second would make the application's
appends wait for it (SQLite's busy handler sleeps in steps of up to 100 ms). For PostgreSQL
the same table lives in the store's database, in the store's schema; for ``memory://`` the checkpoint is kept in
memory (demos and tests). Each relay has a
name, so several relays (different categories, different clusters) keep separate rows.

The checkpoint is written with ``synchronous=FULL``: a saved checkpoint survives a power
loss, so the relay never skips an event it did not deliver.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Protocol

from streamsource.errors import InterfaceError, OperationalError

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


class SqliteCheckpoints:
    """Checkpoints in a table of a SQLite file (by default the store's own file)."""

    def __init__(self, path: str, *, timeout: float = 5.0) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                " name TEXT PRIMARY KEY, position INTEGER NOT NULL,"
                " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
                ") WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise OperationalError(f"cannot open relay checkpoints in {path}: {exc}") from None
        self._lock = threading.Lock()

    def load(self, name: str) -> int:
        with self._lock:
            row = self._run(f"SELECT position FROM {TABLE} WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def save(self, name: str, position: int) -> None:
        with self._lock:
            self._run(
                f"INSERT INTO {TABLE} (name, position) VALUES (?, ?) ON CONFLICT (name) DO"
                " UPDATE SET position = excluded.position,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')",
                (name, position),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise OperationalError(f"relay checkpoint in {self.path}: {exc}") from None


class PostgresCheckpoints:
    """Checkpoints in a table of a PostgreSQL database (psycopg 3).

    A lost connection fails that load or save (a retriable OperationalError: the relay goes
    on and saves again later); the next call connects again.
    """

    def __init__(self, conninfo: str) -> None:
        try:
            import psycopg
        except ModuleNotFoundError:
            raise InterfaceError(
                "PostgreSQL checkpoints need psycopg: pip install 'streamsource[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._conninfo = conninfo
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(conninfo, autocommit=True)
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY,"
                " position BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        except psycopg.Error as exc:
            raise OperationalError(f"cannot open relay checkpoints: {exc}") from None

    def load(self, name: str) -> int:
        with self._lock:
            try:
                self._reconnect_if_lost()
                row = self._db.execute(
                    f"SELECT position FROM {TABLE} WHERE name = %s", (name,)
                ).fetchone()
            except self._psycopg.Error as exc:
                raise OperationalError(f"relay checkpoint: {exc}") from None
        return 0 if row is None else int(row[0])

    def save(self, name: str, position: int) -> None:
        with self._lock:
            try:
                self._reconnect_if_lost()
                self._db.execute(
                    f"INSERT INTO {TABLE} (name, position) VALUES (%s, %s) ON CONFLICT (name)"
                    " DO UPDATE SET position = excluded.position, updated_at = now()",
                    (name, position),
                )
            except self._psycopg.Error as exc:
                raise OperationalError(f"relay checkpoint: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _reconnect_if_lost(self) -> None:
        if self._db.closed:  # lost during an earlier call (psycopg closes a broken one)
            self._db = self._psycopg.connect(self._conninfo, autocommit=True)


def checkpoints_for(store_url: str) -> CheckpointStore:
    """The default checkpoint store beside the event store that ``store_url`` names."""
    scheme = store_url.partition("://")[0].lower()
    if scheme == "sqlite":
        from streamsource.eventstore.backends.sqlite import parse_url

        path, _ = parse_url(store_url)
        return SqliteCheckpoints(sidecar_path(path))
    if scheme in ("postgresql", "postgres"):
        # the store's URL rules: its conninfo puts the table in the store's schema
        try:
            from streamsource.eventstore.backends.postgres.settings import parse
        except ModuleNotFoundError:
            raise InterfaceError(
                "PostgreSQL checkpoints need psycopg: pip install 'streamsource[postgres]'"
            ) from None

        return PostgresCheckpoints(parse(store_url, {}).conninfo)
    if scheme == "memory":
        return MemoryCheckpoints()
    raise InterfaceError(f"no default relay checkpoint for {store_url!r}; pass checkpoints=")


def sidecar_path(store_path: str) -> str:
    """The file beside a SQLite store that holds its relays' checkpoints."""
    return store_path + "-relay"
