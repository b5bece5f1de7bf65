"""The inbox for asyncio code: an inbox table in the store's own database, and a consumer
whose handlers are coroutines.

:class:`AsyncStoreInbox` keeps the ``streamsource_inbox`` table (the same columns as
:class:`~streamsource.bridge.inbox.SqliteInbox` and ``PostgresInbox``) in the database an
:class:`~streamsource.AsyncEventStore` hands out (:mod:`streamsource.eventstore.database`).
A handler gets that database's transaction: its own rows (``await tx.execute(...)``), the
inbox row and any events it appends (``await tx.append(...)``) commit together or not at
all, so every event takes effect exactly once.

:class:`AsyncInboxConsumer` has the semantics of
:class:`~streamsource.bridge.consumer.InboxConsumer`, because it *is* one underneath: the
Kafka client (librdkafka, whose calls block) runs on a worker thread of its own, and only
each batch's inbox transaction and handlers run on the event loop. A handler that raises
rolls its batch back and the batch comes again; offsets are committed after the
transaction; a redelivered event is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from streamsource.bridge.consumer import InboxConsumer, handle_span, handler_failed
from streamsource.bridge.errors import (
    ConsumerStopped,
    HandlerFailed,
    InboxConflict,
    KafkaClientError,
)
from streamsource.bridge.inbox import _CHUNK, TABLE, _first_unseen, _id_bytes
from streamsource.errors import IntegrityError, StreamsourceError
from streamsource.eventstore.async_store import AsyncEventStore
from streamsource.eventstore.database import AsyncDatabase, AsyncTransaction, require_database
from streamsource.eventstore.events import RecordedEvent
from streamsource.observability import tracing

log = logging.getLogger("streamsource.bridge.consumer")

AsyncHandler = Callable[[RecordedEvent, AsyncTransaction], Awaitable[None]]
"""``await handler(event, tx)``: apply one event, writing through ``tx``."""


class AsyncStoreInbox:
    """An inbox in the database of an asyncio store, with the semantics of
    :class:`~streamsource.bridge.inbox.StoreInbox`: ids are looked up when a batch is
    claimed and inserted after its handlers ran (so on PostgreSQL, where a transaction
    appends once and first, a handler may append: the consumer then applies
    ``events_per_transaction`` events per transaction); a member that applied the same id at
    the same moment makes this transaction roll back with a retriable
    :class:`~streamsource.bridge.errors.InboxConflict`, and the retry skips the event."""

    def __init__(self, store: AsyncEventStore) -> None:
        database: AsyncDatabase = require_database(store.recorder, "an inbox in the store")
        self._database = database
        d = database.dialect
        self._dialect = d
        self.events_per_transaction = d.appends_per_transaction
        self._create = (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (consumer TEXT NOT NULL,"
            f" event_id {d.uuid} NOT NULL, position {d.bigint} NOT NULL,"
            f" received_at {d.timestamp} NOT NULL DEFAULT {d.now},"
            f" PRIMARY KEY (consumer, event_id)){d.without_rowid}"
        )
        self._insert = (
            d.insert_or_ignore(TABLE, ("consumer", "event_id", "position")) + " RETURNING event_id"
        )
        self._applied = f"SELECT count(*) FROM {TABLE} WHERE consumer = {d.placeholder}"
        self._pending: dict[int, tuple[str, list[RecordedEvent]]] = {}
        self._ready = False

    async def _create_table(self) -> None:
        if self._ready:
            return
        for attempt in (1, 2):  # racing creators: see database.ensure_tables
            try:
                async with self._database.transaction() as tx:
                    await tx.execute(self._create)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self._ready = True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """A transaction of the store's database; records the claimed ids and commits when
        the block ends."""
        await self._create_table()
        async with self._database.transaction() as tx:
            self._pending[id(tx)] = ("", [])
            try:
                yield tx
                consumer, new = self._pending[id(tx)]
                await self._record(tx, consumer, new)
            finally:
                del self._pending[id(tx)]

    async def claim(
        self, tx: AsyncTransaction, consumer: str, events: Sequence[RecordedEvent]
    ) -> list[RecordedEvent]:
        """The events of ``events`` that ``consumer`` has not applied, in order, each id
        once; their ids are recorded when the transaction ends."""
        d = self._dialect
        ids = [d.uuid_value(event.id) for event in events]
        seen: set[bytes] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = await tx.execute(
                f"SELECT event_id FROM {TABLE} WHERE consumer = {d.placeholder}"
                f" AND event_id IN ({d.marks(len(chunk))})",
                (consumer, *chunk),
            )
            seen.update(_id_bytes(row[0]) for row in rows)
        new = _first_unseen(events, [event.id.bytes for event in events], seen)
        self._pending[id(tx)] = (consumer, new)
        return new

    async def _record(self, tx: AsyncTransaction, consumer: str, new: list[RecordedEvent]) -> None:
        d = self._dialect
        for event in new:
            params = (consumer, d.uuid_value(event.id), event.position)
            if not await tx.execute(self._insert, params):
                raise InboxConflict(
                    f"inbox {consumer}: event {event.id} was applied by another member at the"
                    " same time; this batch rolls back and is tried again"
                )

    async def applied(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has applied."""
        await self._create_table()
        async with self._database.transaction() as tx:
            rows = await tx.execute(self._applied, (consumer,))
        return int(rows[0][0])


class _LoopMember(InboxConsumer):
    """The Kafka side of an AsyncInboxConsumer: on its worker thread, with each batch's
    transaction handed to the event loop."""

    def __init__(self, owner: AsyncInboxConsumer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def _apply_events(self, events: list[RecordedEvent]) -> int:
        work = self._owner._apply_traced(events, self._trace_parents)
        try:
            return asyncio.run_coroutine_threadsafe(work, self._owner.loop).result()
        finally:
            self._trace_parents.clear()


def _not_called(event: RecordedEvent, tx: Any) -> None:
    raise AssertionError("the asyncio consumer applies events on its event loop")


class AsyncInboxConsumer:
    """Consumes ``topics`` as a member of ``group_id`` and applies events through ``inbox``
    with the coroutine ``handler`` (see :class:`~streamsource.bridge.consumer.InboxConsumer`
    for the settings)."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        handler: AsyncHandler,
        inbox: AsyncStoreInbox,
        *,
        name: str | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        poll_timeout: float = 0.05,
    ) -> None:
        self.handler = handler
        self.inbox = inbox
        self._member = _LoopMember(
            self,
            bootstrap,
            group_id,
            topics,
            _not_called,
            _NoSyncInbox(inbox.events_per_transaction),
            name=name,
            consumer_config=consumer_config,
            batch_size=batch_size,
            poll_timeout=poll_timeout,
        )
        self.name = self._member.name
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"inbox-{self.name}")
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    @property
    def handled(self) -> int:
        """Events applied by this member."""
        return self._member.handled

    @property
    def skipped(self) -> int:
        """Redeliveries the inbox recognised."""
        return self._member.skipped

    async def _on_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._worker, function, *args)

    async def poll(self, timeout: float | None = None) -> int:
        """Poll one batch, apply it and commit; the number of messages in it (see the sync
        ``poll``: a failure leaves the batch to be tried again)."""
        polled: int = await self._on_worker(self._member.poll, timeout)
        return polled

    async def apply(self, events: list[RecordedEvent]) -> int:
        """Claim ``events`` and handle the new ones in one transaction; how many were new."""
        return await self._apply_traced(events, {})

    async def _apply_traced(
        self, events: list[RecordedEvent], parents: Mapping[uuid.UUID, str]
    ) -> int:
        """``apply``, each handler call in a ``streamsource.inbox.handle`` span (tracing on)
        whose parent is the event's message's ``traceparent`` in ``parents`` by event id,
        else its metadata's (as the sync consumer does)."""
        async with self.inbox.transaction() as tx:
            new = await self.inbox.claim(tx, self.name, events)
            for event in new:
                try:
                    if tracing.TRACER is None:
                        await self.handler(event, tx)
                    else:
                        with handle_span(self.name, event, parents):
                            await self.handler(event, tx)
                except Exception as exc:
                    raise handler_failed(self.name, event, exc) from exc
        return len(new)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll and apply until ``stop`` is set (or the task is cancelled), then leave the
        group. As the sync ``run``: retriable faults are retried after the member's capped
        exponential backoff with full jitter, anything else raises
        :class:`~streamsource.bridge.errors.ConsumerStopped` naming the cause."""
        stop = stop or asyncio.Event()
        member = self._member
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    await self.poll()
                    attempt = 0
                except StreamsourceError as exc:
                    if not exc.retriable or isinstance(exc, HandlerFailed):
                        raise ConsumerStopped(f"consumer {self.name} stopped: {exc}", exc) from exc
                    if isinstance(exc, KafkaClientError):
                        await self.close()  # a fatal client state needs a new consumer
                    delay = member.backoff.delay(attempt)
                    attempt += 1
                    member.retries += 1
                    log.warning("consumer %s: %s; retrying in %.2fs", self.name, exc, delay)
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                    except TimeoutError:
                        pass
        finally:
            await self.close()

    async def close(self) -> None:
        """Leave the group and close the Kafka consumer (committed offsets stay)."""
        await self._on_worker(self._member.close)

    async def __aenter__(self) -> AsyncInboxConsumer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
        self._worker.shutdown(wait=False)


class _NoSyncInbox:
    """Stands in for the sync inbox the Kafka side never uses (the loop applies batches);
    it tells the Kafka side how many events go in one transaction."""

    def __init__(self, events_per_transaction: int | None) -> None:
        self.events_per_transaction = events_per_transaction

    def transaction(self) -> Any:
        raise AssertionError("the asyncio consumer applies events on its event loop")

    def claim(self, tx: Any, consumer: str, events: Sequence[RecordedEvent]) -> list[Any]:
        raise AssertionError("the asyncio consumer applies events on its event loop")

    def close(self) -> None:
        pass
