"""The event store as a source: ``$all``, a category or a stream, through a catch-up
subscription (history, then live). Records are ``(stream name, RecordedEvent, recorded-at
ms, global position)``; the position is the checkpoint, kept in a SQLite file in the app's
state directory and written only after the outputs of the events before it were delivered
(at least once; a store sink downstream is idempotent on the position)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from streamsource.eventstore.subscriptions import CatchUpSubscription, subscribe
from streamsource.streams.dataflow import Node, Record
from streamsource.streams.errors import DataflowError, StreamsError


class StoreSource:
    def __init__(self, store: Any, *, stream: str | None, category: str | None,
                 types: list[str] | None, name: str | None) -> None:  # fmt: skip
        if stream is not None and category is not None:
            raise DataflowError("an event-store source follows a stream or a category, not both")
        self.store = store
        self.target = {"stream": stream, "category": category, "types": types}
        self.name = name or (f"${stream}" if stream else f"$ce-{category}" if category else "$all")
        self.node = Node()
        self._subscription: CatchUpSubscription | None = None

    def open(self, after: int | None) -> None:
        self._subscription = subscribe(self.store, after=after, **self.target)  # type: ignore[call-overload]

    @property
    def checkpoint(self) -> int | None:
        return None if self._subscription is None else self._subscription.checkpoint

    def read(self, max_events: int, timeout: float) -> list[Record]:
        assert self._subscription is not None
        events = self._subscription.next_batch(max_events, timeout)
        return [(e.stream, e, int(e.recorded_at.timestamp() * 1000), e.position) for e in events]

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None


class SourcePositions:
    """Checkpoints of event-store sources, by source name."""

    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS positions (name TEXT PRIMARY KEY, position INTEGER)"
            )
        except sqlite3.Error as exc:
            raise StreamsError(f"cannot open {path}: {exc}") from None

    def get(self, name: str) -> int | None:
        row = self._db.execute("SELECT position FROM positions WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def save(self, name: str, position: int | None) -> None:
        if position is not None:
            self._db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?)", (name, position))

    def close(self) -> None:
        self._db.close()
