"""The aggregate types whose state time travel shows, named ``module:Class`` on the command
line and found by their streams' category."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import streamsource as ss
from streamsource.console.errors import ConsoleError
from streamsource.console.store_views import pretty


class BadAppSpec(ConsoleError):
    """A ``module:attr`` that does not name what it should."""


def import_spec(spec: str, option: str) -> Any:
    """The object named by ``module:attr`` (the current directory is importable)."""
    module_name, separator, attribute = spec.partition(":")
    if not separator or not module_name or not attribute:
        raise BadAppSpec(f"{option} must look like module:attribute, not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadAppSpec(f"cannot import {module_name!r} (from {option} {spec}): {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise BadAppSpec(f"{module_name!r} has no attribute {attribute!r}") from None


def load_aggregates(specs: Iterable[str]) -> dict[str, type[ss.Aggregate]]:
    """Category -> aggregate type, for each ``module:Class``."""
    found: dict[str, type[ss.Aggregate]] = {}
    for spec in specs:
        cls = import_spec(spec, "--aggregate")
        if not (isinstance(cls, type) and issubclass(cls, ss.Aggregate)):
            raise BadAppSpec(f"--aggregate {spec} is {cls!r}, not an Aggregate subclass")
        found[cls.stream_category()] = cls
    return found


@dataclass(frozen=True)
class AggregateState:
    """An aggregate's state as of a version or a moment."""

    type: str
    id: str
    version: int | None
    state: dict[str, Any]

    @property
    def state_text(self) -> str:
        return pretty(self.state)


def state_as_of(
    store: ss.EventStore,
    cls: type[ss.Aggregate],
    stream: str,
    *,
    as_of_version: int | None,
    as_of_time: datetime | None,
) -> AggregateState:
    """Load the aggregate of ``stream`` as it was, and show its public attributes."""
    prefix = cls.stream_category() + "-"
    if not stream.startswith(prefix):
        raise BadAppSpec(f"{stream} is not a stream of {cls.__name__} ({prefix}...)")
    aggregate = ss.Repository(store, cls).load(
        stream[len(prefix) :], as_of_version=as_of_version, as_of_time=as_of_time
    )
    state = {
        name: _plain(value)
        for name, value in vars(aggregate).items()
        if not name.startswith("_") and name not in ("id", "version")
    }
    return AggregateState(cls.__name__, aggregate.id, aggregate.version, state)


def _plain(value: Any) -> Any:
    """A JSON-friendly copy (anything JSON cannot hold is shown as its repr)."""
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError):
        return repr(value)
