"""What a scavenge removes: the events stream metadata and deletes hide, for good.

Stream metadata (``max_count``, ``max_age``, ``truncate_before``) and soft deletes only hide
events from ``read_stream``, and a hard delete only refuses later appends; the events stay in
the log until a scavenge removes them. The rules, shared by the sync and asyncio stores:

* a stream loses the versions its metadata hides (a soft delete hides all of them), a
  tombstoned stream loses every event;
* a live stream keeps its last event even if it is hidden: it carries the version that
  appends continue from;
* the newest event of the whole log stays (until something is appended after it), so a
  position is never handed out twice;
* every event that stays keeps its position and version;
* each backend removes a stream's events oldest first, in batches, each batch atomic and
  only while the stream's metadata and tombstone are what the scavenge read: a metadata
  change racing with it wins, and a ``kill -9`` leaves each stream with a suffix of its
  versions, which a rerun finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from streamsource.eventstore.codec import decode_stream_metadata
from streamsource.eventstore.recorder import StoredRecord, StreamInfo

BATCH = 500
"""Events removed per atomic step: appends keep flowing between steps."""


@dataclass(frozen=True, slots=True)
class ScavengeReport:
    """What a scavenge did (or, passed to a progress callback, has done so far)."""

    streams_checked: int = 0
    streams_scavenged: int = 0  # streams that lost at least one event
    events_removed: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Removal:
    """The events of one stream to remove: versions below ``before_version``."""

    stream: str
    before_version: int
    hard_deleted: bool
    metadata: bytes | None  # as read: the backend removes only while it is unchanged
    not_before: datetime | None  # max_age: also remove events recorded before this


def removal_for(info: StreamInfo, now: datetime) -> Removal | None:
    """What to remove from the stream ``info`` describes; None when nothing is hidden."""
    if info.version is None:
        return None
    if info.hard_deleted:
        return Removal(info.stream, info.version + 1, True, info.metadata, None)
    metadata = decode_stream_metadata(info.stream, info.metadata)
    if metadata is None:
        return None
    lowest = 0
    if metadata.truncate_before is not None:
        lowest = max(lowest, metadata.truncate_before)
    if metadata.max_count is not None:
        lowest = max(lowest, info.version - metadata.max_count + 1)
    not_before = None if metadata.max_age is None else now - metadata.max_age
    lowest = min(lowest, info.version)  # the last event stays
    if lowest == 0 and not_before is None:
        return None
    return Removal(info.stream, lowest, False, info.metadata, not_before)


def first_young_version(records: Iterable[StoredRecord], removal: Removal, last: int) -> int:
    """The bound ``max_age`` sets: the version of the first event recorded at or after the
    cut-off (``records`` read in version order from ``removal.before_version``)."""
    assert removal.not_before is not None
    for record in records:
        if record.recorded_at >= removal.not_before:
            return record.version
    return last


class Tally:
    """Counts a scavenge as it goes and reports progress at most every ``interval`` s."""

    def __init__(
        self, progress: Callable[[ScavengeReport], None] | None, interval: float = 1.0
    ) -> None:
        self._progress = progress
        self._interval = interval
        self._started = time.monotonic()
        self._last_report = self._started
        self.checked = 0
        self.scavenged = 0
        self.removed = 0

    def stream_done(self, removed: int) -> None:
        self.checked += 1
        if removed:
            self.scavenged += 1
            self.removed += removed
        now = time.monotonic()
        if self._progress is not None and now - self._last_report >= self._interval:
            self._last_report = now
            self._progress(self.report())

    def report(self) -> ScavengeReport:
        elapsed = time.monotonic() - self._started
        return ScavengeReport(self.checked, self.scavenged, self.removed, elapsed)
