"""Windows over event time: tumbling, hopping, sliding and session, with grace and lateness.

Time is *stream time*: per input partition, the largest event timestamp seen so far (kept in
the store, so it survives restarts and moves with the partition). A window is open until
stream time reaches its end plus the grace period; then it closes, is emitted (with
``emit="close"``) and its state deleted. A record whose every window has closed is late: the
``on_late(key, value, timestamp)`` callback gets it and nothing else does. ``emit="update"``
emits the window's new result after every record instead.

Stores hold ``(key, window_start) -> state`` for tumbling and hopping windows, ``key ->
[[start, end, state], ...]`` for sessions and ``key -> [[timestamp, value], ...]`` for sliding
windows. Closing walks a heap of window ends kept in memory and rebuilt from the store when
a partition is (re)assigned.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from streamsource.streams.aggregations import Aggregator, needs_merge
from streamsource.streams.dataflow import Context, Node, Record
from streamsource.streams.errors import DataflowError

LateCallback = Callable[[Any, Any, int], None]
_STREAM_TIME = ("$stream-time",)


class Windowed(msgspec.Struct):
    """A window's result: ``[start, end)`` in epoch milliseconds and the aggregated value."""

    start: int
    end: int
    value: Any


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Fixed, non-overlapping windows of ``size`` seconds."""

    size: float
    grace: float = 0.0


@dataclass(frozen=True, slots=True)
class Hopping:
    """Windows of ``size`` seconds starting every ``step`` seconds (they overlap)."""

    size: float
    step: float
    grace: float = 0.0


@dataclass(frozen=True, slots=True)
class Sliding:
    """For every record, the window of ``size`` seconds ending at its timestamp."""

    size: float
    grace: float = 0.0


@dataclass(frozen=True, slots=True)
class Session:
    """Activity periods: records of a key closer than ``gap`` seconds share a session."""

    gap: float
    grace: float = 0.0


WindowSpec = Tumbling | Hopping | Sliding | Session


def _ms(seconds: float, what: str, minimum: int = 0) -> int:
    value = round(seconds * 1000)
    if value < minimum:
        raise DataflowError(f"a window's {what} must be at least {minimum} ms, got {seconds} s")
    return value


class _PartitionWindows:
    """One partition's stream time and heap of (end, seq, key, start) windows to close."""

    def __init__(self) -> None:
        self.stream_time = -1
        self.heap: list[tuple[int, int, Any, int]] = []
        self.seq = itertools.count()


class WindowAggregate(Node):
    label = "window"

    def __init__(
        self,
        store: str,
        spec: WindowSpec,
        aggregator: Aggregator,
        emit: str,
        timestamp: Callable[[Any], int] | None,
        on_late: LateCallback | None,
    ) -> None:
        super().__init__()
        if emit not in ("close", "update"):
            raise DataflowError(f"emit must be 'close' or 'update', got {emit!r}")
        self.store_name = store
        self.spec = spec
        self.aggregator = aggregator
        self.emit_on_close = emit == "close"
        self.timestamp = timestamp
        self.on_late = on_late
        self.grace = _ms(spec.grace, "grace")
        if isinstance(spec, Session):
            self.gap = _ms(spec.gap, "gap", 1)
            self.merge = needs_merge(aggregator, "session windows")
        elif isinstance(spec, Hopping):
            self.size, self.step = _ms(spec.size, "size", 1), _ms(spec.step, "step", 1)
            if self.size % self.step:
                raise DataflowError("a hopping window's size must be a multiple of its step")
        else:
            self.size = _ms(spec.size, "size", 1)
            self.step = self.size

    def stores(self) -> list[str]:
        return [self.store_name]

    def _windows(self, ctx: Context) -> _PartitionWindows:
        state: _PartitionWindows | None = ctx.node_state.get(id(self))
        if state is None:  # first batch of this partition here: rebuild from the store
            state = ctx.node_state[id(self)] = _PartitionWindows()
            store = ctx.store(self.store_name)
            state.stream_time = store.get(_STREAM_TIME, -1)
            for key, value in store.items():
                if key == _STREAM_TIME:
                    continue
                if isinstance(self.spec, Session):
                    for start, end, _acc in value:
                        heapq.heappush(state.heap, (end + self.gap, next(state.seq), key, start))
                elif isinstance(self.spec, Sliding):
                    heapq.heappush(state.heap, (value[-1][0] + self.size, next(state.seq), key, 0))
                else:
                    heapq.heappush(
                        state.heap, (key[1] + self.size, next(state.seq), key[0], key[1])
                    )
        return state

    def process(self, records: list[Record], ctx: Context) -> None:
        windows = self._windows(ctx)
        store = ctx.store(self.store_name)
        out: list[Record] = []
        timestamp = self.timestamp
        try:
            if isinstance(self.spec, Session):
                add = self._add_session
            elif isinstance(self.spec, Sliding):
                add = self._add_sliding
            else:
                add = self._add_fixed
            for key, value, ts, offset in records:
                t = ts if timestamp is None else timestamp(value)
                add(store, windows, key, value, t, offset, out)
                if t > windows.stream_time:
                    windows.stream_time = t
                    self._close(store, windows, t, offset, out)
        except DataflowError:
            raise
        except Exception as exc:
            raise self.failed(exc) from exc
        store.set(_STREAM_TIME, windows.stream_time)
        self.push(out, ctx)

    def _late(self, key: Any, value: Any, t: int) -> None:
        if self.on_late is not None:
            self.on_late(key, value, t)

    def _add_fixed(
        self,
        store: Any,
        w: _PartitionWindows,
        key: Any,
        value: Any,
        t: int,
        offset: int,
        out: list[Record],
    ) -> None:
        size, step, grace = self.size, self.step, self.grace
        closed_before = w.stream_time - grace  # windows ending at or before this are closed
        last_start = t - t % step
        start = last_start - size + step
        touched = False
        agg = self.aggregator
        while start <= last_start:
            end = start + size
            if end > closed_before:
                touched = True
                state_key = (key, start)
                state = store.get(state_key)
                if state is None:
                    state = agg.init()
                    heapq.heappush(w.heap, (end, next(w.seq), key, start))
                state = agg.add(state, value)
                store.set(state_key, state)
                if not self.emit_on_close:
                    out.append((key, Windowed(start, end, agg.result(state)), t, offset))
            start += step
        if not touched:
            self._late(key, value, t)

    def _add_session(
        self,
        store: Any,
        w: _PartitionWindows,
        key: Any,
        value: Any,
        t: int,
        offset: int,
        out: list[Record],
    ) -> None:
        gap, agg = self.gap, self.aggregator
        sessions: list[list[Any]] = list(store.get(key, ()))
        joined = [s for s in sessions if s[0] - gap <= t <= s[1] + gap]
        if not joined and t + gap + self.grace <= w.stream_time:
            self._late(key, value, t)
            return
        start, end, state = t, t, agg.add(agg.init(), value)
        for s in joined:  # in time order: a merged session keeps the earlier state first
            start, end = min(start, s[0]), max(end, s[1])
            state = self.merge(s[2], state) if s[0] <= t else self.merge(state, s[2])
        kept = [s for s in sessions if not any(s is j for j in joined)]
        kept.append([start, end, state])
        kept.sort(key=lambda s: s[0])
        store.set(key, kept)
        heapq.heappush(w.heap, (end + gap, next(w.seq), key, start))
        if not self.emit_on_close:
            out.append((key, Windowed(start, end, agg.result(state)), t, offset))

    def _add_sliding(
        self,
        store: Any,
        w: _PartitionWindows,
        key: Any,
        value: Any,
        t: int,
        offset: int,
        out: list[Record],
    ) -> None:
        size, agg = self.size, self.aggregator
        if t + self.grace <= w.stream_time - size:
            self._late(key, value, t)
            return
        entries: list[list[Any]] = list(store.get(key, ()))
        entries.append([t, value])
        entries.sort(key=lambda e: e[0])
        horizon = max(w.stream_time, t) - size - self.grace
        entries = [e for e in entries if e[0] > horizon]
        store.set(key, entries)
        heapq.heappush(w.heap, (entries[-1][0] + size, next(w.seq), key, 0))
        state = agg.init()
        for at, v in entries:
            if t - size < at <= t:
                state = agg.add(state, v)
        out.append((key, Windowed(t - size, t, agg.result(state)), t, offset))

    def _close(
        self, store: Any, w: _PartitionWindows, now: int, offset: int, out: list[Record]
    ) -> None:
        heap, limit = w.heap, now - self.grace
        while heap and heap[0][0] <= limit:
            end, _seq, key, start = heapq.heappop(heap)
            if isinstance(self.spec, Session):
                self._close_session(store, key, start, end, now, offset, out)
            elif isinstance(self.spec, Sliding):
                entries = store.get(key)
                if entries is not None and entries[-1][0] + self.size <= limit:
                    store.delete(key)  # the key went quiet: nothing left to slide over
            else:
                state = store.get((key, start))
                if state is None:
                    continue
                store.delete((key, start))
                if self.emit_on_close:
                    out.append(
                        (key, Windowed(start, end, self.aggregator.result(state)), end - 1, offset)
                    )

    def _close_session(
        self,
        store: Any,
        key: Any,
        start: int,
        closes: int,
        now: int,
        offset: int,
        out: list[Record],
    ) -> None:
        sessions = store.get(key)
        if not sessions:
            return
        for s in sessions:
            if s[0] == start and s[1] + self.gap == closes:
                sessions = [x for x in sessions if x is not s]
                if sessions:
                    store.set(key, sessions)
                else:
                    store.delete(key)
                if self.emit_on_close:
                    result = self.aggregator.result(s[2])
                    out.append((key, Windowed(s[0], s[1], result), s[1], offset))
                return
        # the session grew or merged since this heap entry: a later entry closes it


class KeyAggregate(Node):
    """Per-key running aggregate; emits ``(key, result)`` after every record."""

    label = "aggregate"

    def __init__(self, store: str, aggregator: Aggregator) -> None:
        super().__init__()
        self.store_name = store
        self.aggregator = aggregator

    def stores(self) -> list[str]:
        return [self.store_name]

    def process(self, records: list[Record], ctx: Context) -> None:
        store = ctx.store(self.store_name)
        init, add, result = self.aggregator.init, self.aggregator.add, self.aggregator.result
        get, put = store.get, store.set
        out: list[Record] = []
        try:
            for key, value, ts, offset in records:
                state = get(key)
                state = add(init() if state is None else state, value)
                put(key, state)
                out.append((key, result(state), ts, offset))
        except Exception as exc:
            raise self.failed(exc) from exc
        self.push(out, ctx)
