"""The handler context: what a handler (or an API call) does inside its one transaction.

A :class:`Context` collects the handler's effects and writes them when the handler returns,
in the transaction that also records the incoming message in the inbox:

1. the events of the aggregates it loaded or created, each with the version it was loaded at
   as the expected version (a concurrent change fails the transaction with a retriable
   ``WrongExpectedVersion``, and the message is handled again on fresh state);
2. the outgoing messages, appended to the service's outbox streams
   (``messages.{service}-{channel}``): the store is the outbox;
3. the rows registered with :meth:`Context.write` (the saga engine's state, a scheduler's
   deadlines), then the inbox row.

Appends come first and all together (one ``tx.append_many``): on every backend a
transaction's appends are its first write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from streamsource.eventstore.domain import core
from streamsource.eventstore.domain.aggregate import Aggregate
from streamsource.eventstore.domain.causation import Causation
from streamsource.eventstore.domain.repository import Repository
from streamsource.eventstore.event_ids import new_event_id
from streamsource.eventstore.events import ANY, AppendResult, ExpectedVersion, NewEvent
from streamsource.eventstore.unit_of_work import UnitOfWork
from streamsource.messaging.envelope import Envelope, now
from streamsource.messaging.errors import InvalidMessage
from streamsource.messaging.messages import Kind, Reply, kind_of
from streamsource.observability import tracing

if TYPE_CHECKING:
    from streamsource.messaging.service import Service, ServiceBase

A = TypeVar("A", bound=Aggregate)

OUTBOX_PREFIX = "messages."


def outbox_category(service: str) -> str:
    """The stream category of a service's outgoing messages."""
    return OUTBOX_PREFIX + service


def outbox_stream(service: str, channel: str) -> str:
    """The outbox stream of a service's messages to one channel (in the order they commit)."""
    return f"{outbox_category(service)}-{channel}"


def channel_of(stream: str) -> str:
    """The channel an outbox stream's messages go to."""
    return stream.split("-", 1)[1]


Appends = list[tuple[str, list[NewEvent], ExpectedVersion]]


def append_all(tx: UnitOfWork, appends: Appends) -> list[AppendResult]:
    """Append to several streams in ``tx`` in one call (the transaction's first write)."""
    if not appends:
        return []
    if len(appends) == 1:
        stream, events, expected = appends[0]
        return [tx.append(stream, events, expected)]
    return tx.append_many(appends)


class ContextBase:
    """What the sync :class:`Context` and the asyncio ``AsyncContext`` share: collecting
    outgoing messages and row writes (no I/O)."""

    def __init__(
        self,
        service: ServiceBase,
        tx: Any,
        envelope: Envelope | None = None,
        message: Any = None,
        *,
        correlation_id: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        self.service = service
        self.tx = tx
        self.envelope = envelope
        self.message = message
        self._correlation_id = correlation_id
        # the handler's span when tracing is on (a child of the incoming message's), else the
        # incoming message's own: outgoing messages continue the trace
        self._explicit_traceparent = traceparent
        self._traceparent = (
            traceparent
            or tracing.current_traceparent()
            or (envelope.traceparent if envelope else None)
        )
        self._aggregates: list[Aggregate] = []
        self._outgoing: dict[str, list[NewEvent]] = {}
        self._writes: list[Callable[[Any], Any]] = []
        self.sent: list[Envelope] = []
        self.replied = False

    def create(self, aggregate_type: type[A], id: str) -> A:
        """A new aggregate (its stream must not exist yet), saved when the handler returns."""
        aggregate = core.new_aggregate(aggregate_type, id)
        self._aggregates.append(aggregate)
        return aggregate

    # -- outgoing messages -----------------------------------------------------------------

    def publish(self, event: object, *, key: str | None = None) -> Envelope:
        """Publish an integration event on this service's events channel."""
        return self._emit(event, "event", self.service.channels.events(self.service.name), key)

    def send(
        self,
        command: object,
        *,
        to: str,
        reply_label: str | None = None,
        key: str | None = None,
        saga_id: str | None = None,
        saga_name: str | None = None,
    ) -> Envelope:
        """Send a command to service ``to``; its reply comes back on this service's replies
        channel (``reply_label``: a labelled one, see ``Service.handle_replies``)."""
        channels = self.service.channels
        return self._emit(
            command,
            "command",
            channels.commands(to),
            key,
            reply_to=channels.replies(self.service.name, reply_label),
            saga_id=saga_id,
            saga_name=saga_name,
        )

    def reply(self, reply: Reply) -> Envelope:
        """Answer the command being handled (on the channel it named)."""
        incoming = self.envelope
        if incoming is None or incoming.kind != "command" or incoming.reply_to is None:
            raise InvalidMessage("reply() answers a command that named a reply channel")
        if self.replied:
            raise InvalidMessage(f"command {incoming.message_id} was already answered")
        self.replied = True
        return self._emit(
            reply,
            "reply",
            incoming.reply_to,
            incoming.key,
            saga_id=incoming.saga_id,
            saga_name=incoming.saga_name,
        )

    def write(self, fn: Callable[[Any], Any]) -> None:
        """Run ``fn(tx)`` after the appends, in this transaction (rows of your own; with
        an AsyncContext, ``fn`` may be a coroutine function)."""
        self._writes.append(fn)

    # -- internals -------------------------------------------------------------------------

    def causation(self) -> Causation:
        incoming = self.envelope
        if incoming is not None:
            return Causation(incoming.correlation_id, incoming.message_id)
        correlation = self._correlation_id or str(new_event_id())
        self._correlation_id = correlation
        return Causation(correlation, correlation)

    def _emit(
        self,
        message: object,
        kind: Kind,
        channel: str,
        key: str | None,
        *,
        reply_to: str | None = None,
        saga_id: str | None = None,
        saga_name: str | None = None,
    ) -> Envelope:
        actual = kind_of(type(message))
        if actual != kind:
            raise InvalidMessage(f"{type(message).__qualname__} is a {actual}, not a {kind}")
        name, data, version = self.service.codec.encode(message)
        message_id = new_event_id()
        incoming = self.envelope
        if incoming is not None:
            correlation, causation = incoming.correlation_id, incoming.message_id
        else:
            correlation = self._correlation_id or str(message_id)
            self._correlation_id = correlation
            causation = None
        envelope = Envelope(
            message_id=str(message_id),
            name=name,
            kind=kind,
            channel=channel,
            source=self.service.name,
            correlation_id=correlation,
            causation_id=causation,
            reply_to=reply_to,
            saga_id=saga_id,
            saga_name=saga_name,
            sent_at=now(),
            # the span current now (a saga step's, within the handler's) if tracing is on
            traceparent=self._explicit_traceparent
            or tracing.current_traceparent()
            or self._traceparent,
            key=key or correlation,
            schema_version=version,
        )
        stream = outbox_stream(self.service.name, channel)
        self.add_outgoing(stream, NewEvent(name, data, metadata=envelope.metadata(), id=message_id))
        self.sent.append(envelope)
        return envelope

    def add_outgoing(self, stream: str, record: NewEvent) -> None:
        """Append an already encoded message to one of the service's outbox streams."""
        self._outgoing.setdefault(stream, []).append(record)

    def _appends(self) -> tuple[Appends, list[Aggregate]]:
        """The appends the effects need (aggregates first), and the aggregates they save."""
        causation = self.causation()
        appends: Appends = []
        saved: list[Aggregate] = []
        for aggregate in self._aggregates:
            registry = type(aggregate).registry
            events = core.new_events(aggregate, registry, None, causation)
            if events:
                appends.append((aggregate.stream, events, core.expected_version(aggregate)))
                saved.append(aggregate)
        appends.extend((stream, events, ANY) for stream, events in self._outgoing.items())
        return appends, saved


class Context(ContextBase):
    """One handler's transaction (see the module docstring).

    ``envelope`` and ``message`` are the incoming message (None in
    :meth:`Service.transaction <streamsource.messaging.Service.transaction>`); ``tx`` is the
    store's transaction, for reads, and for writes on SQLite (register writes with
    :meth:`write` to keep them portable to PostgreSQL).
    """

    service: Service
    tx: UnitOfWork

    def load(self, aggregate_type: type[A], id: str) -> A:
        """Load an aggregate; its new events are saved when the handler returns."""
        aggregate = Repository(self.service.store, aggregate_type).load(id)
        self._aggregates.append(aggregate)
        return aggregate

    def flush(self) -> None:
        """Write the collected effects into the transaction (appends first, then rows)."""
        appends, saved = self._appends()
        results = append_all(self.tx, appends)
        for aggregate, result in zip(saved, results, strict=False):
            aggregate._mark_saved(result.version)
        for fn in self._writes:
            fn(self.tx)
