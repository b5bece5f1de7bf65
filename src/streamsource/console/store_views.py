"""What the console shows of an event store: pages of plain data, shared by HTML and JSON.

Every listing is keyset-paginated (a stream page starts at a version, a log page before a
position, a stream listing after a name), so a page costs the same on the millionth event as
on the first. Searches the store has no index for (stream names by substring, events by
correlation id) scan a bounded number of rows per request and hand back a cursor to go on
from, rather than an unbounded scan behind one click.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import streamsource as ss
from streamsource.eventstore.events import CAUSATION_ID, CORRELATION_ID

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
SCAN_BUDGET = 20_000
"""Rows one request may look at for a search without an index."""

MASKED = "(hidden: values are masked for viewers)"


@dataclass(frozen=True)
class EventView:
    """One recorded event as the console shows it."""

    id: str
    stream: str
    version: int
    position: int
    type: str
    recorded_at: str
    data: Any
    metadata: dict[str, Any]
    correlation_id: str | None
    causation_id: str | None
    masked: bool = False

    @property
    def data_text(self) -> str:
        return MASKED if self.masked else pretty(self.data)

    @property
    def metadata_text(self) -> str:
        return pretty(self.metadata)


def pretty(value: Any) -> str:
    """JSON, indented for reading."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def event_view(event: ss.RecordedEvent, *, mask: bool = False) -> EventView:
    metadata = dict(event.metadata)
    correlation = metadata.get(CORRELATION_ID)
    causation = metadata.get(CAUSATION_ID)
    return EventView(
        id=str(event.id),
        stream=event.stream,
        version=event.version,
        position=event.position,
        type=event.type,
        recorded_at=event.recorded_at.isoformat(),
        data=None if mask else event.data,
        metadata=metadata,
        correlation_id=None if correlation is None else str(correlation),
        causation_id=None if causation is None else str(causation),
        masked=mask,
    )


def category_of(stream: str) -> str:
    """The category of a stream: the part before the first ``-`` (the whole name if none)."""
    return stream.partition("-")[0]


# -- streams ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRow:
    stream: str
    category: str
    version: int | None
    events: int
    last_event_at: str | None
    deleted: bool


@dataclass(frozen=True)
class StreamsPage:
    streams: list[StreamRow]
    category: str | None
    search: str | None
    next_after: str | None
    """The ``after`` of the next page; None on the last page."""
    scanned_to: str | None = None
    """When the scan budget ran out before a page filled: where the next request goes on."""


def streams_page(
    store: ss.EventStore,
    *,
    after: str | None = None,
    category: str | None = None,
    search: str | None = None,
    limit: int = PAGE_SIZE,
) -> StreamsPage:
    """Streams in name order after ``after``, of one category and/or containing ``search``."""
    rows: list[StreamRow] = []
    needle = (search or "").casefold()
    scanned = 0
    last_seen = after
    for summary in store.list_streams(after=after):
        name = summary.stream
        if scanned == SCAN_BUDGET:
            return StreamsPage(rows, category, search, None, scanned_to=last_seen)
        scanned += 1
        if (category and category_of(name) != category) or (
            needle and needle not in name.casefold()
        ):
            last_seen = name
            continue
        if len(rows) == limit:
            return StreamsPage(rows, category, search, rows[-1].stream)
        rows.append(_stream_row(store, summary))
        last_seen = name
    return StreamsPage(rows, category, search, None)


def _stream_row(store: ss.EventStore, summary: ss.StreamSummary) -> StreamRow:
    last_at = None
    if not summary.hard_deleted and summary.version is not None:
        for event in store.read_stream(summary.stream, backwards=True, limit=1):
            last_at = event.recorded_at.isoformat()
    return StreamRow(
        stream=summary.stream,
        category=category_of(summary.stream),
        version=summary.version,
        events=0 if summary.version is None else summary.version + 1,
        last_event_at=last_at,
        deleted=summary.hard_deleted,
    )


# -- one stream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamEventsPage:
    stream: str
    head: int | None
    """The stream's last version (None: no events)."""
    events: list[EventView]
    backwards: bool
    next_from: int | None
    """The ``from_version`` of the next page in the same direction; None on the last page."""
    as_of_version: int | None = None
    as_of_time: str | None = None


def stream_events_page(
    store: ss.EventStore,
    stream: str,
    *,
    from_version: int | None = None,
    backwards: bool = True,
    limit: int = PAGE_SIZE,
    as_of_version: int | None = None,
    as_of_time: datetime | None = None,
    mask: bool = False,
) -> StreamEventsPage:
    """A page of the stream's events (newest first by default), as of a version or time."""
    head = store.stream_version(stream)
    found = list(
        store.read_stream(
            stream,
            from_version=from_version,
            backwards=backwards,
            limit=limit + 1,
            as_of_version=as_of_version,
            as_of_time=as_of_time,
        )
    )
    next_from = None
    if len(found) > limit:
        next_from = found[limit].version
        found = found[:limit]
    return StreamEventsPage(
        stream=stream,
        head=head,
        events=[event_view(e, mask=mask) for e in found],
        backwards=backwards,
        next_from=next_from,
        as_of_version=as_of_version,
        as_of_time=None if as_of_time is None else as_of_time.isoformat(),
    )


# -- the global log -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogPage:
    events: list[EventView]
    head: int
    category: str | None
    type: str | None
    next_before: int | None
    """The ``before`` of the next (older) page; None on the last page."""


def log_page(
    store: ss.EventStore,
    *,
    before: int | None = None,
    category: str | None = None,
    type: str | None = None,
    limit: int = PAGE_SIZE,
    mask: bool = False,
) -> LogPage:
    """The newest events of the global log before position ``before``, newest first."""
    found = list(
        store.read_all(
            before=before,
            backwards=True,
            limit=limit + 1,
            category=category or None,
            types=[type] if type else None,
        )
    )
    next_before = None
    if len(found) > limit:
        found = found[:limit]
        next_before = found[-1].position
    return LogPage(
        events=[event_view(e, mask=mask) for e in found],
        head=store.head_position(),
        category=category or None,
        type=type or None,
        next_before=next_before,
    )


# -- following correlation and causation --------------------------------------------------


@dataclass(frozen=True)
class TraceSearch:
    """Events of one correlation (or the one event with an id), found in a bounded scan."""

    id: str
    events: list[EventView]
    scanned_from: int
    """The scan covered positions after this one ..."""
    scanned_to: int
    """... up to and including this one."""
    next_after: int | None
    """Where to go on scanning; None when the scan reached the head of the log."""
    backwards: bool = field(default=False)


def find_correlated(
    store: ss.EventStore,
    correlation_id: str,
    *,
    after: int = 0,
    budget: int = SCAN_BUDGET,
    mask: bool = False,
) -> TraceSearch:
    """Events whose correlation id (or own id: the start of a chain) is ``correlation_id``."""
    matches: list[EventView] = []
    last = after
    count = 0
    for event in store.read_all(after=after, limit=budget):
        count += 1
        last = event.position
        own = str(event.id) == correlation_id
        if own or str(event.metadata.get(CORRELATION_ID, "")) == correlation_id:
            matches.append(event_view(event, mask=mask))
    reached_head = count < budget or last >= store.head_position()
    return TraceSearch(
        correlation_id, matches, after, last, None if reached_head else last, backwards=False
    )


def find_event(
    store: ss.EventStore,
    event_id: str,
    *,
    before: int | None = None,
    budget: int = SCAN_BUDGET,
    mask: bool = False,
) -> TraceSearch:
    """The event with id ``event_id``, looked for newest first before ``before`` (a cause
    precedes its effects, so a causation link scans back from the event that names it)."""
    start = store.head_position() + 1 if before is None else before
    last = start
    count = 0
    for event in store.read_all(before=start, backwards=True, limit=budget):
        count += 1
        last = event.position
        if str(event.id) == event_id:
            return TraceSearch(event_id, [event_view(event, mask=mask)], last, start, None, True)
    exhausted = count < budget or last <= 1
    return TraceSearch(event_id, [], last, start, None if exhausted else last, backwards=True)
