"""The asyncio event store: the semantics of :class:`~streamsource.eventstore.store.EventStore`
with coroutine methods and async iterators.

Arguments are validated when a method is called (before the first ``await``), exactly as in
the sync API; read methods return async iterators whose backend work starts at the first
``async for`` step.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any

from streamsource.errors import WrongExpectedVersion
from streamsource.eventstore import appended
from streamsource.eventstore.codec import (
    decode_record,
    decode_snapshot,
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
    StreamReadRequest,
    Verdict,
    check_all_read,
    check_stream_read,
)
from streamsource.eventstore.recorder import (
    AsyncRecorder,
    SnapshotRecord,
    StoredRecord,
    StreamInfo,
)
from streamsource.eventstore.scavenging import BATCH, ScavengeReport, Tally, removal_for
from streamsource.eventstore.store import (
    StoreBase,
    check_snapshot_version,
    metadata_of,
    refuse_deleted,
    soft_delete_metadata,
    soft_deleted_version,
    summary_of,
)
from streamsource.eventstore.unit_of_work import AsyncUnitOfWork, async_unit_of_work
from streamsource.eventstore.validation import (
    check_count,
    check_event_type,
    check_expected_version,
    check_stream_name,
)
from streamsource.observability import metrics, tracing


class AsyncEventStore(StoreBase[AsyncRecorder]):
    """An event store over an :class:`~streamsource.eventstore.recorder.AsyncRecorder`.

    Open one with ``await streamsource.open_async_store(url)``; use ``async with`` or
    ``await store.close()``.
    """

    # -- writing --------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Iterable[NewEvent] | NewEvent,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append ``events`` atomically; see :meth:`EventStore.append`."""
        if tracing.TRACER is not None:
            with tracing.span(
                "streamsource.store.append", attributes={"streamsource.stream": stream}
            ):
                return await self._append(
                    stream, tracing.with_traceparent(events), expected_version
                )
        return await self._append(stream, events, expected_version)

    async def _append(
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
            result = await recorder.append(stream, records, expected)
        except WrongExpectedVersion as conflict:
            if expected is not NO_STREAM or conflict.actual is None:
                raise
            base = soft_deleted_version(stream, await recorder.stream_info(stream))
            if base is None:
                raise
            try:
                result = await recorder.append(stream, records, base)
            except WrongExpectedVersion as again:
                raise WrongExpectedVersion(stream, expected, again.actual) from None
        instruments = metrics.INSTRUMENTS
        if instruments is not None:
            metrics.count_append(instruments, recorder.backend, len(records), started)
        appended.notify(recorder)  # wakes this process's subscribers of the store
        return result

    async def set_stream_metadata(self, stream: str, metadata: StreamMetadata) -> None:
        """Replace the stream's metadata; see :meth:`EventStore.set_stream_metadata`."""
        recorder = self._open()
        stream = check_stream_name(stream)
        await recorder.set_stream_metadata(stream, encode_stream_metadata(stream, metadata))

    async def delete_stream(
        self, stream: str, expected_version: ExpectedVersion = ANY, *, hard: bool = False
    ) -> None:
        """Soft or hard delete; see :meth:`EventStore.delete_stream`."""
        recorder = self._open()
        stream = check_stream_name(stream)
        expected = check_expected_version(expected_version, stream)
        if hard:
            await recorder.hard_delete(stream, expected)
            return
        while True:  # atomic check and write: see EventStore.delete_stream
            info = await recorder.stream_info(stream)
            hidden = soft_delete_metadata(stream, expected, info)
            if hidden is None or await recorder.replace_stream_metadata(
                stream, hidden, version=info.version, previous=info.metadata
            ):
                return

    async def scavenge(
        self,
        *,
        vacuum: bool = False,
        progress: Callable[[ScavengeReport], None] | None = None,
    ) -> ScavengeReport:
        """Remove the events metadata and deletes hide; see :meth:`EventStore.scavenge`."""
        recorder = self._open()
        tally = Tally(progress)
        async for info in recorder.list_streams():
            tally.stream_done(await self._scavenge_stream(recorder, info))
        await recorder.reclaim_space(vacuum=vacuum)
        return tally.report()

    async def _scavenge_stream(self, recorder: AsyncRecorder, info: StreamInfo) -> int:
        removal = removal_for(info, self._clock())
        if removal is None or info.version is None:
            return 0
        bound = removal.before_version
        if removal.not_before is not None:
            young = info.version
            records = recorder.read_stream(info.stream, from_version=bound, to_version=young)
            try:
                async for record in records:
                    if record.recorded_at >= removal.not_before:
                        young = record.version
                        break
            finally:
                await _close(records)
            bound = max(bound, young)
        removed = 0
        while True:
            count = await recorder.remove_events(
                info.stream,
                bound,
                hard_deleted=removal.hard_deleted,
                metadata=removal.metadata,
                limit=BATCH,
            )
            removed += count
            if count < BATCH:
                return removed

    async def save_snapshot(self, stream: str, version: int, type: str, state: Any) -> None:
        """Store a snapshot; see :meth:`EventStore.save_snapshot`."""
        recorder = self._open()
        stream = check_stream_name(stream)
        snapshot_type = check_event_type(type, f"snapshot of {stream!r}")
        encoded = encode_snapshot_state(stream, state)
        checked = check_snapshot_version(stream, version, await recorder.stream_info(stream))
        await recorder.save_snapshot(
            SnapshotRecord(stream, checked, snapshot_type, encoded, self._clock())
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
    ) -> AsyncIterator[RecordedEvent]:
        """The events of ``stream``; see :meth:`EventStore.read_stream`."""
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
        return self._read_stream(recorder, request)

    async def _read_stream(
        self, recorder: AsyncRecorder, request: StreamReadRequest
    ) -> AsyncIterator[RecordedEvent]:
        plan = self._plan(request, await recorder.stream_info(request.stream))
        if plan.empty:
            return
        records = recorder.read_stream(
            request.stream,
            from_version=plan.from_version,
            to_version=plan.to_version,
            backwards=plan.backwards,
            limit=plan.recorder_limit,
        )
        try:
            if not plan.filters:
                async for record in records:
                    yield decode_record(record)
                return
            remaining = plan.limit
            async for record in records:
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
            await _close(records)

    def read_all(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        category: str | None = None,
        types: Iterable[str] | str | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """The whole log in global order; see :meth:`EventStore.read_all`."""
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
            return _nothing()
        records = recorder.read_all(
            from_position=request.from_position,
            backwards=request.backwards,
            limit=request.limit,
            filter=request.filter,
        )
        return _decoded(records)

    def read_category(
        self,
        category: str,
        *,
        after: int | None = None,
        before: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        types: Iterable[str] | str | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """The events of one category; see :meth:`EventStore.read_category`."""
        check_stream_name(category, "category")  # required here: None would read everything
        return self.read_all(
            after=after,
            before=before,
            backwards=backwards,
            limit=limit,
            category=category,
            types=types,
        )

    async def stream_version(self, stream: str) -> int | None:
        """The last version of ``stream``; see :meth:`EventStore.stream_version`."""
        recorder = self._open()
        info = await recorder.stream_info(check_stream_name(stream))
        refuse_deleted(info)
        return info.version

    async def get_stream_metadata(self, stream: str) -> StreamMetadata:
        """The stream's metadata; see :meth:`EventStore.get_stream_metadata`."""
        recorder = self._open()
        stream = check_stream_name(stream)
        return metadata_of(stream, await recorder.stream_info(stream))

    async def list_streams(self, *, after: str | None = None) -> AsyncIterator[StreamSummary]:
        """Every stream that has events or was tombstoned, in name order, after ``after``."""
        start = "" if after is None else check_stream_name(after, "after")
        async for info in self._open().list_streams(start):
            if (summary := summary_of(info)) is not None:
                yield summary

    async def head_position(self) -> int:
        """The global position of the newest event, 0 when the store is empty."""
        return await self._open().head_position()

    async def load_snapshot(self, stream: str, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot at a version <= ``max_version``; see :meth:`EventStore.load_snapshot`."""
        recorder = self._open()
        stream = check_stream_name(stream)
        bound = check_count(max_version, "max_version")
        record = await recorder.load_snapshot(stream, bound)
        return None if record is None else decode_snapshot(record)

    async def stats(self) -> dict[str, int | str]:
        """Backend figures; see :meth:`EventStore.stats`."""
        return await self._open().stats()

    # -- lifecycle ------------------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[AsyncUnitOfWork]:
        """One transaction for appends and your own tables (see :mod:`.unit_of_work`)."""
        return async_unit_of_work(self._open())

    async def close(self) -> None:
        """Close the backend; later calls raise InterfaceError. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._recorder.close()

    async def __aenter__(self) -> AsyncEventStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _nothing() -> AsyncIterator[RecordedEvent]:
    return
    yield  # makes this an async generator


async def _decoded(records: AsyncIterator[StoredRecord]) -> AsyncIterator[RecordedEvent]:
    try:
        async for record in records:
            yield decode_record(record)
    finally:
        await _close(records)


async def _close(records: AsyncIterator[Any]) -> None:
    # an abandoned async generator is only finalised when the loop gets to it: close the
    # backend read now so its connection or page goes back at once
    aclose = getattr(records, "aclose", None)
    if aclose is not None:
        await aclose()
