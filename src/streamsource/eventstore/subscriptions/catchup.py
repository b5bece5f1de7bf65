"""Catch-up subscriptions: read history from a checkpoint in pages, then follow the log live.

There is no separate "live" mode to switch to, hence no gap or duplicate at the switch: a
subscription always reads the page after its checkpoint. When a page comes back short it
has reached the head; it then waits for an append signal (or its poll interval) and reads
the next page. The store guarantees that a reader who has seen position P never later sees
a new event below P, so reading "after the last position delivered" misses nothing.

>>> sub = subscribe(store, category="account", after=checkpoint)
>>> for event in sub:             # blocks at the head until new events come; sub.close() ends it
...     handle(event)
...     checkpoint = sub.checkpoint
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from streamsource.errors import InterfaceError
from streamsource.eventstore.async_store import AsyncEventStore
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.store import EventStore
from streamsource.eventstore.subscriptions.target import (
    DEFAULT_PAGE_SIZE,
    Target,
    check_interval,
    check_page_size,
    make_target,
)
from streamsource.eventstore.subscriptions.wakeups import wakeup_for
from streamsource.eventstore.validation import check_count

FIRST_RECHECK = 0.005
"""Seconds before the first re-check after a wakeup found no new event (then doubling)."""


class _Cursor:
    """The state both subscription kinds share: checkpoint, read cursor and buffered page."""

    def __init__(
        self,
        recorder: Any,
        target: Target,
        after: int | None,
        page_size: int,
        poll_interval: float | None,
    ) -> None:
        self.target = target
        self.page_size = page_size
        self.checkpoint = after  # last event handed to the caller
        self.read_to = after  # last event read from the store (>= checkpoint)
        self.buffer: deque[RecordedEvent] = deque()
        self.by_version = target.stream is not None  # a stream's checkpoint is a version
        self.caught_up = False
        self.closed = False
        self.signal, default_poll = wakeup_for(recorder)
        self.poll_interval = default_poll if poll_interval is None else poll_interval
        self.recheck: float | None = None  # seconds until a re-check after a fruitless wakeup
        self.woken = False  # whether the last wait ended by a signal rather than a timeout

    def arguments(self, limit: int) -> dict[str, Any]:
        return self.target.read_arguments(self.read_to, min(limit, self.page_size))

    def take_page(self, page: list[RecordedEvent], limit: int) -> None:
        if page:
            self.read_to = self.target.checkpoint_of(page[-1])
            wants = self.target.wants
            self.buffer.extend(event for event in page if wants(event))
        self.caught_up = len(page) < min(limit, self.page_size)

    def pop(self, count: int) -> list[RecordedEvent]:
        buffer = self.buffer
        if count >= len(buffer):  # the usual case: hand over the whole page at once
            batch = list(buffer)
            buffer.clear()
        else:
            batch = [buffer.popleft() for _ in range(count)]
        if batch:
            self.checkpoint = self.target.checkpoint_of(batch[-1])
        return batch

    def pop_one(self) -> RecordedEvent:
        event = self.buffer.popleft()
        self.checkpoint = event.version if self.by_version else event.position
        return event

    def wait_time(self, deadline: float | None) -> float:
        # After a wakeup that found nothing, look again soon, then less and less often: an
        # append can be signalled a moment before a reader sees it (PostgreSQL hides rows
        # behind any older transaction still running, and NOTIFY does not wait for those).
        wait = self.poll_interval if self.recheck is None else min(self.recheck, self.poll_interval)
        if deadline is None:
            return wait
        return max(0.0, min(wait, deadline - time.monotonic()))

    def after_wait(self, woken: bool, found: bool) -> None:
        """Track the re-check delay: set by a fruitless wakeup, doubled while fruitless."""
        if found:
            self.recheck = None
        elif self.recheck is not None:
            doubled = self.recheck * 2
            self.recheck = None if doubled > self.poll_interval else doubled
        elif woken:
            self.recheck = FIRST_RECHECK

    def next_wait(self, deadline: float | None) -> float | None:
        """After a fill: seconds to wait for a signal, or None to stop waiting (events are
        buffered, or ``deadline`` has passed)."""
        self.after_wait(self.woken, bool(self.buffer))
        if self.buffer:
            return None
        wait = self.wait_time(deadline)
        if deadline is not None and wait <= 0:
            return None
        return wait

    def check_open(self) -> None:
        if self.closed:
            raise InterfaceError(f"the subscription to {self.target.name} is closed")


S = TypeVar("S", EventStore, AsyncEventStore)


class _Subscription(Generic[S]):
    """What the sync and async subscriptions share: arguments, cursor, state and close."""

    def __init__(
        self,
        store: S,
        target: Target,
        *,
        after: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        poll_interval: float | None = None,
    ) -> None:
        self._store: S = store
        self._cursor = _Cursor(
            store.recorder,
            target,
            check_count(after, "after"),
            check_page_size(page_size),
            None if poll_interval is None else check_interval(poll_interval, "poll_interval"),
        )

    @property
    def target(self) -> Target:
        """What this subscription follows."""
        return self._cursor.target

    @property
    def checkpoint(self) -> int | None:
        """The position (version, for a stream) of the last event delivered; None before any."""
        return self._cursor.checkpoint

    @property
    def caught_up(self) -> bool:
        """Whether the last read reached the head of the log (no more events right now)."""
        return self._cursor.caught_up and not self._cursor.buffer

    def close(self) -> None:
        """End the subscription; a blocked iteration (another thread's, or a pending ``async
        for`` step) stops soon after."""
        self._cursor.closed = True
        self._cursor.signal.notify()  # wake our own wait (others just re-check)


class CatchUpSubscription(_Subscription[EventStore]):
    """A blocking iterator over a target's events from a checkpoint, history then live.

    Iterating blocks at the head of the log until new events come; :meth:`close` (from any
    thread) ends the iteration. :meth:`next_batch` gives batches with a timeout instead.
    """

    def read_batch(self, max_events: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        """Up to ``max_events`` events available now, without waiting (empty at the head)."""
        self._cursor.check_open()
        self._fill(max_events)
        return self._cursor.pop(max_events)

    def _fill(self, max_events: int) -> None:
        cursor = self._cursor
        while not cursor.buffer:  # a full page may hold only left-out (system) events
            page = self._read(cursor.arguments(max_events))
            cursor.take_page(page, max_events)
            if cursor.caught_up:
                return

    def next_batch(
        self, max_events: int = DEFAULT_PAGE_SIZE, timeout: float | None = None
    ) -> list[RecordedEvent]:
        """Up to ``max_events`` events, waiting up to ``timeout`` seconds (None: until some
        come or the subscription is closed) when there are none yet."""
        self._wait_for_events(max_events, timeout)
        return self._cursor.pop(max_events)

    def _wait_for_events(self, max_events: int, timeout: float | None) -> None:
        cursor = self._cursor
        deadline = None if timeout is None else time.monotonic() + timeout
        while not cursor.closed:
            seen = cursor.signal.seq  # before reading: an append after this wakes the wait
            self._fill(max_events)
            if (wait := cursor.next_wait(deadline)) is None:
                return
            cursor.woken = cursor.signal.wait(seen, wait)

    def _read(self, arguments: dict[str, Any]) -> list[RecordedEvent]:
        target = self._cursor.target
        if target.stream is not None:
            return list(self._store.read_stream(target.stream, **arguments))
        return list(self._store.read_all(**arguments))

    def __iter__(self) -> Iterator[RecordedEvent]:
        return self

    def __next__(self) -> RecordedEvent:
        cursor = self._cursor
        if not cursor.buffer:
            self._wait_for_events(cursor.page_size, None)
            if not cursor.buffer:  # closed
                raise StopIteration
        return cursor.pop_one()

    def __enter__(self) -> CatchUpSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCatchUpSubscription(_Subscription[AsyncEventStore]):
    """The asyncio form of :class:`CatchUpSubscription` (``async for``; no thread blocks)."""

    async def read_batch(self, max_events: int = DEFAULT_PAGE_SIZE) -> list[RecordedEvent]:
        """Up to ``max_events`` events available now, without waiting."""
        self._cursor.check_open()
        await self._fill(max_events)
        return self._cursor.pop(max_events)

    async def _fill(self, max_events: int) -> None:
        cursor = self._cursor
        while not cursor.buffer:  # a full page may hold only left-out (system) events
            page = await self._read(cursor.arguments(max_events))
            cursor.take_page(page, max_events)
            if cursor.caught_up:
                return

    async def next_batch(
        self, max_events: int = DEFAULT_PAGE_SIZE, timeout: float | None = None
    ) -> list[RecordedEvent]:
        """Up to ``max_events`` events, waiting up to ``timeout`` seconds when there are none."""
        await self._wait_for_events(max_events, timeout)
        return self._cursor.pop(max_events)

    async def _wait_for_events(self, max_events: int, timeout: float | None) -> None:
        cursor = self._cursor
        deadline = None if timeout is None else time.monotonic() + timeout
        while not cursor.closed:
            seen = cursor.signal.seq
            await self._fill(max_events)
            if (wait := cursor.next_wait(deadline)) is None:
                return
            cursor.woken = await cursor.signal.wait_async(seen, wait)

    async def _read(self, arguments: dict[str, Any]) -> list[RecordedEvent]:
        target = self._cursor.target
        if target.stream is not None:
            reader = self._store.read_stream(target.stream, **arguments)
        else:
            reader = self._store.read_all(**arguments)
        return [event async for event in reader]

    def __aiter__(self) -> AsyncIterator[RecordedEvent]:
        return self

    async def __anext__(self) -> RecordedEvent:
        cursor = self._cursor
        if not cursor.buffer:
            await self._wait_for_events(cursor.page_size, None)
            if not cursor.buffer:  # closed
                raise StopAsyncIteration
        return cursor.pop_one()

    async def __aenter__(self) -> AsyncCatchUpSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@overload
def subscribe(
    store: EventStore,
    *,
    stream: str | None = None,
    category: str | None = None,
    types: Iterable[str] | str | None = None,
    after: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    poll_interval: float | None = None,
    include_system: bool = False,
) -> CatchUpSubscription: ...


@overload
def subscribe(
    store: AsyncEventStore,
    *,
    stream: str | None = None,
    category: str | None = None,
    types: Iterable[str] | str | None = None,
    after: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    poll_interval: float | None = None,
    include_system: bool = False,
) -> AsyncCatchUpSubscription: ...


def subscribe(
    store: EventStore | AsyncEventStore,
    *,
    stream: str | None = None,
    category: str | None = None,
    types: Iterable[str] | str | None = None,
    after: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    poll_interval: float | None = None,
    include_system: bool = False,
) -> CatchUpSubscription | AsyncCatchUpSubscription:
    """Subscribe to ``$all`` (the default), one ``category`` or one ``stream``, after a checkpoint.

    ``after`` is the checkpoint: the last position handled (for a stream: the last version),
    None to start from the beginning. ``types`` keeps only those event types. ``$all``
    leaves out system streams (names starting with ``$``, e.g. ``$parked-<group>``) unless
    ``include_system``. Pages of ``page_size`` events are read while catching up. A sync
    store gives a blocking iterator, an :class:`AsyncEventStore` an async one.
    """
    target = make_target(stream, category, types, include_system)
    if isinstance(store, AsyncEventStore):
        return AsyncCatchUpSubscription(
            store, target, after=after, page_size=page_size, poll_interval=poll_interval
        )
    return CatchUpSubscription(
        store, target, after=after, page_size=page_size, poll_interval=poll_interval
    )
