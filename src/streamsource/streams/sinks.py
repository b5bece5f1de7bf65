"""Sinks outside Kafka: an event-store stream and a SQL table (a projection).

Both are written while a batch is processed, so after a crash the records since the last
checkpoint are written again. The store sink makes that harmless with event ids derived
from the source position (``group/topic/partition/offset/n``): the store recognises a
re-sent append and writes nothing. A SQL sink's statement should be an upsert for the same
reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from streamsource.eventstore.events import NewEvent
from streamsource.eventstore.store import EventStore
from streamsource.streams.dataflow import Context, Node, Record
from streamsource.streams.errors import SinkFailed

_NAMESPACE = uuid.UUID("6f1b8a52-3c2e-4d0b-9a57-1f3c0de5a7e1")


class StoreSink(Node):
    """Appends each record as an event: ``stream(key, value)``, ``type(key, value)``,
    ``data(value)``; one append per source record and stream, idempotent on replay."""

    label = "to_store"

    def __init__(
        self,
        store: EventStore,
        group: str,
        stream: Callable[[Any, Any], str],
        type: Callable[[Any, Any], str],
        data: Callable[[Any], Any],
    ) -> None:
        super().__init__()
        self.store = store
        self.group = group
        self.stream = stream
        self.type = type
        self.data = data

    def process(self, records: list[Record], ctx: Context) -> None:
        appends: dict[tuple[int, str], list[NewEvent]] = {}
        seen: dict[int, int] = {}
        prefix = f"{self.group}/{ctx.topic}/{ctx.partition}/"
        try:
            for key, value, _ts, offset in records:
                n = seen.get(offset, 0)
                seen[offset] = n + 1
                event_id = uuid.uuid5(_NAMESPACE, f"{prefix}{offset}/{n}")
                event = NewEvent(self.type(key, value), self.data(value), id=event_id)
                appends.setdefault((offset, self.stream(key, value)), []).append(event)
        except Exception as exc:
            raise self.failed(exc) from exc
        for (_offset, stream), events in appends.items():
            self.store.append(stream, events)
        self.push(records, ctx)


class SqlSink(Node):
    """Runs ``statement`` with ``params(key, value)`` for each record, one transaction per
    batch, on a DB-API connection made once by ``connect()``."""

    label = "to_sql"

    def __init__(
        self, connect: Callable[[], Any], statement: str, params: Callable[[Any, Any], Any]
    ) -> None:
        super().__init__()
        self.connect = connect
        self.statement = statement
        self.params = params
        self._connection: Any = None

    def process(self, records: list[Record], ctx: Context) -> None:
        if self._connection is None:
            self._connection = self.connect()
        params = self.params
        try:
            rows = [params(k, v) for k, v, _t, _o in records]
        except Exception as exc:
            raise self.failed(exc) from exc
        connection = self._connection
        try:
            connection.cursor().executemany(self.statement, rows)
            connection.commit()
        except Exception as exc:
            connection.rollback()
            raise SinkFailed(f"to_sql: the database refused the batch: {exc!r}") from exc
        self.push(records, ctx)
