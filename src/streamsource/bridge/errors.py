"""Errors of the store-to-stream bridge (all are :class:`~streamsource.errors.StreamsourceError`)."""

from __future__ import annotations

from streamsource.errors import DataError, StreamsourceError


class BridgeError(StreamsourceError):
    """Base class of the relay's and the inbox consumer's errors."""


class KafkaClientError(BridgeError):
    """The Kafka client refused a setting or reported an error it cannot recover from."""


class InvalidBridgeMessage(BridgeError, DataError):
    """A Kafka message is not an event the relay published: a header is missing or malformed."""


class HandlerFailed(BridgeError):
    """A consumer's handler raised; the batch was rolled back and its offsets not committed."""
