"""What a catch-up subscription follows: ``$all``, one category, or one stream.

The target also knows how to turn a checkpoint into the arguments of the next page read, so
the sync and async subscriptions share every decision and differ only in how they call the
store. A checkpoint is the last *position* delivered for ``$all`` and categories, and the
last *version* delivered for a stream (a stream's events are read by version).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streamsource.errors import ProgrammingError
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.validation import check_count, check_stream_name, check_types

MAX_PAGE_SIZE = 10_000
"""Largest page a subscription reads at once (bounds the memory of one read)."""

DEFAULT_PAGE_SIZE = 1000

SYSTEM_PREFIX = "$"
"""Streams whose names start with this are the system's (parked messages, ...)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The events a subscription delivers, in log order (or version order for a stream)."""

    stream: str | None = None
    category: str | None = None
    types: frozenset[str] | None = None
    include_system: bool = False  # $all only: also events of streams named "$..."

    def wants(self, event: RecordedEvent) -> bool:
        """Whether ``event``, read from the store, is delivered.

        ``$all`` leaves out system streams (names starting with ``$``, such as a consumer
        group's ``$parked-<group>``) unless ``include_system``, as KurrentDB's ``$all``
        filters do; a category or stream target named them itself and gets them.
        """
        return (
            self.include_system
            or self.stream is not None
            or self.category is not None
            or not event.stream.startswith(SYSTEM_PREFIX)
        )

    @property
    def name(self) -> str:
        """``$all``, ``$ce-<category>`` or the stream name, as KurrentDB spells them."""
        if self.stream is not None:
            return self.stream
        if self.category is not None:
            return f"$ce-{self.category}"
        return "$all"

    def read_arguments(self, checkpoint: int | None, limit: int) -> dict[str, Any]:
        """Keyword arguments of the store read that returns the page after ``checkpoint``."""
        if self.stream is not None:
            start = 0 if checkpoint is None else checkpoint + 1
            return {"from_version": start, "limit": limit, "types": self.types}
        return {
            "after": checkpoint,
            "limit": limit,
            "category": self.category,
            "types": self.types,
        }

    def checkpoint_of(self, event: RecordedEvent) -> int:
        """The checkpoint to store after ``event`` was handled."""
        return event.version if self.stream is not None else event.position


def make_target(
    stream: str | None,
    category: str | None,
    types: Iterable[str] | str | None,
    include_system: bool = False,
) -> Target:
    """Validate the subscription's target: at most one of ``stream`` and ``category``."""
    if stream is not None and category is not None:
        raise ProgrammingError("subscribe to a stream or to a category, not both")
    if not isinstance(include_system, bool):
        raise ProgrammingError(f"include_system must be True or False, not {include_system!r}")
    return Target(
        stream=None if stream is None else check_stream_name(stream),
        category=None if category is None else check_stream_name(category, "category"),
        types=check_types(types),
        include_system=include_system,
    )


def check_page_size(page_size: object, name: str = "page_size") -> int:
    """Return ``page_size`` if it is between 1 and :data:`MAX_PAGE_SIZE`."""
    size = check_count(page_size, name, allow_none=False)
    assert size is not None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ProgrammingError(f"{name} must be between 1 and {MAX_PAGE_SIZE}, got {size}")
    return size


def check_interval(value: object, name: str) -> float:
    """Return ``value`` as a positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ProgrammingError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)
