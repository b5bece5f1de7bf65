"""Feeding a :class:`~streamsource.eventstore.projections.Projection` from Kafka.

The projections package feeds a read model from the store, with a checkpoint in the
read model's transaction. Fed from Kafka instead, events arrive per partition, so a single
position cannot say what was applied; the inbox does: :class:`ProjectionInbox` records each
event id in ``ss_projection_inbox`` in the very transaction (and under the same per-projection
lock) in which the projection's handler writes its tables. The projection's tables and views
are set up exactly as the runner does, so readers query them the same way.

Feed one projection from one source only: either the store (``ProjectionRunner``) or Kafka
(this module), never both, or events would be applied twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from streamsource.bridge.consumer import InboxConsumer
from streamsource.eventstore.events import RecordedEvent, category_of
from streamsource.eventstore.projections import catalog
from streamsource.eventstore.projections.database import connect
from streamsource.eventstore.projections.projection import (
    Projection,
    ProjectionContext,
    check_projection,
)

TABLE = "ss_projection_inbox"


class ProjectionInbox:
    """An inbox in a projection's read-model database (``sqlite:///...`` or PostgreSQL).

    Its transactions yield the :class:`ProjectionContext` the projection's ``handle`` takes.
    """

    def __init__(self, read_model_url: str, projection: Projection) -> None:
        self.projection = check_projection(projection)
        self.connection = connect(read_model_url)
        catalog.ensure_catalog(self.connection)
        self.generation = catalog.set_up(self.connection, projection).current
        with self.connection.transaction("$inbox"):
            self.connection.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (consumer TEXT NOT NULL,"
                " event_id TEXT NOT NULL, position BIGINT NOT NULL,"
                " PRIMARY KEY (consumer, event_id))"
            )
        types = projection.types
        self._types = None if types is None else frozenset(types)

    @contextmanager
    def transaction(self) -> Iterator[ProjectionContext]:
        projection = self.projection
        with self.connection.transaction(projection.name):
            yield ProjectionContext(self.connection, projection.tables, self.generation)

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        # Runs under the projection's lock (BEGIN IMMEDIATE / an advisory lock): no race.
        new: list[RecordedEvent] = []
        execute = self.connection.execute
        for event in events:
            cursor: Any = execute(
                f"INSERT INTO {TABLE} (consumer, event_id, position) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (consumer, str(event.id), event.position),
            )
            if cursor.rowcount == 1:
                new.append(event)
        return new

    def handle(self, event: RecordedEvent, tx: ProjectionContext) -> None:
        """Apply ``event`` if the projection wants its category and type (else skip it)."""
        projection = self.projection
        category = projection.category
        if category is not None and category_of(event.stream) != category:
            return
        if self._types is not None and event.type not in self._types:
            return
        projection.handle(event, tx)

    def applied(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has handed to the projection."""
        row = self.connection.execute(
            f"SELECT count(*) FROM {TABLE} WHERE consumer = ?", (consumer,)
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.connection.close()


def projection_consumer(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    projection: Projection,
    read_model_url: str,
    *,
    consumer_config: Mapping[str, Any] | None = None,
    batch_size: int = 1000,
) -> InboxConsumer:
    """An :class:`InboxConsumer` that feeds ``projection`` (in ``read_model_url``) from Kafka.

    The consumer's name in the inbox is the projection's name.
    """
    inbox = ProjectionInbox(read_model_url, projection)
    return InboxConsumer(
        bootstrap,
        group_id,
        topics,
        inbox.handle,
        inbox,
        name=projection.name,
        consumer_config=consumer_config,
        batch_size=batch_size,
    )
