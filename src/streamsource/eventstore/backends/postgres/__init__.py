"""The PostgreSQL event-store backend (psycopg 3 with a connection pool; sync and asyncio).

URL: ``postgresql://user:password@host:port/database?schema=app1`` (``postgres://`` too).
Options, as URL query parameters or keyword arguments (keywords win): ``schema`` (default
``public``: several applications share a database, each in its own schema), ``pool_size``
(default 10), ``pool_min_size`` (1), ``pool_timeout`` (seconds to wait for a free connection,
30), ``connect_timeout`` (seconds, 5) and ``migrate`` (default true: create or upgrade the
schema on open; ``streamsource store migrate --store URL`` does it explicitly). Other query
parameters go to libpq as they are.

Layout and migrations: the tables live in the store's schema, created by the numbered files in
``sql/`` (recorded in ``schema_migrations``, applied in one transaction under an advisory
lock: concurrent first opens are safe). Event data and metadata are stored as ``bytea``, the
JSON exactly as the client encoded it.

Global order without holes
--------------------------
A reader of the global log must never see a position appear below one it has seen, yet
writers to different streams should not wait for each other's commits (each commit is an
fsync; concurrent commits share them). Positions taken from a sequence at insert time are
*not* in commit order: T1 takes 5, T2 takes 6, T2 commits first, a reader sees 6, then 5
appears. We therefore keep two rules:

1. ``append_events`` (and ``append_event``, its one-event twin, and ``append_batch``, several
   appends in one call: migration 0003) takes the transaction id (``pg_current_xact_id()``) and the positions
   together under a session-level advisory lock held for a few microseconds, before anything
   else of the append. So for any two appends, the one with the lower transaction id has the
   lower positions. The lock is released right away, not at COMMIT: the stream checks, the
   inserts and the commits (with their fsyncs) of different writers run concurrently. It is
   taken without a subtransaction (migration 0002: one cost a quarter of the server's time
   per append), so after a failed append the recorder releases it on that connection
   (``pg_advisory_unlock_all()``) before pooling it again; a broken session drops it.
2. ``read_all`` and ``head_position`` only return rows whose ``tx_id`` is below
   ``pg_snapshot_xmin(pg_current_snapshot())``, the oldest transaction still running. Those
   transactions are all finished, and every transaction still running or yet to start has a
   higher id, hence higher positions. The visible log is thus a prefix that only grows at its
   end (this is the ``xid8`` technique of outbox/event stores, made exact by rule 1).

Positions stay dense (gaps only where an append rolled back). Deriving them from the
transaction id instead would need no lock at all, but would leave huge gaps; with 16 writers
on 2 cores the lock of rule 1 costs about a tenth of the throughput (measured).

Writers of one stream take turns: a transaction-scoped advisory lock on the stream's name,
taken first (before the transaction has an id, so rule 1 holds), makes the expected-version
check exact and keeps a stream's positions in version order. ``read_stream`` needs no
horizon. Appends to different streams share nothing but the microseconds of rule 1.

The cost: any transaction that holds a transaction id anywhere on the server (also in another
database or application) holds back what ``read_all`` shows until it ends; set
``idle_in_transaction_session_timeout`` on shared servers. After a *logical* dump and restore
into another cluster (not ``pg_upgrade``, which keeps transaction ids) the stored ``tx_id``
values may lie in the new cluster's future: migrating (on open, or ``streamsource store
migrate``) resets them; a store opened with ``migrate=False`` refuses to open until then.

A lone append is ONE round trip: a call of ``append_event`` (one event, scalar parameters) or
``append_events`` (arrays) in autocommit, as a prepared statement. The sync recorder sends
one-event appends through libpq directly (see :mod:`.direct`: a third of the client CPU).
Concurrent appends of one store (threads, or asyncio tasks) share a round trip and a commit:
those that queue behind an append in flight go next as one call of ``append_batch``, each
with its own outcome (see :mod:`.groupcommit`).

Append wakeups: after an append commits, a ``NOTIFY streamsource_appended, '<schema>'``
follows from a background thread (or task) on a connection of its own (besides the pool's
``pool_size``), coalesced, in a transaction with ``synchronous_commit`` off, and once more on
close (see :mod:`.notifier`); never inside the append's transaction, where PostgreSQL's
notify lock would serialise all commits.

Faults: every error is a :mod:`streamsource.errors` type naming the server. A connection lost
mid-append raises :class:`ConnectionLost` (retriable; the append is atomic, so it either
committed or not, and retrying it with the same event ids is idempotent). An exhausted pool
waits ``pool_timeout`` then raises :class:`PoolExhausted`; wrong credentials raise
:class:`AuthenticationFailed` and an unreachable host :class:`CannotConnect` within
``connect_timeout`` (also when a pooled call finds the server gone, after ``pool_timeout``).
"""

from __future__ import annotations

from typing import Any

from .async_recorder import AsyncPostgresRecorder
from .faults import AuthenticationFailed, CannotConnect, ConnectionLost, PoolExhausted
from .recorder import PostgresRecorder
from .settings import Settings, parse


def open_recorder(url: str, **options: Any) -> PostgresRecorder:
    """Open (migrating unless ``migrate=False``) the store named by ``url``."""
    return PostgresRecorder(parse(url, options))


async def open_async_recorder(url: str, **options: Any) -> AsyncPostgresRecorder:
    """Open the asyncio recorder of the store named by ``url`` (same options)."""
    return await AsyncPostgresRecorder.open(parse(url, options))


__all__ = [
    "AsyncPostgresRecorder",
    "AuthenticationFailed",
    "CannotConnect",
    "ConnectionLost",
    "PoolExhausted",
    "PostgresRecorder",
    "Settings",
    "open_async_recorder",
    "open_recorder",
    "parse",
]
