"""The streamsource exception hierarchy.

Every error a user can see is one of these. Backends and network layers translate the
exceptions of the libraries they use (sqlite3, psycopg, sockets) at their boundary, so
callers never have to catch a driver's exception type.

The store errors follow PEP 249's families (``InterfaceError``, ``OperationalError``,
``IntegrityError``, ``DataError``, ``ProgrammingError``, ``NotSupportedError``) so that
anyone who knows a database driver knows what to catch.

``retriable`` is true only for faults worth retrying: the same call may succeed if simply
made again, later. It is true for a lock held too long or busy (SQLite's write lock, a
statement timeout, an exhausted pool), a connection that could not be made or was lost, a
serialization failure or deadlock, a conflicting expected version, and a Kafka delivery the
broker could not take yet. It is false for everything permanent: bad credentials, a missing
table, a read-only file, a constraint or data error, a message too large, bad arguments.
A full disk is **not** retriable: it lasts until someone frees space, and a loop retrying
it would hide that; a component stops and names it (the same for the store and the broker).
"""

from __future__ import annotations

from typing import Any


class StreamsourceError(Exception):
    """Base class of every error raised by streamsource."""

    retriable: bool = False


class MissingExtra(StreamsourceError, ImportError):
    """A feature needs an optional dependency that is not installed.

    ``extra`` names the package extra that installs it: ``pip install 'streamsource[EXTRA]'``.
    Also an ``ImportError``, which is what it replaces.
    """

    def __init__(self, what: str, extra: str, cause: str) -> None:
        self.extra = extra
        super().__init__(
            f"{what} needs streamsource[{extra}]: pip install 'streamsource[{extra}]' ({cause})"
        )


# -- event store (PEP 249 families) -------------------------------------------------------


class StoreError(StreamsourceError):
    """Base class of event-store errors."""


class InterfaceError(StoreError):
    """The store was used wrongly: bad URL, closed store, unknown backend."""


class DatabaseError(StoreError):
    """An error reported by, or about, the database behind the store."""


class OperationalError(DatabaseError):
    """The database cannot do the operation now: unreachable, locked, read-only, disk full.

    Retriable only in the subclasses for transient faults (a backend's ``faults`` module).
    """


class IntegrityError(DatabaseError):
    """The operation would break an invariant of the store."""


class DataError(DatabaseError):
    """The data given cannot be stored: not JSON-serialisable, too large, malformed."""


class ProgrammingError(DatabaseError):
    """An argument is invalid: a bad stream name, expected version or option."""


class NotSupportedError(DatabaseError):
    """The backend does not support the requested feature."""


class CorruptStoreError(DatabaseError):
    """The file or database is not a streamsource store, or is damaged."""


class WrongExpectedVersion(IntegrityError):
    """The stream's current version is not the one the writer expected.

    ``actual`` is the stream's true current version (``None`` when it does not exist).
    """

    retriable = True

    def __init__(self, stream: str, expected: Any, actual: int | None) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        shown = "no stream" if actual is None else f"version {actual}"
        super().__init__(
            f"stream {stream!r}: expected version {_show_expected(expected)}, but it is at {shown}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stream, self.expected, self.actual))


class StreamDeleted(IntegrityError):
    """The stream was hard-deleted (tombstoned): it can never be written again."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"stream {stream!r} is deleted (tombstoned): it cannot be read or written")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stream,))


class DuplicateEventId(IntegrityError):
    """An event id was reused for an event with different content or in another stream."""

    def __init__(self, event_id: Any, detail: str) -> None:
        self.event_id = event_id
        super().__init__(f"event id {event_id} was already used for {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.event_id, str(self).split(" for ", 1)[-1]))


class InvalidStreamName(ProgrammingError):
    """A stream name is empty, too long, or contains control characters."""


class InvalidExpectedVersion(ProgrammingError):
    """``expected_version`` is not ANY, NO_STREAM, STREAM_EXISTS or a version >= 0."""


class EventNotSerializable(DataError):
    """Data, metadata, stream-metadata or snapshot state cannot be encoded as JSON."""


class InvalidEventType(ProgrammingError):
    """An event type is not a non-empty string without control characters."""


class EventTooLarge(DataError):
    """An event, or a whole append, is larger than the documented bound."""


def _show_expected(expected: Any) -> str:
    name = getattr(expected, "name", None)
    return name if isinstance(name, str) else repr(expected)


# -- domain toolkit -----------------------------------------------------------------------


class DomainError(StreamsourceError):
    """A command was refused by a business rule (e.g. an overdraft)."""


class UnknownEventType(StreamsourceError):
    """A stored event type has no registered class or upcaster."""


# -- kafka --------------------------------------------------------------------------------


class KafkaProtocolError(StreamsourceError):
    """A frame or request could not be decoded; the connection that sent it is closed."""


class BrokerError(StreamsourceError):
    """The embedded broker failed to start or stop."""


__all__ = [
    "BrokerError",
    "CorruptStoreError",
    "DataError",
    "DatabaseError",
    "DomainError",
    "DuplicateEventId",
    "EventNotSerializable",
    "EventTooLarge",
    "IntegrityError",
    "InterfaceError",
    "InvalidEventType",
    "InvalidExpectedVersion",
    "InvalidStreamName",
    "KafkaProtocolError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "StoreError",
    "StreamDeleted",
    "StreamsourceError",
    "UnknownEventType",
    "WrongExpectedVersion",
]
