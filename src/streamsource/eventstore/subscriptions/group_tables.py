"""Where consumer groups keep their state: in the store's own database.

Two tables, the same for every backend:

* ``ss_groups``: one row per group: the category it consumes, its checkpoint (the last
  position handed to the group, i.e. moved into in-flight), and how much of its parked
  stream was replayed.
* ``ss_group_inflight``: one row per message handed out and not yet acked: attempts so far,
  the consumer holding it and until when (its lease). A message whose lease ran out (its
  consumer died or nacked it) can be claimed again.

Every change runs in one transaction (SQLite ``BEGIN IMMEDIATE``, the memory backend's
lock), so competing consumers in threads or processes never claim the same message twice
at once. The memory backend keeps the tables beside its recorder, for tests and demos.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from streamsource.errors import DatabaseError, NotSupportedError, OperationalError, StoreError
from streamsource.eventstore.backends.sqlite.faults import translate

LOCK_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Group:
    """A consumer group's row."""

    category: str
    checkpoint: int | None
    replayed: int | None  # last version of the parked stream moved back into in-flight


@dataclass(frozen=True, slots=True)
class Entry:
    """An in-flight message."""

    position: int
    attempts: int  # deliveries so far
    replays: int  # times it came back from the parked stream
    consumer: str | None


class GroupTables(Protocol):
    """The operations on the two tables; all but ``transaction`` run inside one."""

    def transaction(self) -> Any: ...

    def group(self, name: str) -> Group | None: ...

    def create_group(self, name: str, category: str) -> None: ...

    def set_checkpoint(self, name: str, position: int) -> None: ...

    def set_replayed(self, name: str, version: int) -> None: ...

    def claimable(self, name: str, now: int, limit: int) -> list[Entry]: ...

    def lease(self, name: str, position: int, consumer: str, until: int, attempts: int) -> None: ...

    def add(self, name: str, entry: Entry, until: int) -> None: ...

    def entry(self, name: str, position: int) -> Entry | None: ...

    def release(self, name: str, position: int, available_at: int, error: str) -> None: ...

    def remove(self, name: str, position: int) -> None: ...

    def next_expiry(self, name: str) -> int | None: ...

    def in_flight(self, name: str) -> int: ...

    def close(self) -> None: ...


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ss_groups ("
    " name TEXT PRIMARY KEY, category TEXT NOT NULL, checkpoint INTEGER, replayed INTEGER)",
    "CREATE TABLE IF NOT EXISTS ss_group_inflight ("
    " name TEXT NOT NULL, position INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " replays INTEGER NOT NULL, consumer TEXT, lease_until INTEGER NOT NULL, last_error TEXT,"
    " PRIMARY KEY (name, position))",
)


class SqliteGroupTables:
    """The group tables in the store's SQLite file, on a connection of their own."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(
                path, timeout=LOCK_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            with self.transaction():
                for statement in _SCHEMA:
                    self._conn.execute(statement)
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._all("BEGIN IMMEDIATE", ())
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._all("COMMIT", ())

    def group(self, name: str) -> Group | None:
        rows = self._all(
            "SELECT category, checkpoint, replayed FROM ss_groups WHERE name = ?", (name,)
        )
        return Group(*rows[0]) if rows else None

    def create_group(self, name: str, category: str) -> None:
        self._all("INSERT INTO ss_groups VALUES (?, ?, NULL, NULL)", (name, category))

    def set_checkpoint(self, name: str, position: int) -> None:
        self._all("UPDATE ss_groups SET checkpoint = ? WHERE name = ?", (position, name))

    def set_replayed(self, name: str, version: int) -> None:
        self._all("UPDATE ss_groups SET replayed = ? WHERE name = ?", (version, name))

    def claimable(self, name: str, now: int, limit: int) -> list[Entry]:
        rows = self._all(
            "SELECT position, attempts, replays, consumer FROM ss_group_inflight"
            " WHERE name = ? AND lease_until <= ? ORDER BY position LIMIT ?",
            (name, now, limit),
        )
        return [Entry(*row) for row in rows]

    def lease(self, name: str, position: int, consumer: str, until: int, attempts: int) -> None:
        self._all(
            "UPDATE ss_group_inflight SET consumer = ?, lease_until = ?, attempts = ?"
            " WHERE name = ? AND position = ?",
            (consumer, until, attempts, name, position),
        )

    def add(self, name: str, entry: Entry, until: int) -> None:
        self._all(
            "INSERT OR IGNORE INTO ss_group_inflight VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (name, entry.position, entry.attempts, entry.replays, entry.consumer, until),
        )

    def entry(self, name: str, position: int) -> Entry | None:
        rows = self._all(
            "SELECT position, attempts, replays, consumer FROM ss_group_inflight"
            " WHERE name = ? AND position = ?",
            (name, position),
        )
        return Entry(*rows[0]) if rows else None

    def release(self, name: str, position: int, available_at: int, error: str) -> None:
        self._all(
            "UPDATE ss_group_inflight SET consumer = NULL, lease_until = ?, last_error = ?"
            " WHERE name = ? AND position = ?",
            (available_at, error, name, position),
        )

    def remove(self, name: str, position: int) -> None:
        self._all("DELETE FROM ss_group_inflight WHERE name = ? AND position = ?", (name, position))

    def next_expiry(self, name: str) -> int | None:
        rows = self._all("SELECT min(lease_until) FROM ss_group_inflight WHERE name = ?", (name,))
        return None if rows[0][0] is None else int(rows[0][0])

    def in_flight(self, name: str) -> int:
        return int(
            self._all("SELECT count(*) FROM ss_group_inflight WHERE name = ?", (name,))[0][0]
        )

    def close(self) -> None:
        self._conn.close()


class _MemoryState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.groups: dict[str, Group] = {}
        self.inflight: dict[str, dict[int, tuple[Entry, int]]] = {}  # entry, lease_until


_memory: weakref.WeakKeyDictionary[Any, _MemoryState] = weakref.WeakKeyDictionary()
_memory_lock = threading.Lock()


class MemoryGroupTables:
    """The group tables of a memory store: dictionaries beside its recorder."""

    def __init__(self, recorder: Any) -> None:
        with _memory_lock:
            state = _memory.get(recorder)
            if state is None:
                state = _memory[recorder] = _MemoryState()
        self._state = state

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._state.lock:
            yield  # a failure part-way leaves earlier changes: every caller checks first

    @property
    def lock(self) -> threading.RLock:
        """The lock a transaction holds (the asyncio tables take it too)."""
        return self._state.lock

    def group(self, name: str) -> Group | None:
        return self._state.groups.get(name)

    def create_group(self, name: str, category: str) -> None:
        self._state.groups[name] = Group(category, None, None)
        self._state.inflight[name] = {}

    def set_checkpoint(self, name: str, position: int) -> None:
        old = self._state.groups[name]
        self._state.groups[name] = Group(old.category, position, old.replayed)

    def set_replayed(self, name: str, version: int) -> None:
        old = self._state.groups[name]
        self._state.groups[name] = Group(old.category, old.checkpoint, version)

    def claimable(self, name: str, now: int, limit: int) -> list[Entry]:
        rows = self._state.inflight[name]
        due = sorted(p for p, (_e, until) in rows.items() if until <= now)[:limit]
        return [rows[p][0] for p in due]

    def lease(self, name: str, position: int, consumer: str, until: int, attempts: int) -> None:
        rows = self._state.inflight[name]
        entry = rows[position][0]
        rows[position] = (Entry(position, attempts, entry.replays, consumer), until)

    def add(self, name: str, entry: Entry, until: int) -> None:
        self._state.inflight[name].setdefault(entry.position, (entry, until))

    def entry(self, name: str, position: int) -> Entry | None:
        found = self._state.inflight[name].get(position)
        return None if found is None else found[0]

    def release(self, name: str, position: int, available_at: int, error: str) -> None:
        rows = self._state.inflight[name]
        entry = rows[position][0]
        rows[position] = (Entry(position, entry.attempts, entry.replays, None), available_at)

    def remove(self, name: str, position: int) -> None:
        self._state.inflight[name].pop(position, None)

    def next_expiry(self, name: str) -> int | None:
        return min((until for _e, until in self._state.inflight[name].values()), default=None)

    def in_flight(self, name: str) -> int:
        return len(self._state.inflight[name])

    def close(self) -> None:
        pass


_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ss_groups ("
    " name TEXT PRIMARY KEY, category TEXT NOT NULL, checkpoint BIGINT, replayed BIGINT)",
    "CREATE TABLE IF NOT EXISTS ss_group_inflight ("
    " name TEXT NOT NULL, position BIGINT NOT NULL, attempts INTEGER NOT NULL,"
    " replays INTEGER NOT NULL, consumer TEXT, lease_until BIGINT NOT NULL, last_error TEXT,"
    " PRIMARY KEY (name, position))",
)
_PG_LOCK = 1397975927  # advisory lock key of the group tables (one per schema: its hash)


class PostgresGroupTables(SqliteGroupTables):
    """The group tables in the store's PostgreSQL schema (the SQLite queries, translated);
    a transaction takes an advisory lock so that claims of competing consumers serialise."""

    def __init__(self, conninfo: str, where: str) -> None:
        import psycopg

        self.path = where
        self._psycopg = psycopg
        try:
            self._pg = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise _pg_error(exc, where) from exc
        with self.transaction():
            for statement in _PG_SCHEMA:
                self._all(statement, ())

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        sql = sql.replace("?", "%s").replace("INSERT OR IGNORE", "INSERT")
        if sql.startswith("INSERT INTO ss_group_inflight"):
            sql += " ON CONFLICT DO NOTHING"
        try:
            cursor = self._pg.execute(sql.encode(), params)
            return cursor.fetchall() if cursor.description is not None else []
        except self._psycopg.Error as exc:
            raise _pg_error(exc, self.path) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._all("BEGIN", ())
        try:
            self._all("SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", (_PG_LOCK,))
            yield
        except BaseException:
            try:
                self._pg.execute("ROLLBACK")
            except self._psycopg.Error:
                pass
            raise
        self._all("COMMIT", ())

    def close(self) -> None:
        self._pg.close()


def _pg_error(exc: Exception, where: str) -> StoreError:
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        return OperationalError(f"{where}: {exc}")
    return DatabaseError(f"{where}: {exc}")


def open_group_tables(recorder: Any) -> GroupTables:
    """The group tables of the store behind ``recorder``."""
    inner = getattr(recorder, "recorder", None)
    if inner is not None and inner is not recorder:
        return open_group_tables(inner)
    path = getattr(recorder, "path", None)
    if isinstance(path, str):
        return SqliteGroupTables(path)
    if type(recorder).__name__ == "MemoryRecorder":
        return MemoryGroupTables(recorder)
    settings = getattr(recorder, "settings", None)
    conninfo = getattr(settings, "conninfo", None)
    if isinstance(conninfo, str):
        return PostgresGroupTables(conninfo, str(getattr(settings, "where", "PostgreSQL")))
    raise NotSupportedError(
        f"persistent subscriptions are not available for {type(recorder).__name__} yet"
    )
