"""The synchronous event store: validation, JSON encoding and read rules over a Recorder.

Semantics shared with :class:`~streamsource.eventstore.async_store.AsyncEventStore`:

* Every argument is checked before anything is written (see
  :mod:`streamsource.eventstore.validation` for the bounds).
* ``read_stream`` applies stream metadata (``max_count``, ``max_age``, ``truncate_before``)
  and time travel; ``read_all``/``read_category`` return the raw log in global order, which
  stream metadata and deletes do not filter: what they hide stays there until
  :meth:`EventStore.scavenge` removes it (see :mod:`streamsource.eventstore.scavenging`).
* Global positions are exclusive bounds: ``read_all(after=checkpoint)`` starts with the
  event after the last one processed, ``read_all(before=P, backwards=True)`` below P.
* Reading a hard-deleted (tombstoned) stream with ``read_stream``, ``stream_version`` or
  ``get_stream_metadata`` raises :class:`~streamsource.errors.StreamDeleted`, as KurrentDB
  does; its events stay in ``read_all`` until a scavenge.
* A soft delete sets ``truncate_before`` to the current version + 1: the stream reads as
  empty, ``stream_version`` still reports the last version, and appends continue from it.
  As in KurrentDB, the first append after it may also expect NO_STREAM (a re-creation).
* Reads are lazy iterators; nothing is decoded before the reader reaches it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from streamsource.errors import (
    InterfaceError,
    ProgrammingError,
    StreamDeleted,
    WrongExpectedVersion,
)
from streamsource.eventstore import appended
from streamsource.eventstore.codec import (
    decode_record,
    decode_snapshot,
    decode_stream_metadata,
    encode_events,
    encode_snapshot_state,
    encode_stream_metadata,
)
from streamsource.eventstore.events import (
    ANY,
    NO_STREAM,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamMetadata,
    StreamSummary,
)
from streamsource.eventstore.reading import (
    AllReadRequest,
    StreamReadPlan,
    StreamReadRequest,
    Verdict,
    check_all_read,
    check_stream_read,
    plan_stream_read,
)
from streamsource.eventstore.recorder import Recorder, SnapshotRecord, StoredRecord, StreamInfo
from streamsource.eventstore.scavenging import (
    BATCH,
    ScavengeReport,
    Tally,
    first_young_version,
    removal_for,
)
from streamsource.eventstore.unit_of_work import UnitOfWork, unit_of_work
from streamsource.eventstore.validation import (
    check_count,
    check_event_type,
    check_expected_version,
    check_stream_name,
    check_version_matches,
)
from streamsource.observability import metrics, tracing


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock for ``max_age``)."""
    return datetime.now(UTC)


R = TypeVar("R")  # the backend: a Recorder or an AsyncRecorder


class StoreBase(Generic[R]):
    """What the sync and asyncio stores share: the backend, the clock and the closed state."""

    def __init__(self, recorder: R, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._recorder = recorder
        self._clock = clock
        self._closed = False

    @property
    def recorder(self) -> R:
        """The backend this store writes to."""
        return self._recorder

    def _open(self) -> R:
        if self._closed:
            raise InterfaceError("the event store is closed")
        return self._recorder

    def _plan(self, request: StreamReadRequest, info: StreamInfo) -> StreamReadPlan:
        metadata = decode_stream_metadata(request.stream, info.metadata)
        return plan_stream_read(request, info, metadata, self._clock())


class EventStore(StoreBase[Recorder]):
    """An event store over a synchronous :class:`~streamsource.eventstore.recorder.Recorder`.

    Open one with :func:`streamsource.open_store`. Thread-safe when its recorder is (every
    shipped backend is). Use it as a context manager, or call :meth:`close`.
    """

    # -- writing --------------------------------------------------------------------------

    def append(
        self,
        stream: str,
        events: Iterable[NewEvent] | NewEvent,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append ``events`` atomically to ``stream`` if its version matches ``expected_version``.

        Returns the version and global position of the last event written. Re-sending an
        append whose event ids were all written already returns the original result.
        """
        if tracing.TRACER is not None:
            with tracing.span(
                "streamsource.store.append", attributes={"streamsource.stream": stream}
            ):
                return self._append(stream, tracing.with_traceparent(events), expected_version)
        return self._append(stream, events, expected_version)

    def _append(
        self,
        stream: str,
        events: Iterable[NewEvent] | NewEvent,
        expected_version: ExpectedVersion,
    ) -> AppendResult:
        recorder = self._open()
        stream = check_stream_name(stream)
        expected = check_expected_version(expected_version, stream)
        records = encode_events(stream, events)
        started = time.perf_counter()
        try:
            result = recorder.append(stream, records, expected)
        except WrongExpectedVersion as conflict:
            if expected is not NO_STREAM or conflict.actual is None:
                raise
            base = soft_deleted_version(stream, recorder.stream_info(stream))
            if base is None:
                raise
            try:
                result = recorder.append(stream, records, base)
            except WrongExpectedVersion as again:
                raise WrongExpectedVersion(stream, expected, again.actual) from None
        instruments = metrics.INSTRUMENTS
        if instruments is not None:
            metrics.count_append(instruments, recorder.backend, len(records), started)
        appended.notify(recorder)  # wakes this process's subscribers of the store
        return result

    def set_stream_metadata(self, stream: str, metadata: StreamMetadata) -> None:
        """Replace the stream's metadata (it limits what ``read_stream`` returns)."""
        recorder = self._open()
        stream = check_stream_name(stream)
        recorder.set_stream_metadata(stream, encode_stream_metadata(stream, metadata))

    def delete_stream(
        self, stream: str, expected_version: ExpectedVersion = ANY, *, hard: bool = False
    ) -> None:
        """Delete a stream: soft (hide its events, writable again) or hard (tombstone).

        A soft delete of a stream that has no events does nothing. Its expected version is
        checked atomically with the write: a racing append either lands first (and the
        check sees it) or after (and stays visible).
        """
        recorder = self._open()
        stream = check_stream_name(stream)
        expected = check_expected_version(expected_version, stream)
        if hard:
            recorder.hard_delete(stream, expected)
            return
        while True:  # each lost race means another writer made progress
            info = self._info(stream)
            hidden = soft_delete_metadata(stream, expected, info)
            if hidden is None or recorder.replace_stream_metadata(
                stream, hidden, version=info.version, previous=info.metadata
            ):
                return

    def scavenge(
        self,
        *,
        vacuum: bool = False,
        progress: Callable[[ScavengeReport], None] | None = None,
    ) -> ScavengeReport:
        """Remove for good the events that stream metadata and deletes hide.

        See :mod:`streamsource.eventstore.scavenging` for exactly what goes and what stays.
        Safe beside appends and readers, and after a ``kill -9`` a rerun finishes the job.
        ``vacuum`` also shrinks a SQLite file (blocking writers while it rewrites it);
        ``progress`` is called about once a second with the figures so far.
        """
        recorder = self._open()
        tally = Tally(progress)
        for info in recorder.list_streams():  # paged by name: safe beside removals
            tally.stream_done(self._scavenge_stream(recorder, info))
        recorder.reclaim_space(vacuum=vacuum)
        return tally.report()

    def _scavenge_stream(self, recorder: Recorder, info: StreamInfo) -> int:
        removal = removal_for(info, self._clock())
        if removal is None or info.version is None:
            return 0
        bound = removal.before_version
        if removal.not_before is not None:
            records = recorder.read_stream(info.stream, from_version=bound, to_version=info.version)
            try:
                bound = max(bound, first_young_version(records, removal, info.version))
            finally:
                close = getattr(records, "close", None)
                if close is not None:
                    close()
        removed = 0
        while True:
            count = recorder.remove_events(
                info.stream,
                bound,
                hard_deleted=removal.hard_deleted,
                metadata=removal.metadata,
                limit=BATCH,
            )
            removed += count
            if count < BATCH:
                return removed

    def save_snapshot(self, stream: str, version: int, type: str, state: Any) -> None:
        """Store ``state`` (JSON) as the state of ``stream`` after event ``version``."""
        recorder = self._open()
        stream = check_stream_name(stream)
        checked_version = check_snapshot_version(stream, version, self._info(stream))
        snapshot_type = check_event_type(type, f"snapshot of {stream!r}")
        recorder.save_snapshot(
            SnapshotRecord(
                stream,
                checked_version,
                snapshot_type,
                encode_snapshot_state(stream, state),
                self._clock(),
            )
        )

    # -- reading --------------------------------------------------------------------------

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        as_of_version: int | None = None,
        as_of_time: datetime | None = None,
        types: Iterable[str] | str | None = None,
    ) -> Generator[RecordedEvent, None, None]:
        """The events of ``stream`` in version order (or reversed), as stream metadata allows.

        ``from_version`` is inclusive; ``as_of_version``/``as_of_time`` show the stream as it
        was (``recorded_at <= as_of_time``); ``types`` keeps only those event types; ``limit``
        bounds the number of events returned. A stream that does not exist reads as empty.
        """
        recorder = self._open()
        request = check_stream_read(
            stream,
            from_version=from_version,
            backwards=backwards,
            limit=limit,
            as_of_version=as_of_version,
            as_of_time=as_of_time,
            types=types,
        )
        plan = self._plan(request, self._info(request.stream))
        if plan.empty:
            return _no_events()
        records = recorder.read_stream(
            request.stream,
            from_version=plan.from_version,
            to_version=plan.to_version,
            backwards=plan.backwards,
            limit=plan.recorder_limit,
        )
        if not plan.filters:
            return decode_all(records)
        return filter_records(records, plan)

    def read_all(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        category: str | None = None,
        types: Iterable[str] | str | None = None,
    ) -> Generator[RecordedEvent, None, None]:
        """The whole log in global position order (or reversed, with ``backwards``).

        Positions are exclusive bounds, as everywhere in streamsource: ``after=P`` reads the
        events after position P (pass a checkpoint, the last position processed, to resume),
        ``before=P`` with ``backwards=True`` reads the events before P, newest first.
        """
        recorder = self._open()
        request = check_all_read(
            after=after,
            before=before,
            backwards=backwards,
            limit=limit,
            category=category,
            types=types,
        )
        if request.limit == 0:
            return _no_events()
        return decode_all(_recorder_read_all(recorder, request))

    def read_category(
        self,
        category: str,
        *,
        after: int | None = None,
        before: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        types: Iterable[str] | str | None = None,
    ) -> Generator[RecordedEvent, None, None]:
        """The events of every stream named ``category-...`` (or exactly ``category``)."""
        check_stream_name(category, "category")  # required here: None would read everything
        return self.read_all(
            after=after,
            before=before,
            backwards=backwards,
            limit=limit,
            category=category,
            types=types,
        )

    def stream_version(self, stream: str) -> int | None:
        """The last version written to ``stream``; None if it has no events."""
        self._open()
        info = self._info(check_stream_name(stream))
        refuse_deleted(info)
        return info.version

    def get_stream_metadata(self, stream: str) -> StreamMetadata:
        """The stream's metadata (an empty StreamMetadata when none was set)."""
        self._open()
        stream = check_stream_name(stream)
        return metadata_of(stream, self._info(stream))

    def list_streams(self, *, after: str | None = None) -> Generator[StreamSummary, None, None]:
        """Every stream that has events or was tombstoned, in name order; ``after`` starts
        after that name (keyset paging: pass the last name of the previous page)."""
        recorder = self._open()
        start = "" if after is None else check_stream_name(after, "after")
        return _summaries(recorder.list_streams(start))

    def head_position(self) -> int:
        """The global position of the newest event, 0 when the store is empty."""
        return self._open().head_position()

    def load_snapshot(self, stream: str, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot of ``stream`` at a version <= ``max_version`` (None if none)."""
        recorder = self._open()
        stream = check_stream_name(stream)
        bound = check_count(max_version, "max_version")
        record = recorder.load_snapshot(stream, bound)
        return None if record is None else decode_snapshot(record)

    def stats(self) -> dict[str, int | str]:
        """Backend figures: event and stream counts, head position, backend name, ..."""
        return self._open().stats()

    # -- lifecycle ------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """One transaction for appends and your own tables (see :mod:`.unit_of_work`)."""
        return unit_of_work(self._open())

    def close(self) -> None:
        """Close the backend; later calls raise InterfaceError. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._recorder.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _info(self, stream: str) -> StreamInfo:
        return self._recorder.stream_info(stream)


def soft_deleted_version(stream: str, info: StreamInfo) -> int | None:
    """The last version of a stream whose events are all hidden by a soft delete, else None.

    As in KurrentDB, such a stream reads as absent, so its first append may expect NO_STREAM
    (a re-creation); the append then expects this version, atomically, and versions continue.
    """
    if info.version is None or info.hard_deleted:
        return None
    metadata = decode_stream_metadata(stream, info.metadata)
    if metadata is None or metadata.truncate_before is None:
        return None
    return info.version if metadata.truncate_before > info.version else None


def soft_delete_metadata(stream: str, expected: ExpectedVersion, info: StreamInfo) -> bytes | None:
    """The encoded metadata that soft-deletes the stream ``info`` describes (None: it has no
    events, nothing to hide); raises if it is tombstoned or not at ``expected``."""
    refuse_deleted(info)
    check_version_matches(stream, expected, info.version)
    if info.version is None:
        return None
    current = decode_stream_metadata(stream, info.metadata) or StreamMetadata()
    hidden = dataclasses.replace(current, truncate_before=info.version + 1)
    return encode_stream_metadata(stream, hidden)


def metadata_of(stream: str, info: StreamInfo) -> StreamMetadata:
    """The stream's metadata (empty when none was set); raises if it is tombstoned."""
    refuse_deleted(info)
    return decode_stream_metadata(stream, info.metadata) or StreamMetadata()


def summary_of(info: StreamInfo) -> StreamSummary | None:
    """How ``list_streams`` shows a stream; None for one that only has metadata."""
    if info.version is None and not info.hard_deleted:
        return None  # only metadata was set: not a stream anyone wrote to
    return StreamSummary(
        info.stream,
        info.version,
        info.hard_deleted,
        decode_stream_metadata(info.stream, info.metadata),
    )


def refuse_deleted(info: StreamInfo) -> None:
    """Raise StreamDeleted if ``info`` describes a tombstoned stream."""
    if info.hard_deleted:
        raise StreamDeleted(info.stream)


def check_snapshot_version(stream: str, version: object, info: StreamInfo) -> int:
    """Return ``version`` if it is a version the stream has reached, else raise."""
    refuse_deleted(info)
    checked = check_count(version, "snapshot version", allow_none=False)
    assert checked is not None
    if info.version is None or checked > info.version:
        shown = "has no events" if info.version is None else f"is at version {info.version}"
        raise ProgrammingError(
            f"cannot snapshot {stream!r} at version {checked}: the stream {shown}"
        )
    return checked


def _no_events() -> Generator[RecordedEvent, None, None]:
    yield from ()


def decode_all(records: Iterator[StoredRecord]) -> Generator[RecordedEvent, None, None]:
    """Decode records one by one; closing the generator closes the backend read."""
    try:
        for record in records:
            yield decode_record(record)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def filter_records(
    records: Iterator[StoredRecord], plan: StreamReadPlan
) -> Generator[RecordedEvent, None, None]:
    """Decode the records the plan accepts, stopping early where it allows."""
    remaining = plan.limit
    try:
        for record in records:
            verdict = plan.verdict(record)
            if verdict is Verdict.SKIP:
                continue
            if verdict is Verdict.STOP:
                return
            yield decode_record(record)
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    return
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def _recorder_read_all(recorder: Recorder, request: AllReadRequest) -> Iterator[StoredRecord]:
    return recorder.read_all(
        from_position=request.from_position,
        backwards=request.backwards,
        limit=request.limit,
        filter=request.filter,
    )


def _summaries(infos: Iterable[StreamInfo]) -> Generator[StreamSummary, None, None]:
    for info in infos:
        if (summary := summary_of(info)) is not None:
            yield summary
