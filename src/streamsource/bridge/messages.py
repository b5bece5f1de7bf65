"""The Kafka message of a recorded event, both ways (pure functions, no client involved).

A message carries:

* key: the stream name (UTF-8), so every event of a stream lands in one partition, in order;
* value: the event's data as JSON, exactly the bytes the store holds;
* headers: ``event-id`` (UUID text), ``event-type``, ``stream``, ``version`` and ``position``
  (decimal), ``recorded-at`` (ISO 8601, UTC), ``metadata`` (JSON) and
  ``content-type: application/json``; with tracing on, ``traceparent`` (W3C) of the
  relay's publish span.

Consumers in any language can read these; :func:`event_from_message` turns one back into a
:class:`~streamsource.RecordedEvent` (its ``position`` is the one in the source store).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from streamsource.bridge.errors import InvalidBridgeMessage
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.recorder import StoredRecord
from streamsource.observability import tracing

EVENT_ID = "event-id"
EVENT_TYPE = "event-type"
STREAM = "stream"
VERSION = "version"
POSITION = "position"
RECORDED_AT = "recorded-at"
METADATA = "metadata"
CONTENT_TYPE = "content-type"
JSON_CONTENT_TYPE = b"application/json"

_MAX_NUMBER_DIGITS = 20  # a 64-bit integer; refuse anything longer before int() sees it
_MAX_TEXT_HEADER = 64 * 1024  # stream names and types are far shorter in the store

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What the relay hands to the producer for one event."""

    key: bytes
    value: bytes
    headers: Headers


_last_recorded_at: tuple[datetime, bytes] = (datetime.min, datetime.min.isoformat().encode())


def message_for(record: StoredRecord) -> OutgoingMessage:
    """The Kafka message for a stored event (data and metadata are already JSON bytes)."""
    global _last_recorded_at
    stream = record.stream.encode()
    # The events of one append share one recorded_at object (the SQLite reader builds it
    # once per append): format it once, not per event (~1 us of the relay's ~10 us each).
    when, recorded_at = _last_recorded_at
    if record.recorded_at is not when:
        when = record.recorded_at
        recorded_at = when.isoformat().encode()
        _last_recorded_at = (when, recorded_at)
    headers: Headers = [
        (EVENT_ID, str(record.id).encode()),
        (EVENT_TYPE, record.type.encode()),
        (STREAM, stream),
        (VERSION, b"%d" % record.version),
        (POSITION, b"%d" % record.position),
        (RECORDED_AT, recorded_at),
        (METADATA, record.metadata),
        (CONTENT_TYPE, JSON_CONTENT_TYPE),
    ]
    return OutgoingMessage(stream, record.data, headers)


def traced(message: OutgoingMessage) -> OutgoingMessage:
    """``message`` with the current span's ``traceparent`` header (tracing on)."""
    traceparent = tracing.current_traceparent()
    if traceparent is None:
        return message
    headers = [h for h in message.headers if h[0] != tracing.TRACEPARENT]
    headers.append((tracing.TRACEPARENT, traceparent.encode()))
    return OutgoingMessage(message.key, message.value, headers)


def event_from_message(
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    *,
    where: str = "message",
) -> RecordedEvent:
    """Decode a message published by the relay; raise InvalidBridgeMessage if it is not one.

    ``where`` names the message in errors (e.g. ``topic[partition]@offset``).
    """
    # The consumer's hot path: one dict built in C, then direct lookups and checks.
    found: dict[str, bytes | None] = dict(headers) if headers else {}
    try:
        id_raw, type_raw, version_raw, position_raw, recorded_raw = (
            found[EVENT_ID],
            found[EVENT_TYPE],
            found[VERSION],
            found[POSITION],
            found[RECORDED_AT],
        )
    except KeyError:
        missing = [name for name in _REQUIRED if found.get(name) is None]
        raise InvalidBridgeMessage(f"{where}: missing header(s) {', '.join(missing)}") from None
    stream_raw = found.get(STREAM) or key
    metadata_raw = found.get(METADATA) or b"{}"
    if (
        value is None
        or stream_raw is None
        or id_raw is None
        or type_raw is None
        or recorded_raw is None
        or len(stream_raw) > _MAX_TEXT_HEADER
        or len(type_raw) > _MAX_TEXT_HEADER
        or len(recorded_raw) > 64
    ):
        raise InvalidBridgeMessage(f"{where}: no value, no stream, or an empty or oversized header")
    try:
        return RecordedEvent(
            _uuid(id_raw),
            stream_raw.decode(),
            _number(version_raw, VERSION, where),
            _number(position_raw, POSITION, where),
            type_raw.decode(),
            _decode_json(value),
            {} if metadata_raw == b"{}" else _decode_json(metadata_raw),
            datetime.fromisoformat(recorded_raw.decode()),
        )
    except (ValueError, msgspec.DecodeError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidBridgeMessage(f"{where}: {exc}") from None


def _uuid(raw: bytes) -> uuid.UUID:
    """The canonical 36-character form as a UUID, through msgspec (3x ``uuid.UUID(text)``)."""
    if not _CANONICAL_UUID.fullmatch(raw):
        raise ValueError(f"event-id {raw[:40]!r} is not a UUID")
    return _convert(raw.decode("ascii"), uuid.UUID)


_CANONICAL_UUID = re.compile(rb"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_convert = msgspec.convert
_REQUIRED = (EVENT_ID, EVENT_TYPE, VERSION, POSITION, RECORDED_AT)
_decode_json = msgspec.json.Decoder().decode


def _number(raw: bytes | None, name: str, where: str) -> int:
    if raw is None or not 0 < len(raw) <= _MAX_NUMBER_DIGITS or not raw.isdigit():
        raise InvalidBridgeMessage(
            f"{where}: header {name} is not a decimal number: {raw and raw[:40]!r}"
        )
    return int(raw)
