"""The asyncio twins: :class:`AsyncService`, :class:`AsyncContext`, :class:`AsyncLocalTransport`.

Same semantics as :mod:`~streamsource.messaging.service`, :mod:`~streamsource.messaging.context`
and :mod:`~streamsource.messaging.local`, over an :class:`~streamsource.AsyncEventStore`:
handlers are coroutine functions (plain functions work too) taking an :class:`AsyncContext`
(``await ctx.load(...)``; ``publish``, ``send``, ``reply`` and ``write`` need no await), and
one transaction commits the inbox row, the aggregates' events, the outbox messages and the
rows. The decisions (refuse, retry, park) and the channel and handler tables are the sync
service's own (:class:`~streamsource.messaging.service.ServiceBase`), so the two cannot
drift. Messages written by sync and asyncio services are the same events.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import TABLE as CHECKPOINTS
from streamsource.errors import InterfaceError, StreamsourceError
from streamsource.eventstore.async_store import AsyncEventStore
from streamsource.eventstore.database import ensure_tables_async, require_database
from streamsource.eventstore.domain.aggregate import Aggregate
from streamsource.eventstore.domain.async_repository import AsyncRepository
from streamsource.eventstore.domain.typed_events import EventRegistry
from streamsource.eventstore.events import AppendResult, RecordedEvent
from streamsource.eventstore.unit_of_work import AsyncUnitOfWork
from streamsource.messaging.context import Appends, ContextBase, channel_of, outbox_category
from streamsource.messaging.envelope import Channels, Envelope
from streamsource.messaging.errors import InvalidMessage
from streamsource.messaging.messages import MessageCodec
from streamsource.messaging.service import Outcome, ServiceBase

log = logging.getLogger("streamsource.messaging")

A = TypeVar("A", bound=Aggregate)


async def append_all_async(tx: AsyncUnitOfWork, appends: Appends) -> list[AppendResult]:
    """:func:`~streamsource.messaging.context.append_all`, awaited."""
    if not appends:
        return []
    if len(appends) == 1:
        stream, events, expected = appends[0]
        return [await tx.append(stream, events, expected)]
    return await tx.append_many(appends)


class AsyncContext(ContextBase):
    """:class:`~streamsource.messaging.Context` for asyncio handlers."""

    service: AsyncService
    tx: AsyncUnitOfWork

    async def load(self, aggregate_type: type[A], id: str) -> A:
        """Load an aggregate; its new events are saved when the handler returns."""
        aggregate = await AsyncRepository(self.service.store, aggregate_type).load(id)
        self._aggregates.append(aggregate)
        return aggregate

    async def flush(self) -> None:
        """Write the collected effects into the transaction (appends first, then rows)."""
        appends, saved = self._appends()
        results = await append_all_async(self.tx, appends)
        for aggregate, result in zip(saved, results, strict=False):
            aggregate._mark_saved(result.version)
        for fn in self._writes:
            done = fn(self.tx)
            if inspect.isawaitable(done):
                await done


class AsyncService(ServiceBase):
    """:class:`~streamsource.messaging.Service` over an asyncio store."""

    def __init__(
        self,
        name: str,
        store: AsyncEventStore,
        *,
        registry: EventRegistry | None = None,
        channels: Channels | None = None,
        codec: MessageCodec | None = None,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
    ) -> None:
        database = require_database(store.recorder, "a messaging service")
        super().__init__(
            name,
            database,
            registry=registry,
            channels=channels,
            codec=codec,
            max_attempts=max_attempts,
            backoff=backoff,
        )
        self.store = store
        self._database = database
        self._ready = False

    async def _ensure_tables(self) -> None:
        if not self._ready:
            await ensure_tables_async(self._database, self._inbox_ddl)
            self._ready = True

    @asynccontextmanager
    async def transaction(
        self, *, correlation_id: str | None = None, traceparent: str | None = None
    ) -> AsyncIterator[AsyncContext]:
        """A context outside any handler; everything commits when the block ends."""
        async with self.store.transaction() as tx:
            ctx = AsyncContext(self, tx, correlation_id=correlation_id, traceparent=traceparent)
            yield ctx
            await ctx.flush()

    async def send(self, command: object, *, to: str, **options: Any) -> Envelope:
        """Send one command in a transaction of its own."""
        async with self.transaction() as ctx:
            return ctx.send(command, to=to, **options)

    async def publish(self, event: object, *, key: str | None = None) -> Envelope:
        """Publish one integration event in a transaction of its own."""
        async with self.transaction() as ctx:
            return ctx.publish(event, key=key)

    async def deliver(self, event: RecordedEvent, channel: str | None = None) -> Outcome:
        """Apply one incoming message exactly once."""
        await self._ensure_tables()
        try:
            envelope = Envelope.of(event)
        except InvalidMessage as exc:
            return await self._settle(event, None, exc, 1, refused=False)
        handler = self._handler_for(channel or envelope.channel, envelope)
        if handler is None:
            missing = self._unhandled(envelope)
            if missing is None:
                return "ignored"
            return await self._settle(event, envelope, missing, 1, refused=False)
        attempt = 0
        while True:
            try:
                with self._span(envelope):
                    return await self._apply(event, envelope, handler)
            except Exception as exc:
                decision = self._decide(envelope, exc, attempt)
                if decision != "retry":
                    refused = decision == "refuse"
                    return await self._settle(event, envelope, exc, attempt + 1, refused=refused)
                delay = self.backoff.delay(attempt)
                self._log_retry(envelope, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _apply(self, event: RecordedEvent, envelope: Envelope, handler: Any) -> Outcome:
        async with self.store.transaction() as tx:
            if await self._seen(tx, event):
                return "duplicate"
            message = self.codec.decode(event.type, event.data, envelope.schema_version)
            ctx = AsyncContext(self, tx, envelope, message)
            result = handler(ctx, message)
            if inspect.isawaitable(result):
                result = await result
            self._answer(ctx, envelope, result)
            await ctx.flush()
            await self._record(tx, event)
        return "handled"

    async def _settle(
        self,
        event: RecordedEvent,
        envelope: Envelope | None,
        exc: Exception,
        attempts: int,
        *,
        refused: bool,
    ) -> Outcome:
        async with self.store.transaction() as tx:
            if await self._seen(tx, event):
                return "duplicate"
            ctx = AsyncContext(self, tx, envelope)
            outcome = self._settle_in(ctx, event, envelope, exc, attempts, refused=refused)
            await ctx.flush()
            await self._record(tx, event)
        return outcome

    async def _seen(self, tx: AsyncUnitOfWork, event: RecordedEvent) -> bool:
        return bool(await tx.execute(self._seen_sql, (self.consumer, self._uuid(event.id))))

    async def _record(self, tx: AsyncUnitOfWork, event: RecordedEvent) -> None:
        inserted = await tx.execute(
            self._record_sql, (self.consumer, self._uuid(event.id), event.position)
        )
        if not inserted:
            raise self._conflict(event)


class AsyncLocalTransport:
    """:class:`~streamsource.messaging.LocalTransport` for :class:`AsyncService` s: the same
    outbox reading, checkpoints (the same table and names) and delivery, as a task."""

    def __init__(
        self,
        services: Sequence[AsyncService],
        *,
        name: str = "local",
        batch_size: int = 500,
        idle_wait: float = 0.005,
        backoff: Backoff | None = None,
    ) -> None:
        names = [service.name for service in services]
        if len(set(names)) != len(names):
            raise InterfaceError(f"two services share a name: {sorted(names)}")
        self.services = list(services)
        self.name = name
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self.backoff = backoff or Backoff()
        self.delivered = 0
        self._ready: set[str] = set()

    async def _checkpoint(self, service: AsyncService, position: int | None = None) -> int:
        """Load the service's checkpoint, or save ``position`` as it."""
        database = service._database
        d = database.dialect
        if service.name not in self._ready:
            await ensure_tables_async(
                database,
                f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (name TEXT PRIMARY KEY,"
                f" position {d.bigint} NOT NULL,"
                f" updated_at {d.timestamp} NOT NULL DEFAULT {d.now})",
            )
            self._ready.add(service.name)
        name = f"messages.{self.name}.{service.name}"
        async with database.transaction() as tx:
            if position is None:
                rows = await tx.execute(
                    f"SELECT position FROM {CHECKPOINTS} WHERE name = {d.placeholder}", (name,)
                )
                return 0 if not rows else int(rows[0][0])
            upsert = d.upsert(CHECKPOINTS, ("name", "position"), ("name",))
            await tx.execute(upsert + f", updated_at = {d.now}", (name, position))
            return position

    async def pump(self) -> int:
        """Deliver one batch of each service's outbox; the number of messages read."""
        moved = 0
        for sender in self.services:
            after = await self._checkpoint(sender)
            last = after
            try:
                events = sender.store.read_category(
                    outbox_category(sender.name), after=after, limit=self._batch_size
                )
                async for event in events:
                    channel = channel_of(event.stream)
                    for receiver in self.services:
                        if receiver.wants(channel):
                            await receiver.deliver(event, channel)
                            self.delivered += 1
                    last = event.position
                    moved += 1
            finally:
                if last != after:
                    await self._checkpoint(sender, last)
        return moved

    async def drain(self, timeout: float = 30.0) -> None:
        """Deliver until no service has an undelivered message; TimeoutError after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while await self.pump():
                pass

    async def run(self) -> None:
        """Deliver until cancelled; store faults that may pass are retried with backoff."""
        attempt = 0
        while True:
            try:
                moved = await self.pump()
                attempt = 0
            except StreamsourceError as exc:
                if not exc.retriable:
                    raise
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("transport %s: %s; retrying in %.2fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            if not moved:
                await asyncio.sleep(self._idle_wait)
