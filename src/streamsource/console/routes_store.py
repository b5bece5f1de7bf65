"""The event store's pages and their JSON twins: streams, a stream's events, time travel,
the global log (live over Server-Sent Events) and correlation/causation links."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

import streamsource as ss
from streamsource.console import store_views as views
from streamsource.console.aggregates import AggregateState, state_as_of
from streamsource.console.app import console_of, principal_of, render, templates
from streamsource.console.errors import ConsoleError, Unavailable

router = APIRouter()

MAX_LIVE_STREAMS = 32
"""Live log connections served at once (each holds a worker thread while it waits)."""

Limit = Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE)]
Name = Annotated[str, Query(min_length=1, max_length=1000)]
OptionalName = Annotated[str | None, Query(max_length=1000)]
Position = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


class BadTime(ConsoleError):
    """A time that is not ISO 8601."""


def parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 time; one without an offset (a browser's datetime-local) is UTC."""
    if text is None or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(
            f"invalid time {text!r}: use ISO 8601, such as 2024-05-01T12:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _mask(request: Request) -> bool:
    return console_of(request).masks(principal_of(request))


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    config = console_of(request).config
    target = "/streams" if config.store_url or not config.bootstrap else "/kafka/topics"
    return RedirectResponse(target, status_code=303)


# -- streams ------------------------------------------------------------------------------


@router.get("/api/streams", tags=["store"])
def api_streams(
    request: Request,
    after: OptionalName = None,
    category: OptionalName = None,
    search: OptionalName = None,
    limit: Limit = views.PAGE_SIZE,
) -> views.StreamsPage:
    """Streams in name order with their event count and last event time; ``next_after``
    continues the listing, ``scanned_to`` a search that stopped at its scan budget."""
    store = console_of(request).store
    return views.streams_page(
        store, after=after or None, category=category or None, search=search or None, limit=limit
    )


@router.get("/streams", include_in_schema=False)
def streams(
    request: Request,
    after: OptionalName = None,
    category: OptionalName = None,
    search: OptionalName = None,
    limit: Limit = views.PAGE_SIZE,
) -> HTMLResponse:
    page = api_streams(request, after, category, search, limit)
    stats = console_of(request).store.stats()
    return render(request, "streams.html", page=page, stats=stats)


@router.get("/api/stream", tags=["store"])
def api_stream(
    request: Request,
    name: Name,
    from_version: Position = None,
    direction: Literal["backwards", "forwards"] = "backwards",
    limit: Limit = views.PAGE_SIZE,
) -> views.StreamEventsPage:
    """A page of one stream's events, newest first unless ``direction=forwards``;
    ``next_from`` is the ``from_version`` of the next page."""
    return views.stream_events_page(
        console_of(request).store,
        name,
        from_version=from_version,
        backwards=direction == "backwards",
        limit=limit,
        mask=_mask(request),
    )


@router.get("/stream", include_in_schema=False)
def stream(
    request: Request,
    name: Name,
    from_version: Position = None,
    direction: Literal["backwards", "forwards"] = "backwards",
    limit: Limit = views.PAGE_SIZE,
) -> HTMLResponse:
    page = api_stream(request, name, from_version, direction, limit)
    has_aggregate = views.category_of(name) in console_of(request).aggregates
    return render(request, "stream.html", page=page, has_aggregate=has_aggregate)


# -- time travel --------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeTravel:
    stream: str
    head: int | None
    as_of_version: int | None
    as_of_time: str | None
    events: views.StreamEventsPage
    """The newest events as of then, newest first."""
    aggregate: AggregateState | None
    """The registered aggregate's state then (None: no aggregate type for this category)."""
    aggregate_error: str | None


@router.get("/api/time-travel", tags=["store"])
def api_time_travel(
    request: Request,
    name: Name,
    version: Position = None,
    time: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = views.PAGE_SIZE,
) -> TimeTravel:
    """The stream, and its aggregate's state when its type is registered (``--aggregate``),
    as of a version and/or a time."""
    console = console_of(request)
    store = console.store
    when = parse_time(time)
    events = views.stream_events_page(
        store, name, limit=limit, as_of_version=version, as_of_time=when, mask=_mask(request)
    )
    aggregate = None
    error = None
    cls = console.aggregates.get(views.category_of(name))
    if cls is not None and events.events:
        try:
            aggregate = state_as_of(store, cls, name, as_of_version=version, as_of_time=when)
        except ss.StreamsourceError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if aggregate is not None and _mask(request):
            aggregate = AggregateState(aggregate.type, aggregate.id, aggregate.version, {})
    return TimeTravel(
        stream=name,
        head=events.head,
        as_of_version=version,
        as_of_time=None if when is None else when.isoformat(),
        events=events,
        aggregate=aggregate,
        aggregate_error=error,
    )


@router.get("/time-travel", include_in_schema=False)
def time_travel(
    request: Request,
    name: Name,
    version: Position = None,
    time: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    travel = api_time_travel(request, name, version, time)
    shown = travel.events.events[0].version if travel.events.events else None
    return render(request, "time_travel.html", travel=travel, shown_version=shown, time=time)


# -- the global log -----------------------------------------------------------------------


@router.get("/api/log", tags=["store"])
def api_log(
    request: Request,
    before: Position = None,
    category: OptionalName = None,
    type: OptionalName = None,
    limit: Limit = views.PAGE_SIZE,
) -> views.LogPage:
    """The global log, newest first, before position ``before``; by category and/or type."""
    return views.log_page(
        console_of(request).store,
        before=before,
        category=category,
        type=type,
        limit=limit,
        mask=_mask(request),
    )


@router.get("/log", include_in_schema=False)
def log(
    request: Request,
    before: Position = None,
    category: OptionalName = None,
    type: OptionalName = None,
) -> HTMLResponse:
    page = api_log(request, before, category, type)
    return render(request, "log.html", page=page)


_LAST_EVENT_ID = re.compile(r"[0-9]{1,19}")


@router.get(
    "/api/log/live",
    tags=["store"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def api_log_live(
    request: Request,
    after: Position = None,
    category: OptionalName = None,
    type: OptionalName = None,
    format: Literal["json", "html"] = "json",
) -> StreamingResponse:
    """Server-Sent Events: each new event of the log (after ``after``, default the head) as
    ``event: event`` with the event as JSON (``format=html``: a table row, for the page)."""
    console = console_of(request)
    store = console.store
    mask = _mask(request)
    resumed = request.headers.get("Last-Event-ID", "")
    if _LAST_EVENT_ID.fullmatch(resumed):
        after = int(resumed)
    if after is None:
        after = await anyio.to_thread.run_sync(store.head_position)
    live = console.extensions.setdefault("live_streams", _Counter())
    if live.value >= MAX_LIVE_STREAMS:
        raise Unavailable(f"{MAX_LIVE_STREAMS} live logs are open already; try again later")
    subscription = ss.subscribe(
        store, after=after, category=category or None, types=[type] if type else None
    )
    row = templates.get_template("log_row.html")
    live.value += 1

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                batch = await anyio.to_thread.run_sync(
                    functools.partial(subscription.next_batch, 100, timeout=1.0)
                )
                if not batch:
                    yield ": waiting\n\n"
                    continue
                for event in batch:
                    view = views.event_view(event, mask=mask)
                    text = row.render(e=view) if format == "html" else json.dumps(asdict(view))
                    data = "".join(f"data: {line}\n" for line in text.split("\n"))
                    yield f"id: {event.position}\nevent: event\n{data}\n"
        finally:
            live.value -= 1
            subscription.close()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


class _Counter:
    def __init__(self) -> None:
        self.value = 0


# -- correlation and causation ------------------------------------------------------------


@router.get("/api/correlation", tags=["store"])
def api_correlation(
    request: Request, id: Annotated[str, Query(min_length=1, max_length=200)], after: int = 0
) -> views.TraceSearch:
    """Events of one correlation, scanning the log forwards from ``after`` (a bounded number
    of events per request; ``next_after`` goes on)."""
    if after < 0:
        raise ConsoleError("after must be >= 0")
    return views.find_correlated(console_of(request).store, id, after=after, mask=_mask(request))


@router.get("/correlation", include_in_schema=False)
def correlation(
    request: Request, id: Annotated[str, Query(min_length=1, max_length=200)], after: int = 0
) -> HTMLResponse:
    found = api_correlation(request, id, after)
    return render(request, "trace.html", found=found, what="correlation")


@router.get("/api/event", tags=["store"])
def api_event(
    request: Request,
    id: Annotated[str, Query(min_length=1, max_length=200)],
    before: Position = None,
) -> views.TraceSearch:
    """The event with this id, looked for newest first before position ``before`` (a cause
    comes before its effects); ``next_after`` is the ``before`` to go on from."""
    return views.find_event(console_of(request).store, id, before=before, mask=_mask(request))


@router.get("/event", include_in_schema=False)
def event(
    request: Request,
    id: Annotated[str, Query(min_length=1, max_length=200)],
    before: Position = None,
) -> HTMLResponse:
    found = api_event(request, id, before)
    return render(request, "trace.html", found=found, what="event")
