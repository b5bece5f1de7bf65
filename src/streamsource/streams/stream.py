"""The user's view of a dataflow: topics, streams, tables and their operations.

Every operation adds a node to the app's graph and returns a new :class:`Stream`; nothing
runs until :meth:`App.run`. Stateful operations name a state store (``name=``, default
``<operation>-<n>`` in the order they are declared: keep the declaration order, or give
names, so a restarted app finds its state again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamsource.streams import aggregations as agg
from streamsource.streams.dataflow import (
    Branch,
    Filter,
    FlatMap,
    Map,
    Node,
    Rekey,
    TopicSink,
    Update,
)
from streamsource.streams.errors import DataflowError
from streamsource.streams.joins import TableJoin, TableWriter, WindowJoin
from streamsource.streams.serde import Serializer, serializer_for
from streamsource.streams.sinks import SqlSink, StoreSink
from streamsource.streams.windows import KeyAggregate, LateCallback, WindowAggregate, WindowSpec

if TYPE_CHECKING:
    from streamsource.eventstore.store import EventStore
    from streamsource.streams.app import App


@dataclass
class Topic:
    """A Kafka topic with its key and value serializers; ``partitions`` (and ``config``) are
    used only when the app creates it because it does not exist."""

    name: str
    key: Serializer
    value: Serializer
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)


def make_topic(name: str, key: Any = str, value: Any = Any, partitions: int = 1,
               config: dict[str, str] | None = None) -> Topic:  # fmt: skip
    if not name:
        raise DataflowError("a topic needs a name")
    return Topic(name, serializer_for(key), serializer_for(value), partitions, dict(config or {}))


class Stream:
    """Records flowing from a source; each method returns the stream after the operation."""

    def __init__(self, app: App, node: Node) -> None:
        self.app = app
        self.node = node

    def _then(self, node: Node) -> Stream:
        self.node.children.append(node)
        return Stream(self.app, node)

    # -- stateless -------------------------------------------------------------------------

    def map(self, fn: Callable[[Any], Any]) -> Stream:
        return self._then(Map(fn))

    def filter(self, fn: Callable[[Any], bool]) -> Stream:
        return self._then(Filter(fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> Stream:
        return self._then(FlatMap(fn))

    def update(self, fn: Callable[..., Any], *, with_key: bool = False) -> Stream:
        """Call ``fn(value)`` (``fn(key, value)`` with ``with_key``) for its side effect;
        records pass on unchanged."""
        return self._then(Update(fn, with_key))

    def key_by(self, fn: Callable[[Any], Any], *, repartition: bool = True, name: str | None = None,
               key: Any = str, value: Any = Any) -> Stream:  # fmt: skip
        """Re-key by ``fn(value)``. With ``repartition`` (the default) the records go through
        a repartition topic (``<group>-repartition-<name>``), so that every record of a key
        reaches the member holding that key's state; ``key``/``value`` are its serializers."""
        rekeyed = self._then(Rekey(fn))
        if not repartition:
            return rekeyed
        topic = self.app._internal_topic(
            "repartition", name or self.app._next_name("by"), key, value
        )
        rekeyed._then(TopicSink(topic.name, topic.key.dumps, topic.value.dumps))
        self.app._repartitions.append((self.node, topic))
        return self.app.stream(topic)

    def branch(self, *predicates: Callable[[Any], bool]) -> list[Stream]:
        """One stream per predicate (a record goes to the first that holds) and one more for
        the records no predicate took."""
        node = Branch(list(predicates))
        self.node.children.append(node)
        return [Stream(self.app, output) for output in node.outputs]

    def merge(self, *others: Stream) -> Stream:
        node = Node()
        for stream in (self, *others):
            stream.node.children.append(node)
        return Stream(self.app, node)

    # -- sinks -----------------------------------------------------------------------------

    def to(self, topic: Topic | str) -> Stream:
        if isinstance(topic, str):
            topic = self.app.topic(topic)
        self.app._outputs.append(topic)
        return self._then(TopicSink(topic.name, topic.key.dumps, topic.value.dumps))

    def to_store(self, store: EventStore, *, stream: Callable[[Any, Any], str],
                 type: str | Callable[[Any, Any], str],
                 data: Callable[[Any], Any] = lambda v: v) -> Stream:  # fmt: skip
        """Append each record to the event store (idempotently: see ``sinks``)."""
        typed = (lambda _k, _v: type) if isinstance(type, str) else type
        return self._then(StoreSink(store, self.app.group, stream, typed, data))

    def to_sql(self, connect: Callable[[], Any], statement: str,
               params: Callable[[Any, Any], Any]) -> Stream:  # fmt: skip
        """Run ``statement`` (an upsert) with ``params(key, value)`` per record (a projection)."""
        return self._then(SqlSink(connect, statement, params))

    # -- stateful --------------------------------------------------------------------------

    def aggregate(self, aggregator: agg.Aggregator, *, name: str | None = None) -> Stream:
        """The running aggregate per key: ``(key, result)`` after every record."""
        return self._then(KeyAggregate(self.app._store_name(name, "aggregate"), aggregator))

    def reduce(self, fn: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        return self.aggregate(agg.reduce(fn), name=name)

    def count(self, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.count(), name=name)

    def sum(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.total(of), name=name)

    def min(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.minimum(of), name=name)

    def max(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.maximum(of), name=name)

    def mean(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.mean(of), name=name)

    def latest(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.latest(of), name=name)

    def window(self, spec: WindowSpec, *, emit: str = "close",
               timestamp: Callable[[Any], int] | None = None,
               on_late: LateCallback | None = None) -> WindowedStream:  # fmt: skip
        """Window by event time (``timestamp(value)`` in ms, default the record's timestamp);
        ``emit="close"`` emits each window once when it closes, ``"update"`` after every record."""
        return WindowedStream(self, spec, emit, timestamp, on_late)

    def join(self, table: Table, fn: Callable[[Any, Any], Any], *, how: str = "inner") -> Stream:
        """``fn(value, row)`` with the table's latest row for the record's key."""
        return self._then(TableJoin(table.store, fn, how))

    def join_window(self, other: Stream, within: float, fn: Callable[[Any, Any], Any], *,
                    grace: float = 0.0, name: str | None = None) -> Stream:  # fmt: skip
        """``fn(left, right)`` for every pair of records of one key at most ``within`` seconds apart."""
        store = self.app._store_name(name, "join")
        out = Node()
        within_ms, grace_ms = round(within * 1000), round(grace * 1000)
        self.node.children.append(WindowJoin(store, 0, within_ms, grace_ms, fn, out))
        other.node.children.append(WindowJoin(store, 1, within_ms, grace_ms, fn, out))
        return Stream(self.app, out)


class WindowedStream:
    """A stream cut into windows; an aggregation makes it a stream of :class:`Windowed`."""

    def __init__(self, stream: Stream, spec: WindowSpec, emit: str,
                 timestamp: Callable[[Any], int] | None, on_late: LateCallback | None) -> None:  # fmt: skip
        self.stream, self.spec, self.emit = stream, spec, emit
        self.timestamp, self.on_late = timestamp, on_late

    def aggregate(self, aggregator: agg.Aggregator, *, name: str | None = None) -> Stream:
        store = self.stream.app._store_name(name, "window")
        node = WindowAggregate(
            store, self.spec, aggregator, self.emit, self.timestamp, self.on_late
        )
        return self.stream._then(node)

    def reduce(self, fn: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        return self.aggregate(agg.reduce(fn), name=name)

    def count(self, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.count(), name=name)

    def sum(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.total(of), name=name)

    def min(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.minimum(of), name=name)

    def max(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.maximum(of), name=name)

    def mean(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.mean(of), name=name)

    def latest(self, of: Callable[[Any], Any] = lambda v: v, *, name: str | None = None) -> Stream:
        return self.aggregate(agg.latest(of), name=name)


class Table:
    """The latest value per key of a (compacted) topic, for :meth:`Stream.join`."""

    def __init__(self, app: App, topic: Topic) -> None:
        self.topic = topic
        self.store = app._store_name(f"table-{topic.name}", "table")
        app.stream(topic)._then(TableWriter(self.store))
