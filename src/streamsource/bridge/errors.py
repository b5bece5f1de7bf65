"""Errors of the store-to-stream bridge (all are :class:`~streamsource.errors.StreamsourceError`).

Kafka client errors are translated here, once: :func:`kafka_error` turns a confluent-kafka
``KafkaError`` into a :class:`KafkaClientError` whose ``retriable`` follows the client's own
flags (``retriable()``: the broker's error table; ``fatal()``: the producer instance is
unusable, a new one may go on) plus the client-local faults that mean "the broker is away"
(timeouts, transport failures). Everything else (a message too large, an authorization or
configuration error, an invalid record) is permanent.
"""

from __future__ import annotations

from typing import Any

from streamsource.errors import DataError, OperationalError, StreamsourceError


class BridgeError(StreamsourceError):
    """Base class of the relay's and the inbox consumer's errors."""


class KafkaClientError(BridgeError):
    """The Kafka client refused a setting or reported an error; ``code`` is librdkafka's name
    for it (e.g. ``MSG_SIZE_TOO_LARGE``, ``_MSG_TIMED_OUT``) when it came from the client."""

    def __init__(self, message: str, *, code: str = "", retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable


class InvalidBridgeMessage(BridgeError, DataError):
    """A Kafka message is not an event the relay published: a header is missing or malformed."""


class HandlerFailed(BridgeError):
    """A consumer's handler raised; the batch was rolled back and its offsets not committed."""


class InboxConflict(BridgeError, OperationalError):
    """Two members applied the same event at once; the later transaction rolled back."""

    retriable = True


class RelayStopped(BridgeError):
    """The relay met a permanent fault and stopped; ``cause`` is it. Its checkpoint stays at
    the last position delivered before the fault, so a fixed relay resumes from there."""

    def __init__(self, message: str, cause: StreamsourceError) -> None:
        super().__init__(message)
        self.cause = cause


class ConsumerStopped(BridgeError):
    """The inbox consumer met a permanent fault and stopped; ``cause`` is it. Nothing of the
    failed batch was applied and its offsets were not committed."""

    def __init__(self, message: str, cause: StreamsourceError) -> None:
        super().__init__(message)
        self.cause = cause


# librdkafka's local errors that mean the broker is unreachable or slow, not that the message
# or the settings are wrong: worth retrying although the client does not flag them so.
_BROKER_AWAY = frozenset(
    {"_MSG_TIMED_OUT", "_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN", "_QUEUE_FULL",
     "_RESOLVE", "_WAIT_COORD", "_TIMED_OUT_QUEUE"}
)  # fmt: skip


def kafka_error(error: Any, doing: str) -> KafkaClientError:
    """The bridge error for confluent-kafka's ``KafkaError`` ``error`` met while ``doing``."""
    name = str(error.name())
    retriable = bool(error.retriable()) or bool(error.fatal()) or name in _BROKER_AWAY
    kind = "retriable" if retriable else "permanent"
    return KafkaClientError(
        f"{doing}: {error.str()} ({name}, {kind})", code=name, retriable=retriable
    )
