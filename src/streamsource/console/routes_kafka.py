"""The Kafka pages and their JSON twins: topics, the message browser, consumer groups with
lag per partition, and the admin's offset reset for an empty group."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from streamsource.console import kafka_views as kv
from streamsource.console.app import console_of, principal_of, render, templates
from streamsource.console.auth import require_admin
from streamsource.console.errors import Unavailable
from streamsource.console.routes_store import parse_time

router = APIRouter()
templates.env.filters["bytes"] = kv.human_bytes

TopicName = Annotated[str, Query(min_length=1, max_length=249)]
GroupId = Annotated[str, Query(min_length=1, max_length=1000)]
Partition = Annotated[int, Query(ge=0, le=1_000_000)]
Offset = Annotated[int | None, Query(ge=0, le=2**63 - 1)]
Text = Annotated[str | None, Query(max_length=1000)]
Limit = Annotated[int, Query(ge=1, le=kv.MAX_PAGE_SIZE)]


def clients(request: Request) -> kv.KafkaClients:
    console = console_of(request)
    bootstrap = console.config.bootstrap
    if bootstrap is None:
        raise Unavailable("no Kafka cluster: start the console with --bootstrap HOST:PORT")
    found = console.extensions.get("kafka")
    if found is None:
        found = console.extensions["kafka"] = kv.KafkaClients(
            bootstrap, dict(console.config.kafka_config)
        )
    assert isinstance(found, kv.KafkaClients)
    return found


def _mask(request: Request) -> bool:
    return console_of(request).masks(principal_of(request))


@router.get("/api/kafka/topics", tags=["kafka"])
def api_topics(request: Request, search: Text = None) -> list[kv.TopicRow]:
    """Topics with their partition count, messages (high - low watermark, summed) and size
    in bytes (the leader's copy of each partition, from DescribeLogDirs; null when the
    cluster does not answer it)."""
    return kv.topics(clients(request), search=search)


@router.get("/kafka/topics", include_in_schema=False)
def topics(request: Request, search: Text = None) -> HTMLResponse:
    return render(request, "kafka_topics.html", topics=api_topics(request, search), search=search)


@router.get("/api/kafka/topic", tags=["kafka"])
def api_topic(request: Request, name: TopicName) -> kv.TopicDetail:
    """A topic's partitions (leader, replicas, watermarks, bytes of the leader's copy;
    null when unknown) and configs."""
    return kv.topic_detail(clients(request), name)


@router.get("/kafka/topic", include_in_schema=False)
def topic(request: Request, name: TopicName) -> HTMLResponse:
    return render(request, "kafka_topic.html", topic=api_topic(request, name))


@router.get("/api/kafka/messages", tags=["kafka"])
def api_messages(
    request: Request,
    topic: TopicName,
    partition: Partition = 0,
    offset: Offset = None,
    time: Annotated[str | None, Query(max_length=64)] = None,
    key: Text = None,
    value: Text = None,
    header: Text = None,
    limit: Limit = kv.PAGE_SIZE,
) -> kv.MessagesPage:
    """Messages of one partition from ``offset`` or the first at ``time`` (default: the
    newest page); with ``key``/``value``/``header`` (``name`` or ``name=text``) only the
    matches among the next messages scanned. ``next_offset`` goes on."""
    search = kv.Search(key=key or None, value=value or None, header=header or None)
    return kv.messages(
        clients(request),
        topic,
        partition,
        offset=offset,
        timestamp=parse_time(time),
        limit=limit,
        search=search,
        mask=_mask(request),
    )


@router.get("/kafka/messages", include_in_schema=False)
def messages(
    request: Request,
    topic: TopicName,
    partition: Partition = 0,
    offset: Offset = None,
    time: Annotated[str | None, Query(max_length=64)] = None,
    key: Text = None,
    value: Text = None,
    header: Text = None,
) -> HTMLResponse:
    page = api_messages(request, topic, partition, offset, time, key, value, header)
    detail = kv.topic_detail(clients(request), topic)
    return render(
        request,
        "kafka_messages.html",
        page=page,
        partitions=[p.partition for p in detail.partitions],
        time=time or "",
    )


@router.get("/api/kafka/groups", tags=["kafka"])
def api_groups(request: Request) -> list[kv.GroupRow]:
    """Consumer groups and their state."""
    return kv.groups(clients(request))


@router.get("/kafka/groups", include_in_schema=False)
def groups(request: Request) -> HTMLResponse:
    return render(request, "kafka_groups.html", groups=api_groups(request))


@router.get("/api/kafka/group", tags=["kafka"])
def api_group(request: Request, id: GroupId) -> kv.GroupDetail:
    """A group's members and assignments, committed offsets and lag per partition."""
    return kv.group_detail(clients(request), id)


@router.get("/kafka/group", include_in_schema=False)
def group(request: Request, id: GroupId, reset: str | None = None) -> HTMLResponse:
    return render(request, "kafka_group.html", group=api_group(request, id), reset=reset)


class OffsetReset(BaseModel):
    topic: str = Field(min_length=1, max_length=249)
    to: Literal["earliest", "latest", "timestamp", "offset"]
    partition: int | None = Field(default=None, ge=0, le=1_000_000)
    """One partition; None: every partition of the topic."""
    offset: int | None = Field(default=None, ge=0, le=2**63 - 1)
    timestamp: str | None = Field(default=None, max_length=64)


@router.post("/api/kafka/group/reset", tags=["kafka"])
def api_reset(request: Request, id: GroupId, reset: OffsetReset) -> kv.ResetResult:
    """Reset an empty group's committed offsets of one topic (admin): to the earliest or
    latest offset, the first offset at a time, or an offset."""
    require_admin(principal_of(request))
    return kv.reset_offsets(
        clients(request),
        id,
        reset.topic,
        reset.to,
        partition=reset.partition,
        offset=reset.offset,
        timestamp=parse_time(reset.timestamp),
    )


@router.post("/kafka/group/reset", include_in_schema=False)
def reset(
    request: Request,
    id: GroupId,
    topic: Annotated[str, Form(min_length=1, max_length=249)],
    to: Annotated[Literal["earliest", "latest", "timestamp", "offset"], Form()],
    partition: Annotated[str, Form(max_length=12)] = "",
    offset: Annotated[str, Form(max_length=20)] = "",
    timestamp: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    form = OffsetReset(
        topic=topic,
        to=to,
        partition=_number(partition, "partition"),
        offset=_number(offset, "offset"),
        timestamp=timestamp or None,
    )
    api_reset(request, id, form)
    return group(request, id, reset=f"{topic} reset to {to}")


def _number(text: str, what: str) -> int | None:
    from streamsource.console.errors import ConsoleError

    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise ConsoleError(f"{what} must be a number >= 0, not {text!r}")
    return int(text)
