"""The envelope every message travels in, and the channel (topic) names.

One :class:`Envelope` for the three kinds. In the store it is the metadata of the outbox
event that carries the message (the event's id is the message id, its type the message name,
its data the message); on Kafka the same fields are also headers (:func:`kafka_headers`), so
consumers in other languages can route and trace without parsing the metadata JSON.

Channel names (:class:`Channels`) read like ``mall.ordering.commands``,
``mall.ordering.events``, ``mall.cosec.replies.CreateOrder`` and
``mall.payments.dead-letters``; the namespace (``mall``) and every pattern are configurable.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, cast, get_args

import msgspec

from streamsource.bridge.mapping import check_topic
from streamsource.eventstore.domain.typed_events import SCHEMA_VERSION
from streamsource.eventstore.events import CAUSATION_ID, CORRELATION_ID, RecordedEvent
from streamsource.messaging.errors import InvalidMessage
from streamsource.messaging.messages import Kind

_KINDS = frozenset(get_args(Kind))
_MAX_FIELD = 1024  # ids, names and channel names are far shorter; refuse anything longer
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")

# metadata keys of the envelope in the store (correlation/causation as the store names them)
KIND = "kind"
CHANNEL = "channel"
SOURCE = "source"
REPLY_TO = "reply_to"
SAGA_ID = "saga_id"
SAGA_NAME = "saga_name"
SENT_AT = "sent_at"
TRACEPARENT = "traceparent"
KEY = "key"
DEAD_LETTER = "dead_letter"  # on a dead letter: {message_id, service, error, attempts, failed_at}


class Envelope(msgspec.Struct, frozen=True):
    """Where a message comes from and goes to, and the conversation it belongs to.

    ``correlation_id`` is shared by every message of one business conversation (the first
    message's id), ``causation_id`` is the id of the message that directly caused this one.
    ``reply_to`` (commands) names the channel the reply goes to. ``key`` is the Kafka
    partition key: messages with the same key stay in order.
    """

    message_id: str
    name: str
    kind: Kind
    channel: str
    source: str
    correlation_id: str
    causation_id: str | None = None
    reply_to: str | None = None
    saga_id: str | None = None
    saga_name: str | None = None
    sent_at: datetime | None = None
    traceparent: str | None = None
    key: str | None = None
    schema_version: int = 1

    def metadata(self) -> dict[str, Any]:
        """The envelope as the metadata of the outbox event (the id and name are the event's)."""
        found: dict[str, Any] = {
            KIND: self.kind,
            CHANNEL: self.channel,
            SOURCE: self.source,
            CORRELATION_ID: self.correlation_id,
            SCHEMA_VERSION: self.schema_version,
        }
        # absent fields are left out (one test each: this runs for every message sent)
        if self.causation_id is not None:
            found[CAUSATION_ID] = self.causation_id
        if self.reply_to is not None:
            found[REPLY_TO] = self.reply_to
        if self.saga_id is not None:
            found[SAGA_ID] = self.saga_id
        if self.saga_name is not None:
            found[SAGA_NAME] = self.saga_name
        if self.sent_at is not None:
            found[SENT_AT] = self.sent_at.isoformat()
        if self.traceparent is not None:
            found[TRACEPARENT] = self.traceparent
        if self.key is not None:
            found[KEY] = self.key
        return found

    @classmethod
    def of(cls, event: RecordedEvent) -> Envelope:
        """The envelope of a message read from an outbox (or a Kafka message decoded into an
        event); InvalidMessage naming the field if it is not one."""
        return cls.from_metadata(str(event.id), event.type, event.metadata)

    @classmethod
    def from_metadata(cls, message_id: str, name: str, meta: Mapping[str, Any]) -> Envelope:
        """The envelope of message ``message_id`` named ``name`` whose outbox metadata is
        ``meta``; InvalidMessage naming the field if it is not one."""
        fields: list[Any] = [meta.get(name) for name in _FIELDS]
        kind, channel, source, correlation, causation, reply_to = fields[:6]
        saga_id, saga_name, sent_at, traceparent, key = fields[6:]
        version: Any = meta.get(SCHEMA_VERSION, 1)
        # Every message of a service passes here once per hop: check the common case with
        # a few cheap tests; anything else takes the slow path, which names what is wrong.
        if not (
            type(kind) is str
            and kind in _KINDS
            and _is_text(channel)
            and _is_text(source)
            and _is_text(correlation)
            and all(v is None or _is_optional_text(v) for v in fields[4:])
            and type(version) is int
            and version >= 1
        ):
            _explain(meta, f"message {message_id} ({name})")
        if traceparent is not None and not _TRACEPARENT.fullmatch(traceparent):
            traceparent = None  # W3C: a malformed traceparent is ignored, not fatal
        try:
            when = None if sent_at is None else datetime.fromisoformat(sent_at)
        except ValueError:
            raise InvalidMessage(
                f"message {message_id} ({name}): {SENT_AT} {sent_at!r:.40} is not ISO 8601"
            ) from None
        return cls(
            message_id=message_id,
            name=name,
            kind=cast(Kind, kind),
            channel=channel,
            source=source,
            correlation_id=correlation,
            causation_id=causation,
            reply_to=reply_to,
            saga_id=saga_id,
            saga_name=saga_name,
            sent_at=when,
            traceparent=traceparent,
            key=key,
            schema_version=version,
        )


_FIELDS = (KIND, CHANNEL, SOURCE, CORRELATION_ID, CAUSATION_ID, REPLY_TO, SAGA_ID, SAGA_NAME,
           SENT_AT, TRACEPARENT, KEY)  # fmt: skip


def _is_text(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= _MAX_FIELD


def _is_optional_text(value: Any) -> bool:
    return type(value) is str and len(value) <= _MAX_FIELD


def _explain(meta: Mapping[str, Any], where: str) -> NoReturn:
    """Raise the InvalidMessage that says what in ``meta`` is not an envelope."""
    kind = _text(meta, KIND, where)
    if kind not in _KINDS:
        raise InvalidMessage(f"{where}: kind {kind!r} is not one of {sorted(_KINDS)}")
    for name in (CHANNEL, SOURCE, CORRELATION_ID):
        _text(meta, name, where)
    for name in _FIELDS[4:]:
        _optional(meta, name, where)
    version = meta.get(SCHEMA_VERSION, 1)
    raise InvalidMessage(f"{where}: {SCHEMA_VERSION} {version!r} is not an int >= 1")


def _optional(meta: Mapping[str, Any], name: str, where: str) -> str | None:
    value = meta.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise InvalidMessage(f"{where}: envelope field {name} is not a string of at most"
                             f" {_MAX_FIELD} characters")  # fmt: skip
    return value


def _text(meta: Mapping[str, Any], name: str, where: str) -> str:
    value = _optional(meta, name, where)
    if not value:
        raise InvalidMessage(f"{where}: envelope field {name} is missing or empty")
    return value


def now() -> datetime:
    return datetime.now(UTC)


# Kafka header names of the envelope (the relay's own event headers come too)
_HEADERS = (
    ("message-id", "message_id"),
    ("message-name", "name"),
    ("message-kind", "kind"),
    ("channel", "channel"),
    ("source", "source"),
    ("correlation-id", "correlation_id"),
    ("causation-id", "causation_id"),
    ("reply-to", "reply_to"),
    ("saga-id", "saga_id"),
    ("saga-name", "saga_name"),
    ("traceparent", "traceparent"),
)


def kafka_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """The envelope's fields as Kafka headers (absent fields are left out)."""
    headers = [
        (header, value.encode())
        for header, attribute in _HEADERS
        if (value := getattr(envelope, attribute)) is not None
    ]
    if envelope.sent_at is not None:
        headers.append(("sent-at", envelope.sent_at.isoformat().encode()))
    headers.append(("schema-version", b"%d" % envelope.schema_version))
    return headers


def envelope_of_metadata(message_id: str, name: str, metadata: bytes) -> Envelope:
    """The envelope of an outbox record whose metadata is still JSON bytes (the relay)."""
    try:
        meta = _decode_json(metadata)
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"message {message_id}: metadata is not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise InvalidMessage(f"message {message_id}: metadata is not a JSON object")
    return Envelope.from_metadata(message_id, name, meta)


_decode_json = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Channels:
    """Channel (topic) names of services: ``{namespace}.{service}.commands`` and the like.

    Each pattern may use ``{namespace}`` and ``{service}`` (the reply pattern also
    ``{label}``); an empty namespace drops its dot. Names must be legal Kafka topic names.
    """

    namespace: str = ""
    commands_pattern: str = "{namespace}{service}.commands"
    events_pattern: str = "{namespace}{service}.events"
    replies_pattern: str = "{namespace}{service}.replies"
    labelled_replies_pattern: str = "{namespace}{service}.replies.{label}"
    dead_letters_pattern: str = "{namespace}{service}.dead-letters"

    def _name(self, pattern: str, service: str, label: str = "") -> str:
        return _channel_name(self.namespace, pattern, service, label)

    def commands(self, service: str) -> str:
        """The channel a service receives its commands on."""
        return self._name(self.commands_pattern, service)

    def events(self, service: str) -> str:
        """The channel a service publishes its integration events to."""
        return self._name(self.events_pattern, service)

    def replies(self, service: str, label: str | None = None) -> str:
        """A channel a service receives replies on (one per label, e.g. per saga)."""
        if label is None:
            return self._name(self.replies_pattern, service)
        return self._name(self.labelled_replies_pattern, service, label)

    def dead_letters(self, service: str) -> str:
        """The channel (Kafka topic) a service's dead letters are published to."""
        return self._name(self.dead_letters_pattern, service)


@functools.lru_cache(maxsize=4096)  # a handful of names, asked for with every message sent
def _channel_name(namespace: str, pattern: str, service: str, label: str) -> str:
    prefix = f"{namespace}." if namespace else ""
    return check_topic(pattern.format(namespace=prefix, service=service, label=label))
