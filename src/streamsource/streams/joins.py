"""Joins: a stream with a table (the latest value per key of a compacted topic), and two
streams within a time window.

Both sides must be partitioned alike (the same key, the same number of partitions), as in
Kafka Streams: a member then holds partition ``p`` of both, and the join is local.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamsource.streams.dataflow import Context, Node, Record
from streamsource.streams.errors import DataflowError

Joiner = Callable[[Any, Any], Any]


class TableWriter(Node):
    """Keeps the latest value per key of a table topic (a None value deletes the key)."""

    label = "table"

    def __init__(self, store: str) -> None:
        super().__init__()
        self.store_name = store

    def stores(self) -> list[str]:
        return [self.store_name]

    def process(self, records: list[Record], ctx: Context) -> None:
        store = ctx.store(self.store_name)
        for key, value, _ts, _offset in records:
            if value is None:
                store.delete(key)
            else:
                store.set(key, value)
        self.push(records, ctx)


class TableJoin(Node):
    """``fn(value, row)`` for each record whose key has a row (``how="left"``: row None too)."""

    label = "join"

    def __init__(self, table_store: str, fn: Joiner, how: str) -> None:
        super().__init__()
        if how not in ("inner", "left"):
            raise DataflowError(f"how must be 'inner' or 'left', got {how!r}")
        self.table_store = table_store
        self.fn = fn
        self.inner = how == "inner"

    def process(self, records: list[Record], ctx: Context) -> None:
        get = ctx.store(self.table_store).get
        fn, inner = self.fn, self.inner
        out: list[Record] = []
        try:
            for key, value, ts, offset in records:
                row = get(key)
                if row is None and inner:
                    continue
                out.append((key, fn(value, row), ts, offset))
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(out, ctx)


class WindowJoin(Node):
    """One side's entry into a windowed stream-stream join (``side`` 0: left, 1: right).

    The store keeps, per key, each side's ``[timestamp, value]`` entries of the last
    ``within + grace`` milliseconds of stream time. A record joins every entry of the other
    side at most ``within`` ms away: ``fn(left, right)``.
    """

    label = "join_window"

    def __init__(
        self, store: str, side: int, within: int, grace: int, fn: Joiner, out: Node
    ) -> None:
        super().__init__()
        self.store_name = store
        self.side = side
        self.within = within
        self.grace = grace
        self.fn = fn
        self.out = out

    def stores(self) -> list[str]:
        return [self.store_name]

    def process(self, records: list[Record], ctx: Context) -> None:
        store = ctx.store(self.store_name)
        side, other, within, fn = self.side, 1 - self.side, self.within, self.fn
        times: dict[int, int] = ctx.node_state.setdefault(id(self.out), {})
        out: list[Record] = []
        try:
            for key, value, ts, offset in records:
                now = times[0] = max(times.get(0, -1), ts)
                entries = store.get(key) or [[], []]
                horizon = now - within - self.grace
                sides = [
                    [e for e in entries[0] if e[0] >= horizon],
                    [e for e in entries[1] if e[0] >= horizon],
                ]
                for at, seen in sides[other]:
                    if abs(at - ts) <= within:
                        joined = fn(value, seen) if side == 0 else fn(seen, value)
                        out.append((key, joined, max(at, ts), offset))
                sides[side].append([ts, value])
                store.set(key, sides)
        except Exception as exc:
            raise self.failed(exc) from exc
        self.out.push(out, ctx)
