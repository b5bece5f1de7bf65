"""Persistent subscriptions: competing consumers of a category, as KurrentDB's consumer groups.

>>> sub = PersistentSubscription(store, "billing", category="order", max_attempts=3)
>>> for message in sub:                       # blocks until messages come
...     try:
...         bill(message.event)
...         sub.ack(message)
...     except Exception as exc:
...         sub.nack(message, exc)            # redelivered; parked after 3 attempts

Every consumer of a group (threads, processes) shares the group's checkpoint and in-flight
table in the store's database (see :mod:`.group_tables`). A fetch, in one transaction,
claims messages whose lease ran out (nacked, or held by a consumer that died) and then new
events after the checkpoint, leasing each for ``lease_timeout`` seconds. ``ack`` deletes a
message; ``nack`` makes it available again, or parks it in the stream ``$parked-<group>``
(the error in its metadata) once it was tried ``max_attempts`` times. :meth:`replay_parked`
sends parked messages through the group again. Delivery is at least once: a consumer that
finishes a message just as its lease expires may see it handled twice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from streamsource.errors import DuplicateEventId, ProgrammingError
from streamsource.eventstore.events import NewEvent, RecordedEvent
from streamsource.eventstore.store import EventStore
from streamsource.eventstore.subscriptions.catchup import FIRST_RECHECK
from streamsource.eventstore.subscriptions.group_tables import Entry, Group, open_group_tables
from streamsource.eventstore.subscriptions.target import check_interval, check_page_size
from streamsource.eventstore.subscriptions.wakeups import wakeup_for
from streamsource.eventstore.validation import check_stream_name
from streamsource.observability import live

_PARKED_IDS = uuid.UUID("5d6d2d1e-8f0a-4c4b-9a53-7b1f6c0e2a91")
MAX_ERROR_LENGTH = 4000
"""Characters of an error message kept in a parked event's metadata."""


def parked_stream(group: str) -> str:
    """The dead-letter stream of ``group``."""
    return f"$parked-{group}"


def unreplayed(last_parked: int | None, group: Group | None) -> int:
    """How many parked messages wait for a replay: the versions of the parked stream (whose
    last is ``last_parked``) after the last one ``group`` replayed."""
    if last_parked is None:
        return 0
    replayed = -1 if group is None or group.replayed is None else group.replayed
    return last_parked - replayed


@dataclass(frozen=True, slots=True)
class Message:
    """An event handed to one consumer of a group; ``attempt`` counts from 1."""

    event: RecordedEvent
    attempt: int
    replays: int  # how many times it came back from the parked stream


def micros() -> int:
    return time.time_ns() // 1000


def default_consumer_name() -> str:
    """host:pid:random, unique per subscription object."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PersistentSubscription:
    """One consumer of a consumer group over a category (create as many as you need)."""

    def __init__(
        self,
        store: EventStore,
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
        self.max_attempts = settings.max_attempts
        self.lease_us = settings.lease_us
        self.retry_delay_us = settings.retry_delay_us
        self.batch_size = settings.batch_size
        self._signal, default_poll = wakeup_for(store.recorder)
        self.poll_interval = default_poll if poll_interval is None else poll_interval
        self._tables = open_group_tables(store.recorder)
        self._closed = False
        self._using = threading.RLock()  # close() must not pull the tables from under a call
        try:
            with self._tables.transaction(self.group):
                found = self._tables.group(self.group)
                if found is None:
                    self._tables.create_group(self.group, self.category)
                else:
                    check_group_category(self.group, found, self.category)
        except BaseException:
            self._tables.close()
            raise
        live.track("subscription", self)

    # -- receiving ------------------------------------------------------------------------

    def fetch(self, max_messages: int | None = None, timeout: float | None = 0) -> list[Message]:
        """Claim up to ``max_messages``; wait up to ``timeout`` s for some (None: forever)."""
        limit = self.settings.limit(max_messages)
        deadline = None if timeout is None else time.monotonic() + timeout
        recheck: float | None = None  # after a fruitless wakeup, look again soon (see catchup)
        woken = False
        while not self._closed:
            seen = self._signal.seq
            with self._using:
                if self._closed:
                    break
                messages, next_expiry = self._claim(limit)
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
            woken = self._signal.wait(seen, wait)
        return []

    def _claim(self, limit: int) -> tuple[list[Message], int | None]:
        tables, name = self._tables, self.group
        to_park: list[Entry] = []
        claimed: list[Entry] = []
        fresh: list[RecordedEvent] = []
        with tables.transaction(name):
            now = micros()
            until = now + self.lease_us
            for entry in tables.claimable(name, now, limit):
                attempts = entry.attempts + 1
                tables.lease(name, entry.position, self.consumer, until, attempts)
                leased = Entry(entry.position, attempts, entry.replays, self.consumer)
                (to_park if entry.attempts >= self.max_attempts else claimed).append(leased)
            room = limit - len(claimed) - len(to_park)
            if room > 0:
                group = tables.group(name)
                assert group is not None
                fresh = list(
                    self.store.read_all(after=group.checkpoint, limit=room, category=self.category)
                )
                for event in fresh:
                    tables.add(name, Entry(event.position, 1, 0, self.consumer), until)
                if fresh:
                    tables.set_checkpoint(name, fresh[-1].position)
            next_expiry = tables.next_expiry(name)
        messages = [Message(self._event_at(e.position), e.attempts, e.replays) for e in claimed]
        messages += [Message(event, 1, 0) for event in fresh]
        for entry in to_park:  # leased to us: park outside the transaction (it appends)
            self._park(
                Message(self._event_at(entry.position), entry.attempts - 1, entry.replays),
                f"no ack after {entry.attempts - 1} deliveries (lease expired or nacked)",
            )
        messages.sort(key=lambda m: m.event.position)
        return messages, next_expiry

    def _event_at(self, position: int) -> RecordedEvent:
        return next(self.store.read_all(after=position - 1, limit=1))

    def __iter__(self) -> Iterator[Message]:
        while not self._closed:
            yield from self.fetch(timeout=None)

    # -- settling -------------------------------------------------------------------------

    def ack(self, message: Message) -> None:
        """The message was handled: it will not be delivered again."""
        with self._using, self._tables.transaction(self.group):
            self._tables.remove(self.group, message.event.position)

    def nack(self, message: Message, error: BaseException | str, *, park: bool = False) -> None:
        """Handling failed: deliver again later, or park it (now if ``park``, or once it was
        tried ``max_attempts`` times) with ``error`` in the parked event's metadata."""
        text = error_text(error)
        position = message.event.position
        with self._using, self._tables.transaction(self.group):
            entry = self._tables.entry(self.group, position)
            if entry is None or entry.consumer != self.consumer:
                return  # our lease ran out and someone else holds it now: theirs to settle
            if not park and entry.attempts < self.max_attempts:
                self._tables.release(self.group, position, micros() + self.retry_delay_us, text)
                self._signal.notify()  # a waiting consumer may take it at once
                return
        self._park(message, text)

    def _park(self, message: Message, error: str) -> None:
        try:
            self.store.append(parked_stream(self.group), parked_event(self.group, message, error))
        except DuplicateEventId:
            pass  # parked before, with another error text: it is parked all the same
        with self._using, self._tables.transaction(self.group):
            self._tables.remove(self.group, message.event.position)

    # -- parked messages ------------------------------------------------------------------

    def parked(self) -> list[RecordedEvent]:
        """The events parked by this group (not yet replayed or replayed: the whole stream)."""
        return list(self.store.read_stream(parked_stream(self.group)))

    def replay_parked(self) -> int:
        """Send every parked message not replayed yet through the group again; how many."""
        stream = parked_stream(self.group)
        with self._using, self._tables.transaction(self.group):
            group = self._tables.group(self.group)
            assert group is not None
            start = 0 if group.replayed is None else group.replayed + 1
            parked = list(self.store.read_stream(stream, from_version=start))
            for event in parked:
                meta = event.metadata
                self._tables.add(
                    self.group,
                    Entry(int(meta["$original_position"]), 0, int(meta["$replays"]) + 1, None),
                    0,
                )
            if parked:
                self._tables.set_replayed(self.group, parked[-1].version)
        if parked:
            self._signal.notify()
        return len(parked)

    def parked_count(self) -> int:
        """Messages parked and not replayed yet."""
        with self._using, self._tables.transaction(self.group):
            group = self._tables.group(self.group)
        return unreplayed(self.store.recorder.stream_info(parked_stream(self.group)).version, group)

    @property
    def closed(self) -> bool:
        return self._closed

    def in_flight(self) -> int:
        """Messages handed out and not acked yet (including ones waiting for a retry)."""
        with self._using, self._tables.transaction(self.group):
            return self._tables.in_flight(self.group)

    def levels(self) -> tuple[int, int]:
        """(parked, in flight): what a metrics scrape reads."""
        return self.parked_count(), self.in_flight()

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop this consumer; its unacked messages are redelivered when their leases end."""
        if not self._closed:
            self._closed = True
            live.untrack("subscription", self)
            self._signal.notify()
            with self._using:
                self._tables.close()

    def __enter__(self) -> PersistentSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def error_text(error: BaseException | str) -> str:
    """An error as a parked event records it (bounded)."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_LENGTH]


def parked_event(group: str, message: Message, error: str) -> NewEvent:
    """The event that parks ``message`` in ``$parked-<group>``, with ``error`` and where it
    came from in its metadata. The same parking, retried after a crash, has the same id, so
    the append is idempotent."""
    event = message.event
    metadata: dict[str, Any] = {
        "$error": error,
        "$group": group,
        "$attempts": message.attempt,
        "$replays": message.replays,
        "$original_stream": event.stream,
        "$original_version": event.version,
        "$original_position": event.position,
        "$original_event_id": str(event.id),
        "$original_metadata": dict(event.metadata),
    }
    event_id = uuid.uuid5(_PARKED_IDS, f"{group}/{event.id}/{message.replays}")
    return NewEvent(event.type, event.data, metadata, event_id)


def check_group_category(group: str, found: Group, category: str) -> None:
    """Refuse a consumer of ``group`` for another category than the group's own."""
    if found.category != category:
        raise ProgrammingError(
            f"group {group!r} consumes category {found.category!r}, not {category!r}"
        )


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    """The checked settings of one consumer of a group (sync or asyncio)."""

    group: str
    category: str
    consumer: str
    max_attempts: int
    lease_us: int
    retry_delay_us: int
    batch_size: int

    @classmethod
    def check(
        cls,
        group: str,
        *,
        category: str,
        consumer: str | None,
        max_attempts: int,
        lease_timeout: float,
        retry_delay: float,
        batch_size: int,
    ) -> SubscriptionSettings:
        name = check_stream_name(group, "group name")
        check_stream_name(parked_stream(name), "parked stream name")  # long names
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ProgrammingError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        return cls(
            group=name,
            category=check_stream_name(category, "category"),
            consumer=consumer or default_consumer_name(),
            max_attempts=max_attempts,
            lease_us=int(check_interval(lease_timeout, "lease_timeout") * 1_000_000),
            retry_delay_us=0
            if retry_delay == 0
            else int(check_interval(retry_delay, "retry_delay") * 1_000_000),
            batch_size=check_page_size(batch_size, "batch_size"),
        )

    def limit(self, max_messages: int | None) -> int:
        """How many messages one fetch may claim."""
        if max_messages is None:
            return self.batch_size
        return check_page_size(max_messages, "max_messages")
