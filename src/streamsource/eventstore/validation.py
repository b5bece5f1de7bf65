"""Argument checks shared by the sync and async facades and by the backends.

Every check runs before anything is written, so a bad call never half-writes. The bounds
are documented constants because they are part of the contract:

* a stream name (and a category) is a ``str`` of 1 to :data:`MAX_STREAM_NAME_LENGTH`
  characters with no control characters and no lone surrogates (they cannot be stored as
  UTF-8);
* an event type follows the same rules with :data:`MAX_EVENT_TYPE_LENGTH`;
* one event's encoded data plus metadata is at most :data:`MAX_EVENT_BYTES`, one append at
  most :data:`MAX_APPEND_BYTES` and :data:`MAX_APPEND_EVENTS` events;
* an expected version is ANY, NO_STREAM, STREAM_EXISTS or an ``int >= 0`` (``bool`` is not
  an ``int`` here: ``True`` is almost certainly a bug).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from streamsource.errors import (
    InvalidEventType,
    InvalidExpectedVersion,
    InvalidStreamName,
    ProgrammingError,
    WrongExpectedVersion,
)
from streamsource.eventstore.events import ExpectedVersion, StreamState

MAX_STREAM_NAME_LENGTH = 200
"""Longest accepted stream name, in characters."""

MAX_EVENT_TYPE_LENGTH = 200
"""Longest accepted event type, in characters."""

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""Largest accepted event: encoded data plus encoded metadata, in bytes (16 MiB)."""

MAX_APPEND_BYTES = 64 * 1024 * 1024
"""Largest accepted append: the sum of its events' encoded sizes (64 MiB)."""

MAX_APPEND_EVENTS = 100_000
"""Most events accepted in one append."""

MAX_COUNT = 2**63 - 1
"""Versions, positions and limits are 64-bit in every backend: larger values are clamped."""


def _bad_character(text: str) -> str | None:
    """The first control character or lone surrogate in ``text``, shown for a message."""
    if text.isprintable():  # fast path: printable text has no Cc/Cs characters
        return None
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs"):
            return repr(char)
    return None


def check_stream_name(stream: object, what: str = "stream name") -> str:
    """Return ``stream`` if it is a valid stream name, else raise InvalidStreamName."""
    if not isinstance(stream, str):
        raise InvalidStreamName(f"{what} must be a str, got {type(stream).__name__}")
    if not stream:
        raise InvalidStreamName(f"{what} must not be empty")
    if len(stream) > MAX_STREAM_NAME_LENGTH:
        raise InvalidStreamName(
            f"{what} {stream[:40]!r}... is {len(stream)} characters long,"
            f" above the limit of {MAX_STREAM_NAME_LENGTH}"
        )
    bad = _bad_character(stream)
    if bad is not None:
        raise InvalidStreamName(f"{what} {stream!r} contains the control character {bad}")
    return stream


def check_event_type(event_type: object, where: str) -> str:
    """Return ``event_type`` if valid, else raise InvalidEventType naming ``where`` it is."""
    if not isinstance(event_type, str):
        raise InvalidEventType(f"{where}: type must be a str, got {type(event_type).__name__}")
    if not event_type:
        raise InvalidEventType(f"{where}: type must not be empty")
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise InvalidEventType(
            f"{where}: type is {len(event_type)} characters long,"
            f" above the limit of {MAX_EVENT_TYPE_LENGTH}"
        )
    bad = _bad_character(event_type)
    if bad is not None:
        raise InvalidEventType(f"{where}: type {event_type!r} contains the control character {bad}")
    return event_type


def check_expected_version(expected: object, stream: str | None = None) -> ExpectedVersion:
    """Return ``expected`` if it is ANY, NO_STREAM, STREAM_EXISTS or an int >= 0."""
    if isinstance(expected, StreamState):
        return expected
    if isinstance(expected, int) and not isinstance(expected, bool) and expected >= 0:
        return min(expected, MAX_COUNT)  # larger: no stream gets there, it can only mismatch
    where = "" if stream is None else f" for {stream!r}"
    raise InvalidExpectedVersion(
        f"expected_version{where} must be ANY, NO_STREAM, STREAM_EXISTS or an int >= 0,"
        f" got {expected!r}"
    )


def check_version_matches(stream: str, expected: ExpectedVersion, actual: int | None) -> None:
    """Raise WrongExpectedVersion unless a stream at ``actual`` satisfies ``expected``.

    Backends call this inside their write transaction, with the stream's true version.
    """
    if expected is StreamState.ANY:
        return
    if expected is StreamState.NO_STREAM:
        ok = actual is None
    elif expected is StreamState.STREAM_EXISTS:
        ok = actual is not None
    else:
        ok = actual == expected
    if not ok:
        raise WrongExpectedVersion(stream, expected, actual)


def check_count(value: object, name: str, *, allow_none: bool = True) -> int | None:
    """Return ``value`` if it is None (when allowed) or an int >= 0 (not a bool).

    A value above :data:`MAX_COUNT` becomes MAX_COUNT: no stored version or position can be
    that large, so the read means the same and the database gets an integer it can bind.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, MAX_COUNT)
    raise ProgrammingError(
        f"{name} must be an int >= 0{' or None' if allow_none else ''}, got {value!r}"
    )


def check_aware_time(value: object, name: str) -> datetime | None:
    """Return ``value`` if it is None or a timezone-aware datetime (naive times are ambiguous)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ProgrammingError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProgrammingError(
            f"{name} must be timezone-aware (e.g. datetime.now(UTC)), got {value!r}"
        )
    return value


def check_types(types: Any) -> frozenset[str] | None:
    """Normalise an event-type filter: None, one type name, or an iterable of them."""
    if types is None:
        return None
    if isinstance(types, str):  # types="Deposited" means that one type, not its letters
        return frozenset((types,))
    try:
        result = frozenset(types)
    except TypeError:
        raise ProgrammingError(
            f"types must be a str or an iterable of str, got {type(types).__name__}"
        ) from None
    for item in result:
        if not isinstance(item, str):
            raise ProgrammingError(f"types must contain only str, got {item!r}")
    return result
