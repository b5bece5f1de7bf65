"""One service's store: its events, outbox and inbox, its read-model tables, its messaging
service, and a few read sessions for queries.

Commands from the API run in :meth:`ServiceStore.run`: a messaging transaction (aggregate
events, published messages, rows registered with ``ctx.write``; appends first, as
PostgreSQL requires), run again on fresh state after a concurrent write.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamsource as ss
from streamsource.messaging import Context, Service

from .messaging import CHANNELS, registry

T = TypeVar("T")
READ_SESSIONS = 4  # idle read sessions kept per service


class ServiceStore:
    """A service's event store, its messaging service and read sessions on its database."""

    def __init__(self, service: str, url: str, tables: Sequence[str] = ()) -> None:
        self.service = service
        self.url = url
        self.store = ss.open_store(url)
        database = self.store.recorder.database
        if database is None:
            raise ss.NotSupportedError(f"the {service} service needs an SQL store, not {url}")
        self.database = database
        self.dialect = database.dialect
        self.local = self.dialect.name == "sqlite"  # a file here, not a server away
        self.messages = Service(service, self.store, registry=registry, channels=CHANNELS)
        self._idle: queue.Queue[Any] = queue.Queue(maxsize=READ_SESSIONS)
        with self.store.transaction() as tx:
            for statement in tables:
                tx.execute(self.sql(statement))

    def sql(self, statement: str) -> str:
        # Example code with a handful of statements: written once with `?`, adapted here.
        return statement.replace("?", self.dialect.placeholder)

    def execute(self, ctx: Context, statement: str, params: Sequence[Any] = ()) -> None:
        """Write a row in the handler's transaction, after its appends."""
        sql = self.sql(statement)
        ctx.write(lambda tx: tx.execute(sql, params))

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read on one of a few pooled autocommit sessions (never a write)."""
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self.database.connect()
        try:
            rows = list(connection.execute(self.sql(statement), params).fetchall())
        except BaseException:
            connection.close()  # its state is unknown after a failure
            raise
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()
        return rows

    def run(self, command: Callable[[Context], T], attempts: int = 5) -> T:
        """Run ``command`` in one messaging transaction, again after a concurrent write."""

        def attempt() -> T:
            with self.messages.transaction() as ctx:
                return command(ctx)

        return ss.retry_on_conflict(attempt, attempts=attempts)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
        self.store.close()
