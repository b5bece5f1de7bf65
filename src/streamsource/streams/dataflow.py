"""The dataflow: nodes that take a batch of records and push batches to their children.

A record is a tuple ``(key, value, timestamp_ms, offset)``; ``offset`` is the position of
the source record it came from (a Kafka offset, an event's global position), which sinks use
as an idempotency key. Records of one source partition travel together, as one list, with
a :class:`Context` that names the partition, so an operator works a whole batch per call
(list comprehensions, no per-record call chain) and stateful ones find that partition's
state store through the context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from streamsource.streams.errors import ProcessingFailed
from streamsource.streams.state import StoreFile

Record = tuple[Any, Any, int, int]


class Context(Protocol):
    """What operators see of the partition they process (the app implements it)."""

    topic: str
    partition: int
    node_state: dict[int, Any]  # per-operator scratch state for this partition, by node id

    def store(self, name: str) -> StoreFile: ...

    def produce(
        self, topic: str, value: bytes | None, key: bytes | None, timestamp: int
    ) -> None: ...


class Node:
    """One operation; ``push`` hands its output to every child (branches share records)."""

    label = "node"

    def __init__(self) -> None:
        self.children: list[Node] = []

    def process(self, records: list[Record], ctx: Context) -> None:
        self.push(records, ctx)

    def push(self, records: list[Record], ctx: Context) -> None:
        if records:
            for child in self.children:
                child.process(records, ctx)

    def failed(self, exc: Exception) -> ProcessingFailed:
        return ProcessingFailed(f"{self.label} raised {exc!r}; nothing of the batch was committed")

    def stores(self) -> list[str]:
        """Names of the state stores this node keeps."""
        return []


class Map(Node):
    label = "map"

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], ctx: Context) -> None:
        fn = self.fn
        try:
            out = [(k, fn(v), t, o) for k, v, t, o in records]
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(out, ctx)


class Filter(Node):
    label = "filter"

    def __init__(self, fn: Callable[[Any], bool]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], ctx: Context) -> None:
        fn = self.fn
        try:
            out = [r for r in records if fn(r[1])]
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(out, ctx)


class FlatMap(Node):
    label = "flat_map"

    def __init__(self, fn: Callable[[Any], Iterable[Any]]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], ctx: Context) -> None:
        fn = self.fn
        try:
            out = [(k, x, t, o) for k, v, t, o in records for x in fn(v)]
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(out, ctx)


class Update(Node):
    """Calls ``fn(value)`` (``fn(key, value)`` with ``with_key``) for its side effect and
    passes records on unchanged."""

    label = "update"

    def __init__(self, fn: Callable[..., Any], with_key: bool = False) -> None:
        super().__init__()
        self.fn = fn
        self.with_key = with_key

    def process(self, records: list[Record], ctx: Context) -> None:
        fn = self.fn
        try:
            if self.with_key:
                for record in records:
                    fn(record[0], record[1])
            else:
                for record in records:
                    fn(record[1])
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(records, ctx)


class Rekey(Node):
    label = "key_by"

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], ctx: Context) -> None:
        fn = self.fn
        try:
            out = [(fn(v), v, t, o) for _k, v, t, o in records]
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(out, ctx)


class Branch(Node):
    """Sends each record to the first child whose predicate holds (the last: the rest)."""

    label = "branch"

    def __init__(self, predicates: list[Callable[[Any], bool]]) -> None:
        super().__init__()
        self.predicates = predicates
        self.outputs = [Node() for _ in range(len(predicates) + 1)]

    def process(self, records: list[Record], ctx: Context) -> None:
        buckets: list[list[Record]] = [[] for _ in self.outputs]
        predicates = list(enumerate(self.predicates))
        rest = buckets[-1]
        try:
            for record in records:
                value = record[1]
                for n, predicate in predicates:
                    if predicate(value):
                        buckets[n].append(record)
                        break
                else:
                    rest.append(record)
        except Exception as exc:
            raise self.failed(exc) from exc
        for output, bucket in zip(self.outputs, buckets, strict=True):
            output.push(bucket, ctx)


class TopicSink(Node):
    """Produces records to a topic (its serializers); a None key leaves partitioning to the client."""

    label = "to"

    def __init__(
        self, topic: str, key_dumps: Callable[[Any], bytes], value_dumps: Callable[[Any], bytes]
    ) -> None:
        super().__init__()
        self.topic = topic
        self.key_dumps = key_dumps
        self.value_dumps = value_dumps

    def process(self, records: list[Record], ctx: Context) -> None:
        produce, topic = ctx.produce, self.topic
        key_dumps, value_dumps = self.key_dumps, self.value_dumps
        try:
            for k, v, t, _o in records:
                produce(
                    topic,
                    None if v is None else value_dumps(v),
                    None if k is None else key_dumps(k),
                    t,
                )
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(records, ctx)
