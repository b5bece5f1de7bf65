"""Errors raised by the partition log.

Each carries ``error_code``, the Kafka error code the broker answers with, from the one
table in ``streamsource.kafka.protocol.errors``; ``retriable`` follows that code.
"""

from __future__ import annotations

from pathlib import Path

from streamsource.kafka.protocol.errors import CodedError, ErrorCode


class LogError(CodedError):
    """Base class of partition-log errors; ``error_code`` is the Kafka code to answer with."""

    error_code = ErrorCode.KAFKA_STORAGE_ERROR


class OffsetOutOfRange(LogError):
    """A read asked for an offset below the log start or beyond the log end."""

    error_code = ErrorCode.OFFSET_OUT_OF_RANGE

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset
        super().__init__(
            f"offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]"
        )


class InvalidBatch(LogError):
    """A batch handed to ``append`` is not a well-formed v2 record batch."""

    error_code = ErrorCode.CORRUPT_MESSAGE


class BatchTooLarge(LogError):
    """A batch is larger than the log's ``max_message_bytes``."""

    error_code = ErrorCode.MESSAGE_TOO_LARGE


class InvalidLogConfig(LogError):
    """A log setting is out of range or not a number."""

    error_code = ErrorCode.INVALID_CONFIG


class LogStorageError(LogError):
    """The disk refused an operation (full, read-only, removed).

    KAFKA_STORAGE_ERROR, retriable as in Kafka: once space returns, the same append works.
    """

    def __init__(self, path: Path, operation: str, cause: OSError) -> None:
        self.path = path
        super().__init__(f"{operation} {path}: {cause.strerror or cause}")


class LogClosed(LogError):
    """The log was closed or deleted and cannot be used any more."""
