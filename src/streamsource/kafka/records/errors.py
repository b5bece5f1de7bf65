"""Errors raised for bad record data, each carrying the Kafka error code the broker answers.

These are per-partition failures: the broker puts ``error_code`` in that partition's produce
response and keeps the connection open, which is why they do not derive from
``KafkaProtocolError`` (whose contract is "close the connection").
"""

from __future__ import annotations

from streamsource.errors import StreamsourceError

# Kafka error codes (same numbers as streamsource.kafka.protocol.errors.ErrorCode).
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87


class RecordError(StreamsourceError):
    """Record data that cannot be accepted; ``error_code`` is the Kafka code to answer with."""

    error_code: int = CORRUPT_MESSAGE


class CorruptRecordError(RecordError):
    """A checksum does not match or the data is truncated (Kafka CORRUPT_MESSAGE)."""

    error_code = CORRUPT_MESSAGE


class InvalidRecordError(RecordError):
    """The bytes are intact but their structure breaks the format's rules (INVALID_RECORD)."""

    error_code = INVALID_RECORD


class UnsupportedCompressionError(RecordError):
    """The attributes name a compression codec that does not exist."""

    error_code = UNSUPPORTED_COMPRESSION_TYPE


class RecordTooLargeError(RecordError):
    """A batch, or what it decompresses to, exceeds the configured limit (MESSAGE_TOO_LARGE)."""

    error_code = MESSAGE_TOO_LARGE


__all__ = [
    "CORRUPT_MESSAGE",
    "INVALID_RECORD",
    "MESSAGE_TOO_LARGE",
    "UNSUPPORTED_COMPRESSION_TYPE",
    "CorruptRecordError",
    "InvalidRecordError",
    "RecordError",
    "RecordTooLargeError",
    "UnsupportedCompressionError",
]
