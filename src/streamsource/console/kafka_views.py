"""What the console shows of a Kafka cluster, read through confluent-kafka (AdminClient and
an assign-only Consumer that never commits), so it works against any Kafka, not only
streamsource's broker; partition sizes in bytes come from DescribeLogDirs (:mod:`.log_dirs`,
through kafka-python, which can send it).

The message browser reads from a partition and offset (or the first offset at a time) and
pages by offset; a search scans a bounded number of messages per request and returns the
offset to go on from, so a topic of ten million messages costs one page per click.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from streamsource.console.errors import (
    Conflict,
    ConsoleError,
    Forbidden,
    NotFound,
    Unavailable,
)
from streamsource.console.log_dirs import LogDirs, Sizes
from streamsource.console.store_views import MASKED
from streamsource.kafka.client_security import ClientSecurity

T = TypeVar("T")

TIMEOUT_S = 10.0
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
SEARCH_BUDGET = 10_000
"""Messages one search request may look at."""
MAX_SHOWN_BYTES = 64 * 1024
"""A longer key or value is cut for display (the page says so)."""
MAX_PARTITIONS_SHOWN = 1000


def _kafka() -> Any:
    from streamsource.extras import require

    kafka = require("confluent_kafka", "kafka", "the console's Kafka pages")
    require("confluent_kafka.admin", "kafka", "the console's Kafka pages")  # kafka.admin
    return kafka


class KafkaUnavailable(Unavailable):
    """The cluster did not answer (in time)."""


def _translated(what: str, call: Callable[[], T]) -> T:
    """Run a client call; its KafkaException becomes the console's error, named once."""
    kafka = _kafka()
    try:
        return call()
    except kafka.KafkaException as exc:
        error: Any = exc.args[0] if exc.args else None
        name = error.name() if hasattr(error, "name") else ""
        text = error.str() if hasattr(error, "str") else str(exc)
        if name in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION"):
            raise NotFound(f"{what}: {text}") from None
        if name in ("GROUP_ID_NOT_FOUND",):
            raise NotFound(f"{what}: {text}") from None
        if name in ("NON_EMPTY_GROUP", "UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS"):
            raise Conflict(f"{what}: {text}") from None
        if name in ("INVALID_REQUEST", "INVALID_CONFIG", "_INVALID_ARG", "OFFSET_OUT_OF_RANGE"):
            raise ConsoleError(f"{what}: {text}") from None
        raise KafkaUnavailable(f"{what}: {name or 'error'}: {text}") from None


# -- values as a person reads them --------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """Bytes shown as text: pretty JSON, UTF-8 text, or base64 for binary."""

    text: str | None
    format: Literal["json", "text", "base64", "null", "masked"]
    size: int
    truncated: bool = False


def show_bytes(raw: bytes | None, *, masked: bool = False) -> Shown:
    if raw is None:
        return Shown(None, "null", 0)
    if masked:
        return Shown(MASKED, "masked", len(raw))
    cut = raw[:MAX_SHOWN_BYTES]
    truncated = len(raw) > MAX_SHOWN_BYTES
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError:
        return Shown(base64.b64encode(cut).decode(), "base64", len(raw), truncated)
    if not truncated:
        try:
            value = json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(value, dict | list):
                pretty = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
                return Shown(pretty, "json", len(raw))
    return Shown(text, "text", len(raw), truncated)


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "replace")


def human_bytes(size: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None (the cluster does not say) -> ``unknown``."""
    if size is None:
        return "unknown"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {units[unit]}"


# -- topics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionRow:
    partition: int
    leader: int
    replicas: list[int]
    low: int
    high: int
    messages: int
    """high - low: what a consumer from the start can read (before compaction gaps)."""
    size_bytes: int | None
    """Bytes of the leader's copy on disk (DescribeLogDirs); None: the cluster does not say."""


@dataclass(frozen=True)
class TopicRow:
    name: str
    partitions: int
    messages: int
    internal: bool
    size_bytes: int | None
    """Bytes of one copy of every partition (the leaders'); None: unknown."""


@dataclass(frozen=True)
class TopicDetail:
    name: str
    partitions: list[PartitionRow]
    configs: dict[str, str | None]
    messages: int
    size_bytes: int | None


@dataclass
class KafkaClients:
    """One AdminClient and one browsing Consumer per console, shared by requests."""

    bootstrap: str
    settings: dict[str, str] = field(default_factory=dict)  # security.protocol, sasl.*, ssl.*
    _admin: Any = None
    _consumer: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        security = ClientSecurity.from_config(self.settings)
        self._log_dirs = LogDirs(self.bootstrap, security, TIMEOUT_S)  # connects when asked

    def admin(self) -> Any:
        if self._admin is None:
            self._admin = _kafka().admin.AdminClient(
                {**self.settings, "bootstrap.servers": self.bootstrap, "logger": _quiet()}
            )
        return self._admin

    def consumer(self) -> Any:
        """The browsing consumer; callers hold :attr:`lock` while they use it."""
        if self._consumer is None:
            self._consumer = _kafka().Consumer(
                {
                    **self.settings,
                    "bootstrap.servers": self.bootstrap,
                    "group.id": "streamsource-console-browser",  # never joined nor committed
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                    # a page needs 50 messages, not librdkafka's default prefetch of
                    # 100,000 (and 1 MiB per partition) decoded before the first is handed
                    "fetch.wait.max.ms": 10,
                    "fetch.error.backoff.ms": 20,
                    "max.partition.fetch.bytes": 256 * 1024,
                    "queued.min.messages": 1000,
                    # past that threshold librdkafka waits 1 s before fetching again, which
                    # a reassigned partition felt as a one-second page
                    "fetch.queue.backoff.ms": 1,
                    "logger": _quiet(),
                }
            )
        return self._consumer

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def sizes(self, wanted: dict[str, list[int]]) -> Sizes | None:
        """Bytes of each copy of the ``wanted`` partitions, per broker (None: unknown)."""
        return self._log_dirs.sizes(wanted)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
        self._log_dirs.close()


def _quiet() -> Any:
    import logging

    logger = logging.getLogger("streamsource.console.kafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def _metadata(clients: KafkaClients) -> Any:
    # every topic, never one by name: a metadata request naming a missing topic makes a
    # broker with auto-creation on create it, and a console must not create topics
    return _translated("listing topics", lambda: clients.admin().list_topics(timeout=TIMEOUT_S))


def _watermarks(clients: KafkaClients, topic: str, partition: int) -> tuple[int, int]:
    kafka = _kafka()
    with clients.lock:
        low, high = _translated(
            f"watermarks of {topic}[{partition}]",
            lambda: clients.consumer().get_watermark_offsets(
                kafka.TopicPartition(topic, partition), timeout=TIMEOUT_S, cached=False
            ),
        )
    return int(low), int(high)


def _leader_copy(sizes: Sizes | None, topic: str, partition: Any) -> int | None:
    """Bytes of the leader's copy of ``partition`` (confluent-kafka's PartitionMetadata)."""
    if sizes is None:
        return None
    return sizes.get((topic, partition.id), {}).get(partition.leader)


def _total(sizes: list[int | None]) -> int | None:
    return None if None in sizes else sum(s for s in sizes if s is not None)


def topics(clients: KafkaClients, *, search: str | None = None) -> list[TopicRow]:
    metadata = _metadata(clients)
    shown: dict[str, list[int]] = {}
    for name in sorted(metadata.topics):
        if search and search.casefold() not in name.casefold():
            continue
        described = metadata.topics[name]
        if described.error is None:
            shown[name] = sorted(described.partitions)[:MAX_PARTITIONS_SHOWN]
    sizes = clients.sizes(shown)
    rows = []
    for name, numbers in shown.items():
        described = metadata.topics[name]
        total = 0
        for partition in numbers:
            low, high = _watermarks(clients, name, partition)
            total += high - low
        size = _total([_leader_copy(sizes, name, described.partitions[n]) for n in numbers])
        rows.append(TopicRow(name, len(described.partitions), total, name.startswith("__"), size))
    return rows


def topic_detail(clients: KafkaClients, name: str) -> TopicDetail:
    metadata = _metadata(clients)
    described = metadata.topics.get(name)
    if described is None or described.error is not None:
        raise NotFound(f"no topic {name!r}")
    numbers = sorted(described.partitions)[:MAX_PARTITIONS_SHOWN]
    sizes = clients.sizes({name: numbers})
    partitions = []
    for number in numbers:
        p = described.partitions[number]
        low, high = _watermarks(clients, name, number)
        size = _leader_copy(sizes, name, p)
        partitions.append(
            PartitionRow(number, p.leader, list(p.replicas), low, high, high - low, size)
        )
    kafka = _kafka()
    resource = kafka.admin.ConfigResource(kafka.admin.ResourceType.TOPIC, name)
    futures = clients.admin().describe_configs([resource], request_timeout=TIMEOUT_S)
    entries = _translated(f"configs of {name}", lambda: futures[resource].result(TIMEOUT_S))
    configs = {key: entry.value for key, entry in sorted(entries.items())}
    return TopicDetail(
        name,
        partitions,
        configs,
        sum(p.messages for p in partitions),
        _total([p.size_bytes for p in partitions]),
    )


# -- the message browser ------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    partition: int
    offset: int
    timestamp: str | None
    key: Shown
    value: Shown
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class MessagesPage:
    topic: str
    partition: int
    low: int
    high: int
    start: int
    messages: list[MessageView]
    next_offset: int | None
    """Where the next page (or the rest of a search) starts; None at the end of the log."""
    scanned: int
    """Messages looked at (a search looks at more than it shows)."""
    search: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Search:
    """What a message must contain (all given parts must match, case-insensitively)."""

    key: str | None = None
    value: str | None = None
    header: str | None = None
    """``name`` (the header is there) or ``name=text`` (its value contains text)."""

    @property
    def active(self) -> bool:
        return bool(self.key or self.value or self.header)

    def matches(self, key: bytes | None, value: bytes | None, headers: list[Any]) -> bool:
        if self.key and self.key.casefold() not in _text(key).casefold():
            return False
        if self.value and self.value.casefold() not in _text(value).casefold():
            return False
        if self.header:
            name, has_text, wanted = self.header.partition("=")
            found = [_text(v) for k, v in headers if k.casefold() == name.strip().casefold()]
            if not found:
                return False
            if has_text and not any(wanted.casefold() in v.casefold() for v in found):
                return False
        return True


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def messages(
    clients: KafkaClients,
    topic: str,
    partition: int,
    *,
    offset: int | None = None,
    timestamp: datetime | None = None,
    limit: int = PAGE_SIZE,
    search: Search = Search(),
    mask: bool = False,
) -> MessagesPage:
    """A page of messages from ``offset`` (or the first at ``timestamp``; default: the last
    ``limit`` messages), or the matches of ``search`` among the next SEARCH_BUDGET."""
    if mask and search.value:
        raise Forbidden("values are masked for viewers: searching them is not allowed")
    kafka = _kafka()
    low, high = _watermarks(clients, topic, partition)
    if timestamp is not None:
        wanted = kafka.TopicPartition(topic, partition, int(timestamp.timestamp() * 1000))
        with clients.lock:
            (found,) = _translated(
                f"offset of {topic}[{partition}] at {timestamp.isoformat()}",
                lambda: clients.consumer().offsets_for_times([wanted], timeout=TIMEOUT_S),
            )
        start = high if found.offset < 0 else found.offset
    elif offset is None:
        start = max(low, high - limit)
    else:
        start = min(max(offset, low), high)
    budget = SEARCH_BUDGET if search.active else limit
    shown: list[MessageView] = []
    scanned = 0
    position = start
    with clients.lock:
        consumer = clients.consumer()
        _translated(
            f"reading {topic}[{partition}]",
            lambda: consumer.assign([kafka.TopicPartition(topic, partition, start)]),
        )
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while position < high and scanned < budget and len(shown) < limit:
                if time.monotonic() > deadline:
                    break  # the page holds what came; next_offset goes on from there
                batch = consumer.consume(min(500, budget - scanned), timeout=0.1)
                for message in batch:
                    error = message.error()
                    if error is not None:
                        if error.code() == kafka.KafkaError._PARTITION_EOF:
                            position = high
                            break
                        raise KafkaUnavailable(f"reading {topic}[{partition}]: {error.str()}")
                    scanned += 1
                    position = message.offset() + 1
                    headers = message.headers() or []
                    if search.active and not search.matches(
                        message.key(), message.value(), headers
                    ):
                        continue
                    kind, ms = message.timestamp()
                    shown.append(
                        MessageView(
                            partition=partition,
                            offset=message.offset(),
                            timestamp=None if kind == kafka.TIMESTAMP_NOT_AVAILABLE else _when(ms),
                            key=show_bytes(message.key()),
                            value=show_bytes(message.value(), masked=mask),
                            headers=[(k, _text(v)) for k, v in headers],
                        )
                    )
                    if len(shown) == limit or scanned == budget:
                        break
        finally:
            consumer.unassign()
    return MessagesPage(
        topic=topic,
        partition=partition,
        low=low,
        high=high,
        start=start,
        messages=shown,
        next_offset=position if position < high else None,
        scanned=scanned,
        search={k: v for k, v in vars(search).items() if v},
    )


# -- consumer groups ----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    group: str
    state: str
    type: str
    simple: bool


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    client_id: str
    host: str
    assignment: list[str]
    """``topic[partition]`` of each assigned partition."""


@dataclass(frozen=True)
class LagRow:
    topic: str
    partition: int
    committed: int | None
    high: int
    lag: int | None


@dataclass(frozen=True)
class GroupDetail:
    group: str
    state: str
    protocol: str
    members: list[MemberRow]
    offsets: list[LagRow]

    @property
    def total_lag(self) -> int:
        return sum(row.lag or 0 for row in self.offsets)


def groups(clients: KafkaClients) -> list[GroupRow]:
    future = clients.admin().list_consumer_groups(request_timeout=TIMEOUT_S)
    listed = _translated("listing consumer groups", lambda: future.result(TIMEOUT_S))
    rows = []
    for group in listed.valid:
        state = getattr(group.state, "name", str(group.state))
        kind = getattr(getattr(group, "type", None), "name", "")
        rows.append(GroupRow(group.group_id, state, kind, bool(group.is_simple_consumer_group)))
    return sorted(rows, key=lambda r: r.group)


def _describe(clients: KafkaClients, group: str) -> Any:
    futures = clients.admin().describe_consumer_groups([group], request_timeout=TIMEOUT_S)
    return _translated(f"describing group {group}", lambda: futures[group].result(TIMEOUT_S))


def _committed(clients: KafkaClients, group: str) -> list[Any]:
    kafka = _kafka()
    request = kafka.ConsumerGroupTopicPartitions(group)
    futures = clients.admin().list_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
    answer = _translated(f"offsets of group {group}", lambda: futures[group].result(TIMEOUT_S))
    return list(answer.topic_partitions or [])


def group_detail(clients: KafkaClients, group: str) -> GroupDetail:
    described = _describe(clients, group)
    state = getattr(described.state, "name", str(described.state))
    members = [
        MemberRow(
            m.member_id,
            m.client_id,
            m.host,
            [
                f"{tp.topic}[{tp.partition}]"
                for tp in (m.assignment.topic_partitions if m.assignment else [])
            ],
        )
        for m in described.members
    ]
    offsets = []
    for tp in sorted(_committed(clients, group), key=lambda tp: (tp.topic, tp.partition)):
        _low, high = _watermarks(clients, tp.topic, tp.partition)
        committed = tp.offset if tp.offset >= 0 else None
        offsets.append(
            LagRow(
                tp.topic,
                tp.partition,
                committed,
                high,
                None if committed is None else max(0, high - committed),
            )
        )
    protocol = getattr(described, "partition_assignor", "") or ""
    return GroupDetail(group, state, protocol, members, offsets)


ResetTo = Literal["earliest", "latest", "timestamp", "offset"]


@dataclass(frozen=True)
class ResetResult:
    group: str
    offsets: list[LagRow]


def reset_offsets(
    clients: KafkaClients,
    group: str,
    topic: str,
    to: ResetTo,
    *,
    partition: int | None = None,
    offset: int | None = None,
    timestamp: datetime | None = None,
) -> ResetResult:
    """Move an empty group's committed offsets for ``topic`` (one partition or all)."""
    kafka = _kafka()
    described = _describe(clients, group)
    state = getattr(described.state, "name", str(described.state))
    if described.members or state not in ("EMPTY", "DEAD", "UNKNOWN"):
        raise Conflict(
            f"group {group} is {state} with {len(described.members)} member(s): stop its"
            " consumers first (offsets of a group in use cannot be reset)"
        )
    metadata = _metadata(clients)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise NotFound(f"no topic {topic!r}")
    numbers = sorted(found.partitions)
    if partition is not None:
        if partition not in found.partitions:
            raise NotFound(f"{topic} has no partition {partition} (0..{len(numbers) - 1})")
        numbers = [partition]
    targets = []
    for number in numbers:
        low, high = _watermarks(clients, topic, number)
        if to == "earliest":
            target = low
        elif to == "latest":
            target = high
        elif to == "offset":
            if offset is None:
                raise ConsoleError("reset to an offset needs offset=N")
            target = min(max(offset, low), high)
        else:
            if timestamp is None:
                raise ConsoleError("reset to a timestamp needs timestamp=ISO-TIME")
            wanted = kafka.TopicPartition(topic, number, int(timestamp.timestamp() * 1000))
            with clients.lock:
                (at,) = _translated(
                    f"offset of {topic}[{number}] at {timestamp.isoformat()}",
                    lambda w=wanted: clients.consumer().offsets_for_times([w], timeout=TIMEOUT_S),  # type: ignore[misc]
                )
            target = high if at.offset < 0 else at.offset
        targets.append(kafka.TopicPartition(topic, number, target))
    request = kafka.ConsumerGroupTopicPartitions(group, targets)
    futures = clients.admin().alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
    _translated(f"resetting offsets of {group}", lambda: futures[group].result(TIMEOUT_S))
    detail = group_detail(clients, group)
    return ResetResult(group, [row for row in detail.offsets if row.topic == topic])
