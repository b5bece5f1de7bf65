"""What operators do with sagas from outside the service that runs them: list them, read one,
ask for a stuck saga to be resumed or for a saga to be aborted.

Only the engine that owns a saga has its definition (the steps that build its commands), so
a request is a deadline row due at once, ``request`` naming the operation: the owner's
:class:`~streamsource.sagas.SagaEngine` picks it up with its other deadlines and carries it
out in one transaction with the commands it sends. The checks an operator expects at once
(no such saga, a resume of a saga that is not stuck) are made here, against the row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from streamsource.errors import ProgrammingError
from streamsource.eventstore.database import Database, require_database
from streamsource.eventstore.event_ids import new_event_id
from streamsource.eventstore.store import EventStore
from streamsource.sagas.core import FINISHED, SagaState
from streamsource.sagas.errors import InvalidSagaInput, SagaNotFound
from streamsource.sagas.tables import SAGAS, SagaRows


@contextmanager
def _rows(store: EventStore) -> Iterator[tuple[SagaRows, Any] | None]:
    """The saga rows and a transaction, or None when no service ran sagas in ``store``.

    The tables are not created here: on PostgreSQL even ``CREATE INDEX IF NOT EXISTS`` takes
    a lock that waits for, and then blocks, the running engine's writers.
    """
    database: Database = require_database(store.recorder, "sagas")
    try:
        with database.transaction() as tx:
            tx.execute(f"SELECT 1 FROM {SAGAS} WHERE 1 = 0")
    except ProgrammingError:  # the table is missing: no saga ever ran here
        yield None
        return
    with database.transaction() as tx:
        yield SagaRows(database.dialect), tx


def list_sagas(
    store: EventStore, *, status: str | None = None, name: str | None = None, limit: int = 100
) -> list[SagaState]:
    """Sagas in ``store``, most recently changed first (optionally of one status or name)."""
    with _rows(store) as found:
        if found is None:
            return []
        rows, tx = found
        sql, params = rows.listing_query(status=status, name=name, limit=limit)
        return [rows.decode(row).state for row in tx.execute(sql, params)]


def load_saga(store: EventStore, saga_id: str) -> SagaState:
    """One saga's state; SagaNotFound if there is none."""
    with _rows(store) as found:
        row = None if found is None else found[0].load(found[1], saga_id)
    if row is None:
        raise SagaNotFound(saga_id)
    return row.state


def request(
    store: EventStore,
    saga_id: str,
    op: Literal["resume", "abort"],
    reason: str = "aborted by an operator",
    *,
    now: float = 0.0,
) -> SagaState:
    """Ask the saga's engine to resume or abort it (see the module docstring); the saga as
    it is now. InvalidSagaInput if the operation does not apply to it."""
    with _rows(store) as found:
        if found is None:
            raise SagaNotFound(saga_id)
        rows, tx = found
        row = rows.load(tx, saga_id)
        if row is None:
            raise SagaNotFound(saga_id)
        state = row.state
        if op == "resume" and state.status != "stuck":
            raise InvalidSagaInput(f"saga {saga_id} is {state.status}: only a stuck saga resumes")
        if op == "abort" and (state.status in FINISHED or state.status == "new"):
            raise InvalidSagaInput(f"saga {saga_id} is {state.status}: nothing to abort")
        owner = tx.execute(rows.owner_of, (saga_id,))[0][0]
        body = json.dumps({"op": op, "reason": reason})
        rows.schedule_deadline(tx, owner, f"{saga_id}/{op}-{new_event_id()}", saga_id, now, body)
    return state
