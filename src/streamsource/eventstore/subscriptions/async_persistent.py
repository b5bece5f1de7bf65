"""Persistent subscriptions for asyncio code: :class:`~.persistent.PersistentSubscription`'s
semantics (competing consumers, leases, ack/nack, parking, replay) with coroutine methods.

>>> async with AsyncPersistentSubscription(store, "billing", category="order") as sub:
...     async for message in sub:
...         try:
...             await bill(message.event)
...             await sub.ack(message)
...         except Exception as exc:
...             await sub.nack(message, exc)

It keeps its state in the same tables as the sync class, so sync and asyncio consumers of
one group share the work. The group is created (or checked) at the first call.

Metrics (parked and in-flight counts) are levels read when Prometheus scrapes, on a thread
of their own: the scrape runs the reads on the subscription's event loop and waits for
them, which is why a scrape from that loop's own thread leaves the group out (it would
wait for itself).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import AsyncIterator
from types import TracebackType

from streamsource.errors import DuplicateEventId, InterfaceError
from streamsource.eventstore.async_store import AsyncEventStore
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.subscriptions.async_group_tables import (
    AsyncGroupTables,
    open_async_group_tables,
)
from streamsource.eventstore.subscriptions.catchup import FIRST_RECHECK
from streamsource.eventstore.subscriptions.group_tables import Entry
from streamsource.eventstore.subscriptions.persistent import (
    Message,
    SubscriptionSettings,
    check_group_category,
    error_text,
    micros,
    parked_event,
    parked_stream,
    unreplayed,
)
from streamsource.eventstore.subscriptions.wakeups import wakeup_for
from streamsource.observability import live

SCRAPE_TIMEOUT = 5.0
"""Seconds a metrics scrape waits for the counts from the subscription's loop."""


class AsyncPersistentSubscription:
    """One asyncio consumer of a consumer group over a category (see the sync class)."""

    def __init__(
        self,
        store: AsyncEventStore,
        group: str,
        *,
        category: str,
        consumer: str | None = None,
        max_attempts: int = 5,
        lease_timeout: float = 30.0,
        retry_delay: float = 0.0,
        batch_size: int = 100,
        poll_interval: float | None = None,
    ) -> None:
        self.store = store
        settings = SubscriptionSettings.check(
            group,
            category=category,
            consumer=consumer,
            max_attempts=max_attempts,
            lease_timeout=lease_timeout,
            retry_delay=retry_delay,
            batch_size=batch_size,
        )
        self.settings = settings
        self.group = settings.group
        self.category = settings.category
        self.consumer = settings.consumer
        self._signal, default_poll = wakeup_for(store.recorder)
        self.poll_interval = default_poll if poll_interval is None else poll_interval
        self._tables: AsyncGroupTables | None = None
        self._opening = asyncio.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _ready(self) -> AsyncGroupTables:
        if self._closed:
            raise InterfaceError(f"the subscription of group {self.group!r} is closed")
        async with self._opening:
            if self._tables is None:
                tables = await open_async_group_tables(self.store.recorder)
                async with tables.transaction(self.group):
                    found = await tables.group(self.group)
                    if found is None:
                        await tables.create_group(self.group, self.category)
                    else:
                        check_group_category(self.group, found, self.category)
                self._tables = tables
                self._loop = asyncio.get_running_loop()
                live.track("subscription", self)
        return self._tables

    # -- receiving ------------------------------------------------------------------------

    async def fetch(
        self, max_messages: int | None = None, timeout: float | None = 0
    ) -> list[Message]:
        """Claim up to ``max_messages``; wait up to ``timeout`` s for some (None: forever)."""
        limit = self.settings.limit(max_messages)
        tables = await self._ready()
        deadline = None if timeout is None else time.monotonic() + timeout
        recheck: float | None = None  # after a fruitless wakeup, look again soon
        woken = False
        while not self._closed:
            seen = self._signal.seq
            messages, next_expiry = await self._claim(tables, limit)
            if messages:
                return messages
            if recheck is not None:
                recheck = None if recheck * 2 > self.poll_interval else recheck * 2
            elif woken:
                recheck = FIRST_RECHECK
            wait = self.poll_interval if recheck is None else recheck
            if next_expiry is not None:
                wait = min(wait, max(0.0, (next_expiry - micros()) / 1_000_000))
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return []
            woken = await self._signal.wait_async(seen, wait)
        return []

    async def _claim(
        self, tables: AsyncGroupTables, limit: int
    ) -> tuple[list[Message], int | None]:
        name, settings = self.group, self.settings
        to_park: list[Entry] = []
        claimed: list[Entry] = []
        fresh: list[RecordedEvent] = []
        async with tables.transaction(name):
            now = micros()
            until = now + settings.lease_us
            for entry in await tables.claimable(name, now, limit):
                attempts = entry.attempts + 1
                await tables.lease(name, entry.position, self.consumer, until, attempts)
                leased = Entry(entry.position, attempts, entry.replays, self.consumer)
                (to_park if entry.attempts >= settings.max_attempts else claimed).append(leased)
            room = limit - len(claimed) - len(to_park)
            if room > 0:
                group = await tables.group(name)
                assert group is not None
                reading = self.store.read_all(
                    after=group.checkpoint, limit=room, category=self.category
                )
                fresh = [event async for event in reading]
                for event in fresh:
                    await tables.add(name, Entry(event.position, 1, 0, self.consumer), until)
                if fresh:
                    await tables.set_checkpoint(name, fresh[-1].position)
            next_expiry = await tables.next_expiry(name)
        messages = [
            Message(await self._event_at(e.position), e.attempts, e.replays) for e in claimed
        ]
        messages += [Message(event, 1, 0) for event in fresh]
        for entry in to_park:  # leased to us: park outside the transaction (it appends)
            await self._park(
                Message(await self._event_at(entry.position), entry.attempts - 1, entry.replays),
                f"no ack after {entry.attempts - 1} deliveries (lease expired or nacked)",
            )
        messages.sort(key=lambda m: m.event.position)
        return messages, next_expiry

    async def _event_at(self, position: int) -> RecordedEvent:
        async for event in self.store.read_all(after=position - 1, limit=1):
            return event
        raise InterfaceError(f"the event at position {position} is gone (scavenged?)")

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while not self._closed:
            for message in await self.fetch(timeout=None):
                yield message

    # -- settling -------------------------------------------------------------------------

    async def ack(self, message: Message) -> None:
        """The message was handled: it will not be delivered again."""
        tables = await self._ready()
        async with tables.transaction(self.group):
            await tables.remove(self.group, message.event.position)

    async def nack(
        self, message: Message, error: BaseException | str, *, park: bool = False
    ) -> None:
        """Handling failed: deliver again later, or park it (see the sync ``nack``)."""
        text = error_text(error)
        position = message.event.position
        tables = await self._ready()
        async with tables.transaction(self.group):
            entry = await tables.entry(self.group, position)
            if entry is None or entry.consumer != self.consumer:
                return  # our lease ran out and someone else holds it now: theirs to settle
            if not park and entry.attempts < self.settings.max_attempts:
                available = micros() + self.settings.retry_delay_us
                await tables.release(self.group, position, available, text)
                self._signal.notify()  # a waiting consumer may take it at once
                return
        await self._park(message, text)

    async def _park(self, message: Message, error: str) -> None:
        try:
            await self.store.append(
                parked_stream(self.group), parked_event(self.group, message, error)
            )
        except DuplicateEventId:
            pass  # parked before, with another error text: it is parked all the same
        tables = await self._ready()
        async with tables.transaction(self.group):
            await tables.remove(self.group, message.event.position)

    # -- parked messages ------------------------------------------------------------------

    async def parked(self) -> list[RecordedEvent]:
        """The events parked by this group (the whole ``$parked-<group>`` stream)."""
        return [event async for event in self.store.read_stream(parked_stream(self.group))]

    async def replay_parked(self) -> int:
        """Send every parked message not replayed yet through the group again; how many."""
        stream = parked_stream(self.group)
        tables = await self._ready()
        async with tables.transaction(self.group):
            group = await tables.group(self.group)
            assert group is not None
            start = 0 if group.replayed is None else group.replayed + 1
            parked = [e async for e in self.store.read_stream(stream, from_version=start)]
            for event in parked:
                meta = event.metadata
                entry = Entry(int(meta["$original_position"]), 0, int(meta["$replays"]) + 1, None)
                await tables.add(self.group, entry, 0)
            if parked:
                await tables.set_replayed(self.group, parked[-1].version)
        if parked:
            self._signal.notify()
        return len(parked)

    async def in_flight(self) -> int:
        """Messages handed out and not acked yet (including ones waiting for a retry)."""
        tables = await self._ready()
        async with tables.transaction(self.group):
            return await tables.in_flight(self.group)

    async def parked_count(self) -> int:
        """Messages parked and not replayed yet."""
        tables = await self._ready()
        async with tables.transaction(self.group):
            group = await tables.group(self.group)
        last = (await self.store.recorder.stream_info(parked_stream(self.group))).version
        return unreplayed(last, group)

    # -- metrics --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def levels(self) -> tuple[int, int]:
        """(parked, in flight), for a metrics scrape on another thread than the loop's.

        Raises ``InterfaceError`` when called on the subscription's own loop (waiting there
        would block the reads it waits for) or while that loop is not running, ``TimeoutError``
        after ``SCRAPE_TIMEOUT`` s.
        """
        loop = self._loop
        if loop is None or not loop.is_running():
            raise InterfaceError(f"the event loop of group {self.group!r} is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise InterfaceError("asyncio subscription counts cannot be read on their own loop")
        future = asyncio.run_coroutine_threadsafe(self._levels(), loop)
        try:
            return future.result(SCRAPE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"group {self.group!r}: counts not read in time") from None

    async def _levels(self) -> tuple[int, int]:
        return await self.parked_count(), await self.in_flight()

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop this consumer; its unacked messages are redelivered when their leases end."""
        if not self._closed:
            self._closed = True
            live.untrack("subscription", self)
            self._signal.notify()  # ends a fetch waiting in this process

    async def __aenter__(self) -> AsyncPersistentSubscription:
        await self._ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
