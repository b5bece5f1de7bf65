"""Saga state and deadline rows, in the service's own store database.

**Why a table, not an event-sourced stream.** A saga's state is working state: it is read
and replaced whole on every reply, and operators ask "which sagas are stuck?". One row per
saga with a ``version`` column gives optimistic concurrency exactly like an aggregate's
expected version (``UPDATE ... WHERE version = ?``: of two replies at once, one updates and
the other finds no row and rolls back), an index to list by status, and a unique
``(name, saga_key)`` constraint so one correlation key cannot start two sagas. The history
of every decision is kept in the row's JSON (bounded by the steps and their attempts), so
``sagas show`` still says why a saga ended. Replaying a stream would buy nothing here: the
commands a saga sent are already events in the service's outbox.

**Deadlines** are rows ``(deadline_id, owner, target, due_ms)``. A deadline fires in the
transaction that deletes its row (``DELETE ... RETURNING``) and applies the transition: if
two processes pick the same due row, one delete returns it and the other's returns nothing,
so that transaction rolls back (:class:`DeadlineTaken`). A cancelled deadline is deleted in
the transaction of the reply that cancelled it, so it never fires. Restarts lose nothing:
the rows are in the database.

All writes go after the transaction's appends (PostgreSQL numbers positions by the
appending transaction), so the engine reads rows first and writes them last; reads take no
row locks, the version check and the delete carry the concurrency.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from streamsource.eventstore.database import Dialect
from streamsource.sagas.core import SagaState
from streamsource.sagas.errors import SagaConflict, SagaDataNotSerializable, SagaError

SAGAS = "streamsource_sagas"
DEADLINES = "streamsource_saga_deadlines"


class Executes(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class DeadlineTaken(SagaError):
    """Another process fired this deadline first; this transaction rolls back."""

    retriable = False


@dataclass(frozen=True, slots=True)
class SagaRow:
    """A saga's state as stored, with the version its next update must match."""

    state: SagaState
    version: int


def create_statements(d: Dialect) -> tuple[str, ...]:
    return (
        f"CREATE TABLE IF NOT EXISTS {SAGAS} (saga_id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        f" name TEXT NOT NULL, saga_key TEXT NOT NULL, status TEXT NOT NULL, version {d.bigint} NOT NULL,"
        f" state TEXT NOT NULL, updated_at {d.timestamp} NOT NULL DEFAULT {d.now},"
        " UNIQUE (name, saga_key))",
        f"CREATE INDEX IF NOT EXISTS {SAGAS}_status ON {SAGAS} (status, name)",
        f"CREATE TABLE IF NOT EXISTS {DEADLINES} (deadline_id TEXT PRIMARY KEY,"
        f" owner TEXT NOT NULL, target TEXT NOT NULL, due_ms {d.bigint} NOT NULL,"
        " request TEXT)",
        f"CREATE INDEX IF NOT EXISTS {DEADLINES}_due ON {DEADLINES} (owner, due_ms)",
    )


_COLUMNS = "state, version"


class SagaRows:
    """The statements of both tables for one dialect, and their sync execution."""

    def __init__(self, dialect: Dialect) -> None:
        p = dialect.placeholder
        self.dialect = dialect
        self.select = f"SELECT {_COLUMNS} FROM {SAGAS} WHERE saga_id = {p}"
        self.select_key = f"SELECT {_COLUMNS} FROM {SAGAS} WHERE name = {p} AND saga_key = {p}"
        self.insert = (
            dialect.insert_or_ignore(
                SAGAS, ("saga_id", "owner", "name", "saga_key", "status", "version", "state")
            )
            + " RETURNING saga_id"
        )
        self.update = (
            f"UPDATE {SAGAS} SET status = {p}, version = {p}, state = {p},"
            f" updated_at = {dialect.now} WHERE saga_id = {p} AND version = {p}"
            " RETURNING saga_id"
        )
        self.listing = f"SELECT {_COLUMNS} FROM {SAGAS}"
        self.schedule = dialect.upsert(
            DEADLINES, ("deadline_id", "owner", "target", "due_ms", "request"), ("deadline_id",)
        )
        self.owner_of = f"SELECT owner FROM {SAGAS} WHERE saga_id = {p}"
        self.cancel = f"DELETE FROM {DEADLINES} WHERE deadline_id = {p}"
        self.claim = f"DELETE FROM {DEADLINES} WHERE deadline_id = {p} RETURNING request"
        self.due = (
            f"SELECT deadline_id, target, request FROM {DEADLINES} WHERE owner = {p} AND due_ms <= {p}"
            f" ORDER BY due_ms LIMIT {p}"
        )
        self.next_due = f"SELECT MIN(due_ms) FROM {DEADLINES} WHERE owner = {p}"

    # -- saga rows ------------------------------------------------------------------------

    @staticmethod
    def decode(row: tuple[Any, ...]) -> SagaRow:
        return SagaRow(msgspec.json.decode(row[0], type=SagaState), int(row[1]))

    def load(self, tx: Executes, saga_id: str) -> SagaRow | None:
        rows = tx.execute(self.select, (saga_id,))
        return self.decode(rows[0]) if rows else None

    def find(self, tx: Executes, name: str, key: str) -> SagaRow | None:
        rows = tx.execute(self.select_key, (name, key))
        return self.decode(rows[0]) if rows else None

    def insert_params(self, owner: str, state: SagaState) -> tuple[Any, ...]:
        return (state.saga_id, owner, state.name, state.key, state.status, 1, encode_state(state))

    def update_params(self, state: SagaState, version: int) -> tuple[Any, ...]:
        return (state.status, version + 1, encode_state(state), state.saga_id, version)

    def create(self, tx: Executes, owner: str, state: SagaState) -> bool:
        """Insert a new saga's row (version 1); False if its name and key are taken."""
        return bool(tx.execute(self.insert, self.insert_params(owner, state)))

    def save(self, tx: Executes, state: SagaState, version: int) -> int:
        """Write ``state`` over the row at ``version``; the new version, or SagaConflict if
        another transition committed meanwhile."""
        if not tx.execute(self.update, self.update_params(state, version)):
            raise SagaConflict(state.saga_id, version)
        return version + 1

    def listing_query(
        self, *, status: str | None, name: str | None, limit: int
    ) -> tuple[str, tuple[Any, ...]]:
        p = self.dialect.placeholder
        where, params = [], []
        if status is not None:
            where.append(f"status = {p}")
            params.append(status)
        if name is not None:
            where.append(f"name = {p}")
            params.append(name)
        sql = self.listing + (" WHERE " + " AND ".join(where) if where else "")
        return sql + f" ORDER BY updated_at DESC, saga_id LIMIT {p}", (*params, limit)

    # -- deadlines ------------------------------------------------------------------------

    def schedule_deadline(
        self,
        tx: Executes,
        owner: str,
        deadline_id: str,
        target: str,
        at: float,
        request: str | None = None,
    ) -> None:
        """A deadline of ``target`` (a saga id) at ``at`` (epoch seconds); ``request``: an
        operator's request (resume, abort) carried out by the engine that owns the saga."""
        tx.execute(self.schedule, (deadline_id, owner, target, round(at * 1000), request))

    def cancel_deadline(self, tx: Executes, deadline_id: str) -> None:
        tx.execute(self.cancel, (deadline_id,))

    def claim_deadline(self, tx: Executes, deadline_id: str) -> None:
        """Delete the deadline's row, or DeadlineTaken if another process already did."""
        if not tx.execute(self.claim, (deadline_id,)):
            raise DeadlineTaken(f"deadline {deadline_id} already fired in another process")

    def due_deadlines(
        self, tx: Executes, owner: str, now: float, limit: int
    ) -> list[tuple[str, str, str | None]]:
        """Deadlines of ``owner`` due at ``now``: (deadline id, target, request)."""
        rows = tx.execute(self.due, (owner, round(now * 1000), limit))
        return [(str(r[0]), str(r[1]), r[2]) for r in rows]

    def next_due_at(self, tx: Executes, owner: str) -> float | None:
        rows = tx.execute(self.next_due, (owner,))
        return None if not rows or rows[0][0] is None else int(rows[0][0]) / 1000


MAX_STATE = 1024 * 1024  # bytes of one saga's JSON: data and history stay small


def encode_state(state: SagaState) -> str:
    try:
        encoded = msgspec.json.encode(state)
    except (TypeError, msgspec.EncodeError) as exc:
        raise SagaDataNotSerializable(
            f"saga {state.name} {state.saga_id}: its data is not JSON ({exc})"
        ) from None
    if len(encoded) > MAX_STATE:
        raise SagaDataNotSerializable(
            f"saga {state.name} {state.saga_id}: its state is {len(encoded)} bytes of JSON,"
            f" more than {MAX_STATE}; keep large data in your own tables, ids in the saga"
        )
    return encoded.decode()


def history_json(state: SagaState) -> str:
    """The history as indented JSON (``sagas show --json``)."""
    return json.dumps(msgspec.to_builtins(state.history), indent=2)
