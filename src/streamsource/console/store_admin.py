"""Projections and persistent subscriptions as an operator sees them, and what an admin may
do about them: rebuild a projection (in a background thread, with progress), replay a
group's parked messages."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import streamsource as ss
from streamsource.console.errors import Conflict, NotFound, Unavailable
from streamsource.console.store_views import EventView, event_view
from streamsource.eventstore.projections import ProjectionRunner, RebuildProgress
from streamsource.eventstore.subscriptions.group_tables import InFlight, open_group_tables
from streamsource.eventstore.subscriptions.persistent import parked_stream

MAX_ROWS = 200
"""In-flight and parked messages shown per group page."""

# -- projections --------------------------------------------------------------------------


@dataclass
class Rebuild:
    """One rebuild started from the console."""

    projection: str
    started_at: str
    events: int = 0
    position: int = 0
    head: int = 0
    finished: bool = False
    generation: int | None = None
    error: str | None = None

    @property
    def percent(self) -> int:
        return 100 if self.finished or self.head == 0 else int(100 * self.position / self.head)


@dataclass(frozen=True)
class ProjectionRow:
    name: str
    generation: int
    checkpoint: int | None
    events: int
    lag_events: int
    lag_seconds: float
    last_event_at: str | None
    rebuilding: int | None
    rebuild_position: int | None
    last_error: str | None
    rebuild: Rebuild | None = None
    """The rebuild this console started, if any (running or finished)."""


class Projections:
    """The application's projections (``--projections``): status, and rebuilds."""

    def __init__(self, store: ss.EventStore, spec: str) -> None:
        from streamsource.cli.projections import load_projections
        from streamsource.cli.store import BadInput

        try:
            projections = load_projections(spec)
        except BadInput as exc:
            raise Unavailable(f"--projections: {exc}") from None
        self._runner = ProjectionRunner(store, projections)
        self._rebuilds: dict[str, Rebuild] = {}
        self._lock = threading.Lock()

    def rows(self) -> list[ProjectionRow]:
        # copies taken before the status is read: a copy that says finished was finished
        # (the new generation switched in) before the status below was read, so the row
        # never shows a finished rebuild beside the old generation
        with self._lock:
            rebuilds = {name: replace(run) for name, run in self._rebuilds.items()}
        return [
            ProjectionRow(
                name=s.name,
                generation=s.generation,
                checkpoint=s.position,
                events=s.events,
                lag_events=s.lag_events,
                lag_seconds=round(s.lag_seconds, 3),
                last_event_at=None if s.last_event_at is None else s.last_event_at.isoformat(),
                rebuilding=s.rebuilding,
                rebuild_position=s.rebuild_position,
                last_error=s.error,
                rebuild=rebuilds.get(s.name),
            )
            for s in self._runner.status()
        ]

    def rebuild(self, name: str) -> Rebuild:
        """Start rebuilding ``name`` in a thread; refuses a second one at once."""
        if name not in self._runner.projections:
            known = ", ".join(sorted(self._runner.projections)) or "none"
            raise NotFound(f"no projection named {name!r} (known: {known})")
        with self._lock:
            running = self._rebuilds.get(name)
            if running is not None and not running.finished:
                raise Conflict(f"{name} is being rebuilt already ({running.percent}%)")
            run = self._rebuilds[name] = Rebuild(name, datetime.now(UTC).isoformat())
        threading.Thread(
            target=self._rebuild, args=(run,), name=f"console-rebuild-{name}", daemon=True
        ).start()
        return run

    def _rebuild(self, run: Rebuild) -> None:
        def progress(report: RebuildProgress) -> None:
            run.events, run.position, run.head = report.events, report.position, report.head

        try:
            run.generation = self._runner.rebuild(run.projection, progress=progress)
            run.position = run.head = max(run.head, run.position)
        except Exception as exc:  # shown on the page: the thread has no one else to tell
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            run.finished = True

    def close(self) -> None:
        self._runner.close()


# -- persistent subscriptions -------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    name: str
    category: str
    checkpoint: int | None
    in_flight: int
    parked: int
    """Messages ever parked by the group."""
    waiting_replay: int
    """Parked messages not replayed yet."""


@dataclass(frozen=True)
class ParkedMessage:
    parked: EventView
    error: str
    attempts: int
    original_stream: str
    original_position: int
    replayed: bool


@dataclass(frozen=True)
class InFlightRow:
    position: int
    attempts: int
    replays: int
    consumer: str | None
    lease_until: str
    last_error: str | None


@dataclass(frozen=True)
class GroupDetail:
    group: GroupRow
    in_flight: list[InFlightRow]
    parked: list[ParkedMessage] = field(default_factory=list)


def groups(store: ss.EventStore) -> list[GroupRow]:
    tables = open_group_tables(store.recorder)
    try:
        overview = tables.groups()
    finally:
        tables.close()
    rows = []
    for g in overview:
        last = store.stream_version(parked_stream(g.name))
        parked = 0 if last is None else last + 1
        replayed = 0 if g.replayed is None else g.replayed + 1
        rows.append(
            GroupRow(g.name, g.category, g.checkpoint, g.in_flight, parked, parked - replayed)
        )
    return rows


def group_detail(store: ss.EventStore, name: str, *, mask: bool) -> GroupDetail:
    found = next((g for g in groups(store) if g.name == name), None)
    if found is None:
        raise NotFound(f"no persistent subscription group {name!r}")
    tables = open_group_tables(store.recorder)
    try:
        with tables.transaction(name):
            entries = tables.in_flight_entries(name, MAX_ROWS)
    finally:
        tables.close()
    replayed_below = found.parked - found.waiting_replay
    parked = [
        _parked(event, replayed=event.version < replayed_below, mask=mask)
        for event in store.read_stream(parked_stream(name), backwards=True, limit=MAX_ROWS)
    ]
    return GroupDetail(found, [_in_flight(e) for e in entries], parked)


def _parked(event: ss.RecordedEvent, *, replayed: bool, mask: bool) -> ParkedMessage:
    meta: dict[str, Any] = dict(event.metadata)
    return ParkedMessage(
        parked=event_view(event, mask=mask),
        error=str(meta.get("$error", "")),
        attempts=int(meta.get("$attempts", 0)),
        original_stream=str(meta.get("$original_stream", "")),
        original_position=int(meta.get("$original_position", 0)),
        replayed=replayed,
    )


def _in_flight(entry: InFlight) -> InFlightRow:
    until = datetime.fromtimestamp(entry.lease_until / 1e6, UTC).isoformat()
    return InFlightRow(
        entry.position, entry.attempts, entry.replays, entry.consumer, until, entry.last_error
    )


def replay_parked(store: ss.EventStore, name: str) -> int:
    """Send the group's parked messages not replayed yet through it again; how many."""
    found = next((g for g in groups(store) if g.name == name), None)
    if found is None:
        raise NotFound(f"no persistent subscription group {name!r}")
    consumer = f"console-{int(time.time())}"
    with ss.PersistentSubscription(
        store, name, category=found.category, consumer=consumer
    ) as subscription:
        return subscription.replay_parked()
