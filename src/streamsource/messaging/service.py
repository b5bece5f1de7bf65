"""``Service``: a named part of a system with its own store, its handlers and its channels.

A transport hands each incoming message (an outbox event of another service, read from its
store or from Kafka) to :meth:`Service.deliver`, which applies it exactly once: in ONE
transaction of the service's store it checks the inbox, runs the handler, writes the
handler's effects (:mod:`~streamsource.messaging.context`) and records the message id in the
inbox table (``streamsource_inbox``, consumer ``messages.{service}``). A redelivered message
(a crash before the transport's checkpoint or Kafka offset moved) finds its inbox row and is
skipped. On SQLite the row is inserted first (its conflict says "seen": one statement, and
write transactions run one at a time); on PostgreSQL, where appends come first, it is looked
up first and inserted last.

Failures (see :mod:`~streamsource.messaging.errors`): a business refusal answers a command
with a ``Failure(refused=True)`` reply; a retriable fault is tried again up to
``max_attempts`` times with capped exponential backoff; after that, or at once for any other
error, the message is parked as a dead letter (an outbox stream of its own, published to the
``dead-letters`` topic on Kafka) carrying the error, a command is answered with
``Failure(refused=False)``, and the inbox row is written, all in one transaction. A fault of
the store itself (the database away) propagates to the transport, which backs off and
delivers the message again.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, TypeVar, overload

from streamsource.bridge.backoff import Backoff
from streamsource.bridge.errors import InboxConflict
from streamsource.bridge.inbox import TABLE as INBOX_TABLE
from streamsource.errors import DomainError, ProgrammingError
from streamsource.eventstore.database import ensure_tables, require_database
from streamsource.eventstore.domain.typed_events import EventRegistry, default_registry
from streamsource.eventstore.event_ids import new_event_id
from streamsource.eventstore.events import NewEvent, RecordedEvent
from streamsource.eventstore.store import EventStore
from streamsource.messaging.context import Context, ContextBase, outbox_stream
from streamsource.messaging.envelope import DEAD_LETTER, KIND, Channels, Envelope, now
from streamsource.messaging.errors import HandlerConflict, InvalidMessage
from streamsource.messaging.messages import (
    Failure,
    MessageCodec,
    RegistryCodec,
    Reply,
    Success,
    kind_of,
)
from streamsource.observability import tracing

log = logging.getLogger("streamsource.messaging")

Handler = Callable[[Any, Any], Any]
"""``handler(ctx, message)`` (a :class:`Context`, or an ``AsyncContext`` for an
``AsyncService``, whose handlers may be coroutine functions); a command handler may return
its Reply."""

H = TypeVar("H", bound=Handler)

Outcome = Literal["handled", "duplicate", "ignored", "refused", "dead-lettered"]

_MAX_ERROR = 4000  # characters of an error kept with a dead letter or a failure reply


def _check_service_name(name: str) -> str:
    if not isinstance(name, str) or not name or "-" in name or len(name) > 100:
        raise ProgrammingError(
            f"service name {name!r} must be 1-100 characters without '-'"
            " (it is the category of the service's outbox streams)"
        )
    return name


Decision = Literal["refuse", "retry", "park"]


class ServiceBase:
    """What the sync :class:`Service` and the asyncio
    :class:`~streamsource.messaging.async_service.AsyncService` share: the name, channels and
    codec, the handler table, and the rules that decide what a failure leads to."""

    def __init__(
        self,
        name: str,
        database: Any,
        *,
        registry: EventRegistry | None = None,
        channels: Channels | None = None,
        codec: MessageCodec | None = None,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = _check_service_name(name)
        self.channels = channels or Channels()
        self.codec: MessageCodec = codec or RegistryCodec(registry or default_registry)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ProgrammingError(f"max_attempts must be an int >= 1, not {max_attempts!r}")
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(base=0.05, cap=2.0)
        self.consumer = f"messages.{name}"
        d = database.dialect
        self._inbox_ddl = (
            f"CREATE TABLE IF NOT EXISTS {INBOX_TABLE} (consumer TEXT NOT NULL,"
            f" event_id {d.uuid} NOT NULL, position {d.bigint} NOT NULL,"
            f" received_at {d.timestamp} NOT NULL DEFAULT {d.now},"
            f" PRIMARY KEY (consumer, event_id)){d.without_rowid}"
        )  # the bridge's inbox table: the same rows as StoreInbox writes
        self._seen_sql = (
            f"SELECT 1 FROM {INBOX_TABLE} WHERE consumer = {d.placeholder}"
            f" AND event_id = {d.placeholder}"
        )
        self._record_sql = (
            d.insert_or_ignore(INBOX_TABLE, ("consumer", "event_id", "position"))
            + " RETURNING event_id"
        )
        self._uuid = d.uuid_value
        self._handlers: dict[tuple[str, str], Handler] = {}  # (channel, name)
        self._reply_handlers: dict[str, Handler] = {}  # name, on any reply channel
        self._catch_all: dict[str, Handler] = {}  # channel
        self._channels: set[str] = set()

    # -- registration ----------------------------------------------------------------------

    @overload
    def handle(
        self, message_type: type[Any], handler: None = None, *, source: str | None = None
    ) -> Callable[[H], H]: ...

    @overload
    def handle(self, message_type: type[Any], handler: H, *, source: str | None = None) -> H: ...

    def handle(
        self, message_type: type[Any], handler: H | None = None, *, source: str | None = None
    ) -> Any:
        """Register ``handler(ctx, message)`` for a message class (usable as a decorator).

        Commands are received on this service's commands channel, replies on its replies
        channels, integration events on the events channel of service ``source``.
        """
        kind = kind_of(message_type)
        name = self.codec.name_of(message_type)
        if kind == "event":
            if source is None:
                raise HandlerConflict(f"an event handler of {name} needs source= (a service)")
            channel = self.channels.events(source)
        elif source is not None:
            raise HandlerConflict(f"source= is for event handlers, {name} is a {kind}")
        elif kind == "command":
            channel = self.channels.commands(self.name)
        else:
            channel = self.channels.replies(self.name)

        def register(fn: H) -> H:
            if kind == "reply":
                if name in self._reply_handlers:
                    raise HandlerConflict(f"service {self.name} already handles reply {name}")
                self._reply_handlers[name] = fn
            else:
                if (channel, name) in self._handlers:
                    raise HandlerConflict(f"service {self.name} already handles {name}")
                self._handlers[(channel, name)] = fn
            self._channels.add(channel)
            return fn

        return register if handler is None else register(handler)

    def handle_replies(self, handler: Handler, *, label: str | None = None) -> str:
        """Receive every reply on a replies channel that no :meth:`handle` registration
        takes; returns the channel (pass ``label`` as ``reply_label`` when sending)."""
        channel = self.channels.replies(self.name, label)
        if channel in self._catch_all:
            raise HandlerConflict(f"service {self.name} already handles the replies of {channel}")
        self._catch_all[channel] = handler
        self._channels.add(channel)
        return channel

    def inbound_channels(self) -> list[str]:
        """The channels this service receives messages on (its Kafka subscriptions)."""
        return sorted(self._channels)

    def wants(self, channel: str) -> bool:
        """Whether this service receives messages on ``channel``."""
        return channel in self._channels

    def ignores(self, event: RecordedEvent, channel: str) -> bool:
        """Whether delivering ``event`` on ``channel`` would only return ``"ignored"`` (an
        integration event this service has no handler for): a transport skips it without
        a transaction. A third of what the mall's services receive is such events."""
        if event.metadata.get(KIND) != "event" or (channel, event.type) in self._handlers:
            return False
        try:
            Envelope.of(event)
        except InvalidMessage:
            return False  # delivered, to be parked
        return True

    def _handler_for(self, channel: str, envelope: Envelope) -> Handler | None:
        handler = self._handlers.get((channel, envelope.name))
        if handler is None and envelope.kind == "reply":
            handler = self._reply_handlers.get(envelope.name) or self._catch_all.get(channel)
        return handler

    def _decide(self, envelope: Envelope, exc: Exception, attempt: int) -> Decision:
        """What a handler's ``exc`` on try ``attempt`` (0 for the first) leads to."""
        if isinstance(exc, DomainError):
            return "refuse" if envelope.kind == "command" else "park"
        if getattr(exc, "retriable", False) and attempt + 1 < self.max_attempts:
            return "retry"
        return "park"

    def _unhandled(self, envelope: Envelope) -> Exception | None:
        """The error to park a message with that no handler takes (None: ignore it)."""
        if envelope.kind == "event":
            return None  # an event type this service does not react to
        return InvalidMessage(f"service {self.name} has no handler for {envelope.name}")

    def _dead_letter(
        self, event: RecordedEvent, exc: Exception, attempts: int
    ) -> tuple[str, NewEvent]:
        details = {
            "message_id": str(event.id),
            "service": self.name,
            "error": _text(exc),
            "error_type": type(exc).__qualname__,
            "attempts": attempts,
            "failed_at": now().isoformat(),
        }
        metadata = {**event.metadata, DEAD_LETTER: details}
        stream = outbox_stream(self.name, self.channels.dead_letters(self.name))
        return stream, NewEvent(event.type, event.data, metadata=metadata, id=new_event_id())

    def _span(self, envelope: Envelope) -> AbstractContextManager[Any]:
        """The span of handling ``envelope`` (a child of its traceparent; nothing when
        tracing is off)."""
        return tracing.span(
            "streamsource.messaging.handle",
            parent=envelope.traceparent,
            kind="CONSUMER",
            attributes={
                "messaging.destination.name": envelope.channel,
                "messaging.message.id": envelope.message_id,
                "streamsource.message.name": envelope.name,
                "streamsource.service": self.name,
            },
        )

    def _answer(self, ctx: ContextBase, envelope: Envelope, result: Any) -> None:
        """Reply to a command whose handler did not: its returned Reply, or Success."""
        if envelope.kind == "command" and envelope.reply_to and not ctx.replied:
            ctx.reply(result if isinstance(result, Reply) else Success())

    def _settle_in(
        self,
        ctx: ContextBase,
        event: RecordedEvent,
        envelope: Envelope | None,
        exc: Exception,
        attempts: int,
        *,
        refused: bool,
    ) -> Outcome:
        """Fill ``ctx`` with a refusal's Failure reply, or a dead letter (and a fault
        Failure for a command)."""
        answer = envelope is not None and envelope.kind == "command" and bool(envelope.reply_to)
        if refused:
            log.info("service %s: %s refused: %s", self.name, event.type, exc)
            if answer:
                ctx.reply(Failure(reason=_text(exc), refused=True))
            return "refused"
        self._log_park(event, exc, attempts)
        if answer:
            ctx.reply(Failure(reason=_text(exc), refused=False))
        ctx.add_outgoing(*self._dead_letter(event, exc, attempts))
        return "dead-lettered"

    def _log_retry(self, envelope: Envelope, exc: Exception, delay: float) -> None:
        log.info(
            "service %s: %s %s failed (%s); retrying in %.2fs",
            self.name, envelope.name, envelope.message_id, exc, delay,
        )  # fmt: skip

    def _log_park(self, event: RecordedEvent, exc: Exception, attempts: int) -> None:
        log.warning(
            "service %s: message %s (%s) dead-lettered after %d attempt(s): %r",
            self.name, event.id, event.type, attempts, exc,
        )  # fmt: skip

    def _conflict(self, event: RecordedEvent) -> InboxConflict:
        return InboxConflict(
            f"service {self.name}: message {event.id} was applied by another member at"
            " the same time; this transaction rolls back and is tried again"
        )

    def __repr__(self) -> str:
        return f"Service({self.name!r})"


class Service(ServiceBase):
    """A service named ``name`` whose state, outbox and inbox live in ``store``.

    ``registry`` holds its message (and event) classes (default: the default registry);
    ``channels`` names the topics (e.g. ``Channels("mall")``); ``codec`` replaces JSON
    encoding through the registry. Retriable faults are tried ``max_attempts`` times in
    all, waiting per ``backoff`` in between.
    """

    def __init__(
        self,
        name: str,
        store: EventStore,
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
        ensure_tables(database, self._inbox_ddl)
        # Where write transactions run one at a time and an append need not come first
        # (SQLite), the inbox row is inserted first: finding it there means the message
        # was applied by a transaction that committed. Elsewhere (PostgreSQL: appends
        # first) the row is looked up first and written last.
        dialect = database.dialect
        self._claim_first = dialect.single_writer and dialect.appends_per_transaction is None
        self._sleep: Callable[[float], None] = time.sleep

    # -- sending outside a handler ---------------------------------------------------------

    @contextmanager
    def transaction(
        self, *, correlation_id: str | None = None, traceparent: str | None = None
    ) -> Iterator[Context]:
        """A context outside any handler (an HTTP endpoint, a script): load and change
        aggregates, publish, send; everything commits together when the block ends."""
        with self.store.transaction() as tx:
            ctx = Context(self, tx, correlation_id=correlation_id, traceparent=traceparent)
            yield ctx
            ctx.flush()

    def send(self, command: object, *, to: str, **options: Any) -> Envelope:
        """Send one command in a transaction of its own (see :meth:`Context.send`)."""
        with self.transaction() as ctx:
            return ctx.send(command, to=to, **options)

    def publish(self, event: object, *, key: str | None = None) -> Envelope:
        """Publish one integration event in a transaction of its own."""
        with self.transaction() as ctx:
            return ctx.publish(event, key=key)

    # -- receiving -------------------------------------------------------------------------

    def deliver(self, event: RecordedEvent, channel: str | None = None) -> Outcome:
        """Apply one incoming message exactly once (see the module docstring)."""
        try:
            envelope = Envelope.of(event)
        except InvalidMessage as exc:
            return self._settle(event, None, exc, 1, refused=False)
        handler = self._handler_for(channel or envelope.channel, envelope)
        if handler is None:
            missing = self._unhandled(envelope)
            if missing is None:
                return "ignored"
            return self._settle(event, envelope, missing, 1, refused=False)
        attempt = 0
        while True:
            try:
                with self._span(envelope):
                    return self._apply(event, envelope, handler)
            except Exception as exc:
                decision = self._decide(envelope, exc, attempt)
                if decision != "retry":
                    refused = decision == "refuse"
                    return self._settle(event, envelope, exc, attempt + 1, refused=refused)
                delay = self.backoff.delay(attempt)
                self._log_retry(envelope, exc, delay)
                attempt += 1
                self._sleep(delay)

    def deliver_batch(self, batch: Sequence[tuple[RecordedEvent, str | None]]) -> list[Outcome]:
        """Apply several incoming messages ``(event, channel)`` in order, each exactly once,
        as :meth:`deliver` would, one outcome each.

        Where the inbox row is claimed first (SQLite), they are handled in ONE transaction:
        one commit (and fsync) for all, and each handler reads what the ones before it wrote
        (a store's reads inside its transaction run on that transaction). If anything in it
        fails (a handler raising, a refusal, a fault, a message that needs parking), nothing
        of it is written and every message is delivered again on its own, where
        :meth:`deliver`'s retries, refusals and dead letters apply. Elsewhere, one
        transaction per message.
        """
        if len(batch) < 2 or not self._claim_first:
            return [self.deliver(event, channel) for event, channel in batch]
        return self.prepare_batch(batch).commit()

    def prepare_batch(self, batch: Sequence[tuple[RecordedEvent, str | None]]) -> PreparedBatch:
        """:meth:`deliver_batch` in two steps: this one runs the handlers in a transaction
        and leaves it open, holding the store's write lock; the returned batch's
        :meth:`~PreparedBatch.commit` (on any thread, called exactly once) commits it and
        returns the outcomes. Why: a transport delivering to several services' stores runs
        every handler on one thread and lets the commits (their fsyncs) overlap on others.
        Where batches are not handled in one transaction (PostgreSQL), this delivers
        them at once and ``commit`` only returns the outcomes."""
        context = contextvars.copy_context()  # the transaction's, wherever it ends
        if not self._claim_first:
            return PreparedBatch(
                self, batch, context, outcomes=context.run(self.deliver_batch, batch)
            )
        steps = self._apply_together(batch)
        try:
            context.run(next, steps)  # the handlers ran; the transaction is open
        except Exception as exc:
            return PreparedBatch(self, batch, context, failure=exc)
        return PreparedBatch(self, batch, context, steps=steps)

    def _apply_together(
        self, batch: Sequence[tuple[RecordedEvent, str | None]]
    ) -> Generator[None, None, list[Outcome]]:
        """Handles ``batch`` in one transaction, stops before its commit (the first
        ``next``), commits when resumed and returns the outcomes."""
        outcomes: list[Outcome] = []
        with self.store.transaction() as tx:
            for event, channel in batch:
                envelope = Envelope.of(event)  # InvalidMessage: parked on its own
                handler = self._handler_for(channel or envelope.channel, envelope)
                if handler is None:
                    if self._unhandled(envelope) is not None:
                        raise _Alone(f"no handler for {envelope.name}")
                    outcomes.append("ignored")
                    continue
                if not self._claim(tx, event):
                    outcomes.append("duplicate")
                    continue
                with self._span(envelope):
                    message = self.codec.decode(event.type, event.data, envelope.schema_version)
                    ctx = Context(self, tx, envelope, message)
                    self._answer(ctx, envelope, handler(ctx, message))
                    ctx.flush()
                outcomes.append("handled")
            yield
        return outcomes

    def park(self, event: RecordedEvent, error: Exception) -> Outcome:
        """Park a message that cannot be handled at all (e.g. unreadable) with ``error``."""
        return self._settle(event, None, error, 1, refused=False)

    def _apply(self, event: RecordedEvent, envelope: Envelope, handler: Handler) -> Outcome:
        with self.store.transaction() as tx:
            if not self._claim(tx, event):
                return "duplicate"
            message = self.codec.decode(event.type, event.data, envelope.schema_version)
            ctx = Context(self, tx, envelope, message)
            result = handler(ctx, message)
            self._answer(ctx, envelope, result)
            ctx.flush()
            self._record(tx, event)
        return "handled"

    def _settle(
        self,
        event: RecordedEvent,
        envelope: Envelope | None,
        exc: Exception,
        attempts: int,
        *,
        refused: bool,
    ) -> Outcome:
        """The handler's effects are gone: answer a refusal, or park the message."""
        with self.store.transaction() as tx:
            if not self._claim(tx, event):
                return "duplicate"
            ctx = Context(self, tx, envelope)
            outcome = self._settle_in(ctx, event, envelope, exc, attempts, refused=refused)
            ctx.flush()
            self._record(tx, event)
        return outcome

    def _claim(self, tx: Any, event: RecordedEvent) -> bool:
        """Whether ``event`` is new to this service: its inbox row is written now where
        that may come first (one statement instead of a look and a write), else looked up."""
        if self._claim_first:
            return self._insert(tx, event)
        return not tx.execute(self._seen_sql, (self.consumer, self._uuid(event.id)))

    def _record(self, tx: Any, event: RecordedEvent) -> None:
        if not self._claim_first and not self._insert(tx, event):
            raise self._conflict(event)

    def _insert(self, tx: Any, event: RecordedEvent) -> bool:
        params = (self.consumer, self._uuid(event.id), event.position)
        return bool(tx.execute(self._record_sql, params))


class PreparedBatch:
    """A batch of messages handled in a transaction not yet committed (see
    :meth:`Service.prepare_batch`)."""

    def __init__(
        self,
        service: Service,
        batch: Sequence[tuple[RecordedEvent, str | None]],
        context: contextvars.Context,
        *,
        steps: Generator[None, None, list[Outcome]] | None = None,
        failure: Exception | None = None,
        outcomes: list[Outcome] | None = None,
    ) -> None:
        self._service = service
        self._batch = batch
        self._context = context
        self._steps = steps
        self._failure = failure
        self._outcomes = outcomes

    def commit(self) -> list[Outcome]:
        """Commit the batch; its outcomes. If anything of it failed (a handler, the
        commit), nothing of it is written and each message is delivered on its own."""
        if self._outcomes is not None:
            return self._outcomes
        steps, self._steps = self._steps, None
        if steps is not None:
            try:
                self._context.run(next, steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            except Exception as exc:
                self._failure = exc
        service = self._service
        log.debug(
            "service %s: a batch of %d failed together (%r)",
            service.name, len(self._batch), self._failure,
        )  # fmt: skip
        return [self._context.run(service.deliver, e, c) for e, c in self._batch]

    def abandon(self) -> None:
        """Roll the batch back (nothing of it is written)."""
        steps, self._steps = self._steps, None
        if steps is not None:
            self._context.run(steps.close)


def deliver_shares(
    parts: Sequence[tuple[Service, Sequence[tuple[RecordedEvent, str | None]]]],
    committers: Callable[[], ThreadPoolExecutor],
) -> int:
    """Deliver each ``(service, batch)`` of ``parts`` in one transaction of that service,
    in order: every handler runs on this thread, each transaction's commit (its fsync) but
    the last on a thread of ``committers()``, overlapping the next service's handlers and
    the other commits. Returns once all of them ended: the messages delivered, or the
    first failure raised (after the others' commits ended; what committed stays, and the
    inboxes skip it when the messages come again). Two parts of one service in a row wait
    for the first's commit: its store is not free before."""
    commits: list[Future[list[Outcome]]] = []
    delivered = 0
    try:
        for index, (service, batch) in enumerate(parts):
            if commits and parts[index - 1][0] is service:
                commits[-1].result()
            if index == len(parts) - 1:
                delivered += len(service.deliver_batch(batch))
                break
            prepared = service.prepare_batch(batch)
            try:
                commits.append(committers().submit(prepared.commit))
            except BaseException:
                prepared.abandon()
                raise
    finally:
        wait(commits)
    return delivered + sum(len(commit.result()) for commit in commits)


class _Alone(Exception):
    """A message of a batch that must be delivered on its own (e.g. to be parked)."""


def _text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__qualname__
    return text[:_MAX_ERROR]
