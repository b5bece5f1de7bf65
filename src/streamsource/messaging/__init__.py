"""Messaging between services: integration events, commands and replies, exactly once.

The shape (stable names)::

    registry = EventRegistry()

    @registry.event("AuthorizeCustomer")
    class AuthorizeCustomer(Command, frozen=True):
        customer_id: str

    customers = Service("customers", customers_store, registry=registry,
                        channels=Channels("mall"))

    @customers.handle(AuthorizeCustomer)
    def authorize(ctx: Context, command: AuthorizeCustomer) -> None:
        customer = ctx.load(Customer, command.customer_id)
        if not customer.enabled:
            raise Refused("customer is disabled")   # -> Failure(refused=True) reply

    with LocalTransport([customers, ordering]):     # or KafkaTransport(..., bootstrap)
        ordering.send(AuthorizeCustomer("c-1"), to="customers")

* :mod:`.messages`: the message kinds (:class:`IntegrationEvent`, :class:`Command`,
  :class:`Reply`; :class:`Success`, :class:`Failure`), registered in an ``EventRegistry``
  (schema versions, upcasters); :class:`MessageCodec` is the serializer hook.
* :mod:`.envelope`: :class:`Envelope` (message id, name, kind, channel, source, correlation
  and causation ids, reply channel, saga id/name, sent_at, W3C traceparent, key): event
  metadata in the store, headers on Kafka; :class:`Channels` names the topics
  (``mall.ordering.commands``, ``mall.ordering.events``, ``mall.cosec.replies.CreateOrder``,
  ``mall.payments.dead-letters``).
* :mod:`.service`: :class:`Service` (handler registration, :meth:`Service.deliver`: inbox,
  handler and effects in one transaction; retries, refusals, dead letters) and
  :mod:`.context`: :class:`Context` (``load``/``create`` aggregates, ``publish``, ``send``,
  ``reply``, ``write`` rows after the appends, ``tx``).
* :mod:`.local`: :class:`LocalTransport`, in-process and durable (outbox in the store, inbox
  tables); :mod:`.kafka`: :class:`KafkaTransport` (the bridge's relay and inbox consumer).
* :mod:`.async_service`: the asyncio twins (:class:`AsyncService` with coroutine handlers,
  :class:`AsyncContext`, :class:`AsyncLocalTransport`).
* :mod:`.dead_letters`: list and replay parked messages (``streamsource messages
  dead-letters list|replay``).
"""

from __future__ import annotations

from streamsource.messaging.async_service import AsyncContext, AsyncLocalTransport, AsyncService
from streamsource.messaging.context import Context, outbox_category, outbox_stream
from streamsource.messaging.envelope import Channels, Envelope
from streamsource.messaging.errors import (
    AlreadyReplayed,
    HandlerConflict,
    InvalidMessage,
    MessagingError,
    Refused,
    TransientFault,
    UnknownDeadLetter,
)
from streamsource.messaging.kafka import KafkaTransport
from streamsource.messaging.local import LocalTransport
from streamsource.messaging.messages import (
    Command,
    Failure,
    IntegrationEvent,
    Message,
    MessageCodec,
    RegistryCodec,
    Reply,
    Success,
    kind_of,
)
from streamsource.messaging.service import Handler, Outcome, Service

__all__ = [
    "AlreadyReplayed",
    "AsyncContext",
    "AsyncLocalTransport",
    "AsyncService",
    "Channels",
    "Command",
    "Context",
    "Envelope",
    "Failure",
    "Handler",
    "HandlerConflict",
    "IntegrationEvent",
    "InvalidMessage",
    "KafkaTransport",
    "LocalTransport",
    "Message",
    "MessageCodec",
    "MessagingError",
    "Outcome",
    "Refused",
    "RegistryCodec",
    "Reply",
    "Service",
    "Success",
    "TransientFault",
    "UnknownDeadLetter",
    "kind_of",
    "outbox_category",
    "outbox_stream",
]
