"""How a ``read_stream`` call maps onto a recorder read (sans-I/O, shared by both facades).

Stream metadata and time travel are applied here, not in the backends:

* ``truncate_before`` hides versions below it; ``max_count`` keeps the newest N versions of
  the stream's *current* head visible (so an as-of read never resurrects a hidden event);
  ``max_age`` hides events recorded before ``now - max_age``.
* ``as_of_version`` keeps versions up to and including it; ``as_of_time`` keeps events with
  ``recorded_at <= as_of_time``.
* ``types`` keeps the listed event types; ``limit`` counts the events returned.

Version bounds become the recorder's ``from_version``/``to_version``; time and type filters
are checked per record. Because ``recorded_at`` never decreases within a stream, a time
bound lets a reader stop early instead of scanning to the end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streamsource.errors import ProgrammingError, StreamDeleted
from streamsource.eventstore.events import StreamMetadata
from streamsource.eventstore.recorder import ReadAllFilter, StoredRecord, StreamInfo
from streamsource.eventstore.validation import (
    MAX_COUNT,
    check_aware_time,
    check_count,
    check_stream_name,
    check_types,
)


class Verdict(enum.Enum):
    """What a reader does with one record."""

    ACCEPT = 1
    SKIP = 2
    STOP = 3


@dataclass(frozen=True, slots=True)
class StreamReadPlan:
    """Recorder arguments plus the per-record checks for one ``read_stream`` call."""

    empty: bool
    from_version: int | None = None
    to_version: int | None = None
    backwards: bool = False
    recorder_limit: int | None = None  # passed down only when no record can be skipped here
    limit: int | None = None
    not_before: datetime | None = None  # max_age cut-off
    not_after: datetime | None = None  # as_of_time
    types: frozenset[str] | None = None

    @property
    def filters(self) -> bool:
        """Whether records must be checked one by one."""
        return self.not_before is not None or self.not_after is not None or self.types is not None

    def verdict(self, record: StoredRecord) -> Verdict:
        """Accept, skip, or stop at ``record`` (records arrive in reading order)."""
        at = record.recorded_at
        if self.backwards:
            if self.not_before is not None and at < self.not_before:
                return Verdict.STOP
            if self.not_after is not None and at > self.not_after:
                return Verdict.SKIP
        else:
            if self.not_after is not None and at > self.not_after:
                return Verdict.STOP
            if self.not_before is not None and at < self.not_before:
                return Verdict.SKIP
        if self.types is not None and record.type not in self.types:
            return Verdict.SKIP
        return Verdict.ACCEPT


_EMPTY = StreamReadPlan(empty=True)


@dataclass(frozen=True, slots=True)
class StreamReadRequest:
    """The validated arguments of one ``read_stream`` call."""

    stream: str
    from_version: int | None
    backwards: bool
    limit: int | None
    as_of_version: int | None
    as_of_time: datetime | None
    types: frozenset[str] | None


def check_stream_read(
    stream: object,
    *,
    from_version: object,
    backwards: object,
    limit: object,
    as_of_version: object,
    as_of_time: object,
    types: Any,
) -> StreamReadRequest:
    """Validate the arguments of ``read_stream``."""
    return StreamReadRequest(
        stream=check_stream_name(stream),
        from_version=check_count(from_version, "from_version"),
        backwards=bool(backwards),
        limit=check_count(limit, "limit"),
        as_of_version=check_count(as_of_version, "as_of_version"),
        as_of_time=check_aware_time(as_of_time, "as_of_time"),
        types=check_types(types),
    )


@dataclass(frozen=True, slots=True)
class AllReadRequest:
    """The validated arguments of one ``read_all`` (or ``read_category``) call."""

    from_position: int | None  # the recorder's inclusive start, derived from after/before
    backwards: bool
    limit: int | None
    filter: ReadAllFilter | None


def check_all_read(
    *,
    after: object,
    before: object,
    backwards: object,
    limit: object,
    category: object,
    types: Any,
) -> AllReadRequest:
    """Validate the arguments of ``read_all``; ``category`` follows the stream-name rules.

    Positions are exclusive everywhere, as a checkpoint is "the last position processed":
    a forwards read starts ``after`` a position, a backwards read ``before`` one.
    """
    checked_category = None if category is None else check_stream_name(category, "category")
    checked_types = check_types(types)
    narrowing = None
    if checked_category is not None or checked_types is not None:
        narrowing = ReadAllFilter(category=checked_category, types=checked_types)
    checked_after = check_count(after, "after")
    checked_before = check_count(before, "before")
    checked_limit = check_count(limit, "limit")
    if backwards:
        if checked_after is not None:
            raise ProgrammingError("after= bounds a forwards read; a backwards read takes before=")
        start = None if checked_before is None else checked_before - 1
        if start is not None and start < 1:
            checked_limit = 0  # nothing comes before the first position
    else:
        if checked_before is not None:
            raise ProgrammingError("before= bounds a backwards read; a forwards read takes after=")
        # past MAX_COUNT nothing is stored, and the database can still bind the number
        start = None if checked_after is None else min(checked_after + 1, MAX_COUNT)
    return AllReadRequest(
        from_position=start,
        backwards=bool(backwards),
        limit=checked_limit,
        filter=narrowing,
    )


def plan_stream_read(
    request: StreamReadRequest, info: StreamInfo, metadata: StreamMetadata | None, now: datetime
) -> StreamReadPlan:
    """Plan a read of the stream described by ``info``; a tombstoned stream raises."""
    if info.hard_deleted:
        raise StreamDeleted(request.stream)
    head = info.version
    limit = request.limit
    types = request.types
    if head is None or limit == 0 or (types is not None and not types):
        return _EMPTY
    lowest = 0
    not_before = None
    if metadata is not None:
        if metadata.truncate_before is not None:
            lowest = max(lowest, metadata.truncate_before)
        if metadata.max_count is not None:
            lowest = max(lowest, head - metadata.max_count + 1)
        if metadata.max_age is not None:
            not_before = now - metadata.max_age
    as_of_version = request.as_of_version
    highest = head if as_of_version is None else min(head, as_of_version)
    from_version = request.from_version
    if request.backwards:
        start = highest if from_version is None else min(highest, from_version)
        end = lowest
        if start < end:
            return _EMPTY
    else:
        start = lowest if from_version is None else max(lowest, from_version)
        end = highest
        if start > end:
            return _EMPTY
    as_of_time = request.as_of_time
    filtered = not_before is not None or as_of_time is not None or types is not None
    return StreamReadPlan(
        empty=False,
        from_version=start,
        to_version=end,
        backwards=request.backwards,
        recorder_limit=None if filtered else limit,
        limit=limit,
        not_before=not_before,
        not_after=as_of_time,
        types=types,
    )
