"""Where consumer groups keep their state: in the store's own database.

Two tables, the same for every backend:

* ``ss_groups``: one row per group: the category it consumes, its checkpoint (the last
  position handed to the group, i.e. moved into in-flight), and how much of its parked
  stream was replayed.
* ``ss_group_inflight``: one row per message handed out and not yet acked: attempts so far,
  the consumer holding it and until when (its lease). A message whose lease ran out (its
  consumer died or nacked it) can be claimed again.

Every change runs in one transaction of the store's own database (see
:mod:`streamsource.eventstore.database`; on SQLite through the store's write queue, like
every component writing beside the store), so competing consumers in threads or processes
never claim the same message twice at once. A backend without a SQL database (memory) gets
the tables in memory beside its recorder, for tests and demos.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from streamsource.errors import InterfaceError
from streamsource.eventstore.database import Database, Dialect, Transaction, ensure_tables
from streamsource.eventstore.recorder import Recorder


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


@dataclass(frozen=True, slots=True)
class GroupOverview:
    """A group as an operator sees it (the console)."""

    name: str
    category: str
    checkpoint: int | None
    replayed: int | None
    in_flight: int


@dataclass(frozen=True, slots=True)
class InFlight:
    """An in-flight message as an operator sees it: who holds it, why it came back."""

    position: int
    attempts: int
    replays: int
    consumer: str | None
    lease_until: int  # microseconds since the epoch
    last_error: str | None


class GroupTables(Protocol):
    """The operations on the two tables; all but ``transaction`` run inside one."""

    def transaction(self, name: str) -> AbstractContextManager[None]:
        """One transaction, in which the group ``name`` is the caller's alone."""
        ...

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

    def in_flight_entries(self, name: str, limit: int) -> list[InFlight]: ...

    def groups(self) -> list[GroupOverview]:
        """Every group, by name (runs in a transaction of its own)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GroupStatements:
    """The statements on the group tables, in one database's dialect."""

    create: tuple[str, ...]
    lock_group: str
    group: str
    create_group: str
    set_checkpoint: str
    set_replayed: str
    claimable: str
    lease: str
    add: str
    entry: str
    release: str
    remove: str
    next_expiry: str
    in_flight: str
    in_flight_entries: str
    groups: str

    @classmethod
    def of(cls, d: Dialect) -> GroupStatements:
        p = d.placeholder
        columns = "position, attempts, replays, consumer"
        return cls(
            create=(
                "CREATE TABLE IF NOT EXISTS ss_groups (name TEXT PRIMARY KEY,"
                f" category TEXT NOT NULL, checkpoint {d.bigint}, replayed {d.bigint})",
                "CREATE TABLE IF NOT EXISTS ss_group_inflight (name TEXT NOT NULL,"
                f" position {d.bigint} NOT NULL, attempts INTEGER NOT NULL,"
                f" replays INTEGER NOT NULL, consumer TEXT, lease_until {d.bigint} NOT NULL,"
                " last_error TEXT, PRIMARY KEY (name, position))",
            ),
            lock_group=f"SELECT category FROM ss_groups WHERE name = {p}{d.for_update}",
            group=f"SELECT category, checkpoint, replayed FROM ss_groups WHERE name = {p}",
            create_group=d.insert_or_ignore("ss_groups", ("name", "category")),
            set_checkpoint=f"UPDATE ss_groups SET checkpoint = {p} WHERE name = {p}",
            set_replayed=f"UPDATE ss_groups SET replayed = {p} WHERE name = {p}",
            claimable=f"SELECT {columns} FROM ss_group_inflight"
            f" WHERE name = {p} AND lease_until <= {p} ORDER BY position LIMIT {p}",
            lease=f"UPDATE ss_group_inflight SET consumer = {p}, lease_until = {p},"
            f" attempts = {p} WHERE name = {p} AND position = {p}",
            add=d.insert_or_ignore(
                "ss_group_inflight",
                ("name", "position", "attempts", "replays", "consumer", "lease_until"),
            ),
            entry=f"SELECT {columns} FROM ss_group_inflight WHERE name = {p} AND position = {p}",
            release=f"UPDATE ss_group_inflight SET consumer = NULL, lease_until = {p},"
            f" last_error = {p} WHERE name = {p} AND position = {p}",
            remove=f"DELETE FROM ss_group_inflight WHERE name = {p} AND position = {p}",
            next_expiry=f"SELECT min(lease_until) FROM ss_group_inflight WHERE name = {p}",
            in_flight=f"SELECT count(*) FROM ss_group_inflight WHERE name = {p}",
            in_flight_entries=f"SELECT {columns}, lease_until, last_error FROM ss_group_inflight"
            f" WHERE name = {p} ORDER BY position LIMIT {p}",
            groups="SELECT name, category, checkpoint, replayed,"
            " (SELECT count(*) FROM ss_group_inflight i WHERE i.name = g.name)"
            " FROM ss_groups g ORDER BY name",
        )


class SqlGroupTables:
    """The group tables in the store's own database, through the transactions it hands out
    (:mod:`streamsource.eventstore.database`); statements are built once from its dialect.

    Competing consumers serialise on the group's row: on SQLite every write transaction
    of the store already runs alone; elsewhere the row is locked (``FOR UPDATE``) first.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._tx: Transaction | None = None
        self._sql = GroupStatements.of(database.dialect)
        ensure_tables(database, *self._sql.create)

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._tx is None:
            raise InterfaceError("group tables are used outside their transaction")
        return self._tx.execute(sql, params)

    @contextmanager
    def transaction(self, name: str) -> Iterator[None]:
        with self._database.transaction() as tx:
            self._tx = tx
            try:
                tx.execute(self._sql.lock_group, (name,))
                yield
            finally:
                self._tx = None

    def group(self, name: str) -> Group | None:
        rows = self._all(self._sql.group, (name,))
        return Group(*rows[0]) if rows else None

    def create_group(self, name: str, category: str) -> None:
        self._all(self._sql.create_group, (name, category))

    def set_checkpoint(self, name: str, position: int) -> None:
        self._all(self._sql.set_checkpoint, (position, name))

    def set_replayed(self, name: str, version: int) -> None:
        self._all(self._sql.set_replayed, (version, name))

    def claimable(self, name: str, now: int, limit: int) -> list[Entry]:
        return [Entry(*row) for row in self._all(self._sql.claimable, (name, now, limit))]

    def lease(self, name: str, position: int, consumer: str, until: int, attempts: int) -> None:
        self._all(self._sql.lease, (consumer, until, attempts, name, position))

    def add(self, name: str, entry: Entry, until: int) -> None:
        self._all(
            self._sql.add,
            (name, entry.position, entry.attempts, entry.replays, entry.consumer, until),
        )

    def entry(self, name: str, position: int) -> Entry | None:
        rows = self._all(self._sql.entry, (name, position))
        return Entry(*rows[0]) if rows else None

    def release(self, name: str, position: int, available_at: int, error: str) -> None:
        self._all(self._sql.release, (available_at, error, name, position))

    def remove(self, name: str, position: int) -> None:
        self._all(self._sql.remove, (name, position))

    def next_expiry(self, name: str) -> int | None:
        rows = self._all(self._sql.next_expiry, (name,))
        return None if rows[0][0] is None else int(rows[0][0])

    def in_flight(self, name: str) -> int:
        return int(self._all(self._sql.in_flight, (name,))[0][0])

    def in_flight_entries(self, name: str, limit: int) -> list[InFlight]:
        return [InFlight(*row) for row in self._all(self._sql.in_flight_entries, (name, limit))]

    def groups(self) -> list[GroupOverview]:
        with self._database.transaction() as tx:
            return [GroupOverview(*row) for row in tx.execute(self._sql.groups, ())]

    def close(self) -> None:
        pass  # the store owns the database


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
    def transaction(self, name: str) -> Iterator[None]:
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

    def in_flight_entries(self, name: str, limit: int) -> list[InFlight]:
        rows = sorted(self._state.inflight[name].items())[:limit]
        return [
            InFlight(p, e.attempts, e.replays, e.consumer, until, None) for p, (e, until) in rows
        ]

    def groups(self) -> list[GroupOverview]:
        with self._state.lock:
            return [
                GroupOverview(
                    name, g.category, g.checkpoint, g.replayed, len(self._state.inflight[name])
                )
                for name, g in sorted(self._state.groups.items())
            ]

    def close(self) -> None:
        pass


def open_group_tables(recorder: Recorder) -> GroupTables:
    """The group tables of the store behind ``recorder``: in its database, or in memory
    beside it when the backend declares none (memory: nothing outlives the process anyway)."""
    database = recorder.database
    if database is None:
        return MemoryGroupTables(recorder)
    return SqlGroupTables(database)
