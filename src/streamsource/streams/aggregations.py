"""Aggregators: how a per-key (or per-window) state folds in a value.

An aggregator is four plain functions: ``init()`` gives the empty state, ``add(state,
value)`` folds one value in, ``merge(a, b)`` combines two states (session windows merge
sessions that a late record joins) and ``result(state)`` is what is emitted. States are
stored as MessagePack, so they are numbers, strings, lists and dicts (a tuple comes back as
a list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamsource.streams.errors import DataflowError

Value = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Aggregator:
    init: Callable[[], Any]
    add: Callable[[Any, Any], Any]
    result: Callable[[Any], Any] = _identity
    merge: Callable[[Any, Any], Any] | None = None


def count() -> Aggregator:
    return Aggregator(lambda: 0, lambda n, _v: n + 1, merge=lambda a, b: a + b)


def total(of: Value = _identity) -> Aggregator:
    return Aggregator(lambda: 0, lambda s, v: s + of(v), merge=lambda a, b: a + b)


def _none_or(pick: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: b if a is None else (a if b is None else pick(a, b))


def minimum(of: Value = _identity) -> Aggregator:
    return Aggregator(lambda: None, lambda s, v: _none_or(min)(s, of(v)), merge=_none_or(min))


def maximum(of: Value = _identity) -> Aggregator:
    return Aggregator(lambda: None, lambda s, v: _none_or(max)(s, of(v)), merge=_none_or(max))


def mean(of: Value = _identity) -> Aggregator:
    def add(state: list[Any], value: Any) -> list[Any]:
        return [state[0] + of(value), state[1] + 1]

    return Aggregator(
        lambda: [0, 0],
        add,
        result=lambda s: s[0] / s[1] if s[1] else None,
        merge=lambda a, b: [a[0] + b[0], a[1] + b[1]],
    )


def latest(of: Value = _identity) -> Aggregator:
    # merge keeps the later session's value: sessions merge in time order
    return Aggregator(lambda: None, lambda _s, v: of(v), merge=lambda a, b: a if b is None else b)


def reduce(fn: Callable[[Any, Any], Any]) -> Aggregator:
    """``fn(accumulated, value)``; the first value starts the accumulation."""
    return Aggregator(lambda: None, lambda s, v: v if s is None else fn(s, v), merge=_none_or(fn))


def aggregate(
    init: Callable[[], Any],
    add: Callable[[Any, Any], Any],
    result: Callable[[Any], Any] = _identity,
    merge: Callable[[Any, Any], Any] | None = None,
) -> Aggregator:
    return Aggregator(init, add, result, merge)


def needs_merge(aggregator: Aggregator, what: str) -> Callable[[Any, Any], Any]:
    if aggregator.merge is None:
        raise DataflowError(f"{what} merge states: give aggregate(..., merge=...)")
    return aggregator.merge
