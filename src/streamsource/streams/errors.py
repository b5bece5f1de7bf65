"""Errors of stream processing (all are :class:`~streamsource.errors.StreamsourceError`).

Kafka client errors are translated once, by the bridge's :func:`kafka_error` (the same
client, the same table of retriable faults).
"""

from __future__ import annotations

from streamsource.errors import DataError, StreamsourceError


class StreamsError(StreamsourceError):
    """Base class of stream-processing errors."""


class DataflowError(StreamsError):
    """The dataflow is built wrongly: an operation needs a key, a name is taken, ..."""


class BadRecord(StreamsError, DataError):
    """A record cannot be decoded as its topic's declared type."""


class ProcessingFailed(StreamsError):
    """A user function raised on a record; nothing of the batch was committed."""


class SinkFailed(StreamsError):
    """A sink outside Kafka (a SQL table) refused a batch; nothing of it was committed."""
