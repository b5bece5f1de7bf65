"""Errors raised for bad record data, each carrying the Kafka error code the broker answers.

These are per-partition failures: the broker puts ``error_code`` in that partition's produce
response and keeps the connection open, which is why they do not derive from
``KafkaProtocolError`` (whose contract is "close the connection").
"""

from __future__ import annotations

from streamsource.kafka.protocol.errors import CodedError, ErrorCode


class RecordError(CodedError):
    """Record data that cannot be accepted; ``error_code`` is the Kafka code to answer with."""

    error_code = ErrorCode.CORRUPT_MESSAGE


class CorruptRecordError(RecordError):
    """A checksum does not match or the data is truncated (Kafka CORRUPT_MESSAGE)."""

    error_code = ErrorCode.CORRUPT_MESSAGE


class InvalidRecordError(RecordError):
    """The bytes are intact but their structure breaks the format's rules (INVALID_RECORD)."""

    error_code = ErrorCode.INVALID_RECORD


class UnsupportedCompressionError(RecordError):
    """The attributes name a compression codec that does not exist."""

    error_code = ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


class RecordTooLargeError(RecordError):
    """A batch, or what it decompresses to, exceeds the configured limit (MESSAGE_TOO_LARGE)."""

    error_code = ErrorCode.MESSAGE_TOO_LARGE


__all__ = [
    "CorruptRecordError",
    "InvalidRecordError",
    "RecordError",
    "RecordTooLargeError",
    "UnsupportedCompressionError",
]
