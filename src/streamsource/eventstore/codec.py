"""JSON encoding between the public value types and the records a backend stores.

Data, metadata and snapshot state may be anything msgspec can encode as JSON (dicts, lists,
str, int, float, bool, None, plus datetimes, UUIDs, dataclasses and msgspec Structs, which
read back as their plain JSON form). Metadata must be a JSON object (a mapping with str
keys). Decoding happens one record at a time as a reader advances, never for a whole page.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import msgspec

from streamsource.errors import (
    CorruptStoreError,
    DuplicateEventId,
    EventNotSerializable,
    EventTooLarge,
    ProgrammingError,
)
from streamsource.eventstore.events import NewEvent, RecordedEvent, Snapshot, StreamMetadata
from streamsource.eventstore.recorder import EventRecord, SnapshotRecord, StoredRecord
from streamsource.eventstore.validation import (
    MAX_APPEND_BYTES,
    MAX_APPEND_EVENTS,
    MAX_EVENT_BYTES,
    MAX_EVENT_TYPE_LENGTH,
    check_count,
    check_event_type,
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_EMPTY_OBJECT = b"{}"


def _encode(value: Any, what: str) -> bytes:
    try:
        encoded = _encoder.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise EventNotSerializable(f"{what} is not JSON-serialisable: {exc}") from None
    # msgspec writes NaN and infinities as null (JSON has neither): refuse them rather than
    # store data that reads back changed. Only output with a null can hold one.
    if b"null" in encoded:
        bad = _non_finite_float(value)
        if bad is not None:
            raise EventNotSerializable(
                f"{what} is not JSON-serialisable: {bad} has no JSON form (it would read back"
                " as null)"
            )
    return encoded


def _non_finite_float(value: Any) -> str | None:
    """The first NaN or infinity inside ``value`` (as its repr), walking without recursion."""
    pending = [msgspec.to_builtins(value)]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return repr(item)
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _decode(raw: bytes, what: str) -> Any:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptStoreError(f"{what} is not valid JSON: {exc}") from None


def _where(index: int, event_type: str, stream: str) -> str:
    return f"event {index} ({event_type!r}) of the append to {stream!r}"


def encode_events(stream: str, events: Iterable[NewEvent] | NewEvent) -> list[EventRecord]:
    """Validate and encode the events of one append; raise before anything is written.

    Every append of every writer runs this, so the common case takes the shortest path:
    messages are formatted only once something is wrong, and the full checks (with their
    messages) run again only for input that fails a quick one.
    """
    if isinstance(events, NewEvent):
        events = (events,)
    elif type(events) is not list and (  # a list needs no ABC checks, each costly
        isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable)
    ):
        raise ProgrammingError(
            f"events for {stream!r} must be a NewEvent or a list of them,"
            f" got {type(events).__name__}"
        )
    records: list[EventRecord] = []
    seen: dict[int, int] = {}  # keyed on id.int: hashing a UUID runs Python code, an int not
    total = 0
    for index, event in enumerate(events):
        if index >= MAX_APPEND_EVENTS:
            raise EventTooLarge(
                f"append to {stream!r} has more than {MAX_APPEND_EVENTS} events; split it"
            )
        if not isinstance(event, NewEvent):
            raise ProgrammingError(
                f"event {index} of the append to {stream!r} must be a NewEvent,"
                f" got {type(event).__name__}"
            )
        event_type = event.type
        if not (
            type(event_type) is str
            and 0 < len(event_type) <= MAX_EVENT_TYPE_LENGTH
            and event_type.isprintable()
        ):
            event_type = check_event_type(event_type, f"event {index} of the append to {stream!r}")
        event_id = event.id
        if not isinstance(event_id, uuid.UUID):
            where = _where(index, event_type, stream)
            raise ProgrammingError(f"{where}: id must be a uuid.UUID, got {event_id!r}")
        key = event_id.int
        if key in seen:
            raise DuplicateEventId(event_id, f"event {seen[key]} of the same append")
        seen[key] = index
        data = _encode_quickly(event.data)
        if data is None:
            data = _encode(event.data, f"{_where(index, event_type, stream)}: data")
        raw_metadata = event.metadata
        metadata = _encode_metadata_quickly(raw_metadata)
        if metadata is None:
            metadata = encode_metadata(raw_metadata, _where(index, event_type, stream))
        size = len(data) + len(metadata)
        if size > MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"{_where(index, event_type, stream)} is {size} bytes encoded,"
                f" above the limit of {MAX_EVENT_BYTES}"
            )
        total += size
        if total > MAX_APPEND_BYTES:
            raise EventTooLarge(
                f"append to {stream!r} is over {MAX_APPEND_BYTES} bytes encoded; split it"
            )
        records.append(EventRecord(event_id, event_type, data, metadata))
    if not records:
        raise ProgrammingError(f"append to {stream!r} has no events")
    return records


def _encode_quickly(value: Any) -> bytes | None:
    """``value`` as JSON, or None when :func:`_encode` must decide (and word the error)."""
    try:
        encoded = _encoder.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None
    if b"null" in encoded and _non_finite_float(value) is not None:
        return None
    return encoded


def _encode_metadata_quickly(metadata: Any) -> bytes | None:
    """A plain dict of metadata as JSON, or None when :func:`encode_metadata` must decide."""
    if type(metadata) is not dict:
        return None
    if not metadata:
        return _EMPTY_OBJECT
    for key in metadata:
        if type(key) is not str:
            return None
    return _encode_quickly(metadata)


def encode_metadata(metadata: Any, where: str) -> bytes:
    """Encode event metadata, which must be a mapping with str keys (a JSON object)."""
    if not metadata:
        if isinstance(metadata, Mapping):
            return _EMPTY_OBJECT
        raise EventNotSerializable(f"{where}: metadata must be a mapping, got {metadata!r}")
    if not isinstance(metadata, Mapping):
        raise EventNotSerializable(
            f"{where}: metadata must be a mapping, got {type(metadata).__name__}"
        )
    for key in metadata:
        if not isinstance(key, str):
            raise EventNotSerializable(f"{where}: metadata keys must be str, got {key!r}")
    return _encode(metadata if isinstance(metadata, dict) else dict(metadata), f"{where}: metadata")


def decode_record(record: StoredRecord) -> RecordedEvent:
    """Turn a stored record into the public RecordedEvent, decoding its JSON."""
    try:
        data = _decoder.decode(record.data)
        raw_metadata = record.metadata
        metadata = {} if raw_metadata == _EMPTY_OBJECT else _decoder.decode(raw_metadata)
    except msgspec.DecodeError as exc:
        raise CorruptStoreError(
            f"event {record.version} of stream {record.stream!r} is not valid JSON: {exc}"
        ) from None
    return RecordedEvent(
        record.id,
        record.stream,
        record.version,
        record.position,
        record.type,
        data,
        metadata,
        record.recorded_at,
    )


# -- stream metadata ----------------------------------------------------------------------


class _StoredStreamMetadata(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    max_count: int | None = None
    max_age_us: int | None = None  # microseconds: exact, unlike float seconds
    truncate_before: int | None = None
    custom: dict[str, Any] = {}


_metadata_decoder = msgspec.json.Decoder(_StoredStreamMetadata)


def encode_stream_metadata(stream: str, metadata: StreamMetadata) -> bytes:
    """Validate and encode stream metadata."""
    if not isinstance(metadata, StreamMetadata):
        raise ProgrammingError(
            f"stream metadata for {stream!r} must be a StreamMetadata, got {type(metadata).__name__}"
        )
    max_age = metadata.max_age
    if max_age is not None and (not isinstance(max_age, timedelta) or max_age <= timedelta(0)):
        raise ProgrammingError(
            f"stream metadata for {stream!r}: max_age must be a positive timedelta, got {max_age!r}"
        )
    custom = metadata.custom
    if not isinstance(custom, Mapping) or not all(isinstance(k, str) for k in custom):
        raise ProgrammingError(
            f"stream metadata for {stream!r}: custom must be a mapping with str keys"
        )
    stored = _StoredStreamMetadata(
        max_count=check_count(metadata.max_count, "max_count"),
        max_age_us=None if max_age is None else max_age // timedelta(microseconds=1),
        truncate_before=check_count(metadata.truncate_before, "truncate_before"),
        custom=dict(custom),
    )
    return _encode(stored, f"stream metadata for {stream!r}")


def decode_stream_metadata(stream: str, raw: bytes | None) -> StreamMetadata | None:
    """Decode stream metadata stored by :func:`encode_stream_metadata` (None if never set)."""
    if raw is None:
        return None
    try:
        stored = _metadata_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptStoreError(f"stream metadata of {stream!r} is damaged: {exc}") from None
    return StreamMetadata(
        max_count=stored.max_count,
        max_age=None if stored.max_age_us is None else timedelta(microseconds=stored.max_age_us),
        truncate_before=stored.truncate_before,
        custom=stored.custom,
    )


# -- snapshots ----------------------------------------------------------------------------


def encode_snapshot_state(stream: str, state: Any) -> bytes:
    """Encode a snapshot's state as JSON."""
    return _encode(state, f"snapshot state of {stream!r}")


def decode_snapshot(record: SnapshotRecord) -> Snapshot:
    """Turn a stored snapshot into the public Snapshot, decoding its state."""
    state = _decode(record.state, f"snapshot of {record.stream!r} at version {record.version}")
    return Snapshot(record.stream, record.version, record.type, state, record.recorded_at)
